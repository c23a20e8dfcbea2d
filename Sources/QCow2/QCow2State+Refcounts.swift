import BlockIO
import QCow2Format

extension QCow2State {
    /// Refuses a one-cluster table (`name`: "L2 table", "refcount block") that is misaligned or
    /// does not lie wholly inside the file, before anything reads it.
    func checkTableCluster(_ offset: UInt64, name: String) throws {
        guard geometry.isClusterAligned(offset) else {
            throw QCow2Error.corrupt(offset: offset, reason: "\(name) offset 0x\(hex(offset)) unaligned")
        }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(geometry.clusterSize))
        guard !overflow, end <= fileLength else {
            throw QCow2Error.tableOutsideFile(
                table: name, offset: offset, byteCount: UInt64(geometry.clusterSize), fileSize: fileLength)
        }
    }

    /// Reads a refcount block from the file after checking where it lies (no caching).
    func readRefcountBlock(at offset: UInt64, file: any BlockDevice) throws -> [UInt8] {
        try checkTableCluster(offset, name: "refcount block")
        return try file.read(count: geometry.clusterSize, at: offset)
    }

    /// Reads an L2 table from the file after checking where it lies (no caching).
    func readL2Table(at offset: UInt64, file: any BlockDevice) throws -> [UInt64] {
        try checkTableCluster(offset, name: "L2 table")
        return try file.readTable(at: offset, count: geometry.clusterSize / 8)
    }

    /// Loads a refcount block through the cache, refusing one misaligned or outside the file.
    mutating func refcountBlock(at offset: UInt64, file: any BlockDevice) throws -> [UInt8] {
        if let block = refcountCache.get(offset) { return block }
        let block = try readRefcountBlock(at: offset, file: file)
        refcountCache.put(offset, block, dirty: false)
        return block
    }

    /// Host offset of the refcount block covering `tableIndex`, or 0 if none is allocated.
    func refcountBlockOffset(tableIndex: UInt64) -> UInt64 {
        guard tableIndex < UInt64(refcountTable.count) else { return 0 }
        return refcountTable[Int(tableIndex)] & 0xffff_ffff_ffff_fe00
    }

    /// The on-disk (cached) refcount of host cluster `index`; 0 where no block exists.
    mutating func refcount(ofCluster index: UInt64, file: any BlockDevice) throws -> UInt64 {
        let (tableIndex, blockIndex) = geometry.refcountLocation(clusterIndex: index)
        let blockOffset = refcountBlockOffset(tableIndex: tableIndex)
        guard blockOffset != 0 else { return 0 }
        let block = try refcountBlock(at: blockOffset, file: file)
        return RefcountBlockCodec.get(block, index: blockIndex, order: geometry.refcountOrder)
    }

    /// Highest host cluster index the refcount table can describe (exclusive).
    var refcountCoverage: UInt64 { UInt64(refcountTable.count) * UInt64(geometry.refcountBlockEntries) }
}
