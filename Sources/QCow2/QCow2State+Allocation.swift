import BlockIO
import QCow2Format

extension QCow2State {
    /// Sets the refcount of host cluster `index`, creating its refcount block (and growing the
    /// table) when needed. The change stays in the cache until `flushMetadata` writes it.
    mutating func setRefcount(ofCluster index: UInt64, to value: UInt64, file: any BlockDevice) throws {
        guard value <= geometry.maxRefcount else {
            throw QCow2Error.invalid(
                field: "refcount", reason: "refcount of cluster \(index) would exceed \(geometry.maxRefcount)")
        }
        let (tableIndex, blockIndex) = geometry.refcountLocation(clusterIndex: index)
        var blockOffset = refcountBlockOffset(tableIndex: tableIndex)
        if blockOffset == 0 {
            guard value != 0 else { return }
            blockOffset = try createRefcountBlock(tableIndex: tableIndex, file: file)
        }
        // Load it, then change it in place: a copy held here would make the cache copy the block.
        _ = try refcountBlock(at: blockOffset, file: file)
        let order = geometry.refcountOrder
        refcountCache.modify(blockOffset) { RefcountBlockCodec.set(&$0, index: blockIndex, order: order, value: value) }
        if value == 0 { freeClusterHint = min(freeClusterHint, index) }
    }

    /// Adds `delta` (may be negative) to a cluster's refcount, refusing overflow and underflow.
    mutating func adjustRefcount(ofCluster index: UInt64, by delta: Int64, file: any BlockDevice) throws {
        let current = try refcount(ofCluster: index, file: file)
        let (value, overflow): (UInt64, Bool) =
            delta >= 0
            ? current.addingReportingOverflow(UInt64(delta))
            : current.subtractingReportingOverflow(UInt64(-delta))
        guard !overflow, value <= geometry.maxRefcount else {
            throw QCow2Error.corrupt(
                offset: index << UInt64(geometry.clusterBits),
                reason: "refcount of cluster \(index) is \(current); cannot change it by \(delta)")
        }
        try setRefcount(ofCluster: index, to: value, file: file)
    }

    /// Allocates `count` contiguous free clusters first-fit (QEMU's `qcow2_alloc_clusters`) and
    /// sets their refcounts to 1. Returns the host offset of the first.
    ///
    /// As QEMU: the run is searched with clusters lacking a refcount block counted as free; when
    /// the run needs a block that does not exist, the block is created first
    /// (`alloc_refcount_block`) and the search restarts at the run's start, so the run may move
    /// past the new block.
    mutating func allocateClusters(_ count: Int, file: any BlockDevice) throws -> UInt64 {
        guard count > 0 else { throw QCow2Error.invalid(field: "allocation", reason: "zero clusters requested") }
        let perBlock = UInt64(geometry.refcountBlockEntries)
        let limit = QCow2Geometry.maxHostOffset >> UInt64(geometry.clusterBits)
        while true {
            let start = try freeRun(count, from: freeClusterHint, file: file)
            guard start + UInt64(count) <= limit else {
                throw QCow2Error.unsupported("image file would exceed the largest host offset qcow2 can address")
            }
            // QEMU's free_cluster_index ends past the scanned run; freeing moves it back.
            freeClusterHint = start + UInt64(count)
            let firstIndex = start / perBlock
            let lastIndex = (start + UInt64(count) - 1) / perBlock
            if let missing = (firstIndex...lastIndex).first(where: { refcountBlockOffset(tableIndex: $0) == 0 }) {
                try allocateRefcountBlock(forCluster: max(start, missing * perBlock), file: file)
                freeClusterHint = min(freeClusterHint, start)
                continue
            }
            for i in start..<(start + UInt64(count)) {
                try setRefcount(ofCluster: i, to: 1, file: file)
            }
            let end = (start + UInt64(count)) << UInt64(geometry.clusterBits)
            fileLength = max(fileLength, end)
            return start << UInt64(geometry.clusterBits)
        }
    }

    /// QEMU's `alloc_clusters_noref`: the first run of `count` clusters at or after `from` whose
    /// refcount is 0 (no refcount block counts as 0) and that no deferred free still holds.
    mutating func freeRun(_ count: Int, from: UInt64, file: any BlockDevice) throws -> UInt64 {
        var start = from
        var run = 0
        var index = from
        while run < count {
            if try refcount(ofCluster: index, file: file) == 0 && pendingDecrements[index] == nil {
                if run == 0 { start = index }
                run += 1
            } else {
                run = 0
            }
            index += 1
        }
        return start
    }

    /// QEMU's `alloc_refcount_block` for the missing block that would count `clusterIndex`: the
    /// block takes the first free cluster from the allocation cursor and counts itself when it
    /// falls in its own range (else another block counts it). It is written and flushed before
    /// the table entry points at it; when the table has no entry for it, new self-covering
    /// refcount structures (table 50 % larger) go right after the range the blocks cover.
    mutating func allocateRefcountBlock(forCluster clusterIndex: UInt64, file: any BlockDevice) throws {
        let perBlock = UInt64(geometry.refcountBlockEntries)
        let cs = UInt64(geometry.clusterSize)
        let tableIndex = clusterIndex / perBlock
        let newBlock = try freeRun(1, from: freeClusterHint, file: file)
        freeClusterHint = newBlock + 1
        guard newBlock != 0 else {
            throw QCow2Error.corrupt(offset: 0, reason: "Preventing invalid allocation of refcount block at offset 0")
        }
        var block = [UInt8](repeating: 0, count: Int(cs))
        if newBlock / perBlock == tableIndex {
            RefcountBlockCodec.set(&block, index: Int(newBlock % perBlock), order: geometry.refcountOrder, value: 1)
        } else {
            if refcountBlockOffset(tableIndex: newBlock / perBlock) == 0 {
                // The block's own cluster needs a block first; QEMU then makes the caller search
                // again (-EAGAIN), leaving this cluster free.
                try allocateRefcountBlock(forCluster: newBlock, file: file)
                return
            }
            try setRefcount(ofCluster: newBlock, to: 1, file: file)
            try writeDirtyRefcountBlocks(file: file)
        }
        let offset = newBlock * cs
        try file.write(block, at: offset)
        try file.flush()
        refcountCache.put(offset, block, dirty: false)
        fileLength = max(fileLength, offset + cs)
        if tableIndex < UInt64(refcountTable.count) {
            try file.writeTable([offset], at: header.refcountTableOffset + tableIndex * 8)
            try file.flush()
            refcountTable[Int(tableIndex)] = offset
            return
        }
        let blocksUsed = (max(clusterIndex, newBlock) + perBlock) / perBlock
        _ = try refcountArea(
            startCluster: blocksUsed * perBlock, additionalClusters: 0, exact: false,
            newBlock: (tableIndex, offset), file: file)
    }

    /// Creates the refcount block for `tableIndex`. Like QEMU it takes the first free cluster
    /// that an existing block already counts (so a run of data after it stays contiguous); when
    /// there is none it goes at the first cluster of the range it describes and counts itself.
    /// Its own refcount and the block are durable before the table entry points at it, so a crash
    /// leaves at most an unused cluster.
    mutating func createRefcountBlock(tableIndex: UInt64, file: any BlockDevice) throws -> UInt64 {
        if tableIndex >= UInt64(refcountTable.count) {
            try growRefcountTable(toCover: tableIndex, file: file)
            let existing = refcountBlockOffset(tableIndex: tableIndex)
            if existing != 0 { return existing }
        }
        let perBlock = UInt64(geometry.refcountBlockEntries)
        let cs = UInt64(geometry.clusterSize)
        var block = [UInt8](repeating: 0, count: geometry.clusterSize)
        var cluster = freeClusterHint
        var counted = false
        while true {
            let index = cluster / perBlock
            if index == tableIndex || refcountBlockOffset(tableIndex: index) == 0 { break }
            if try refcount(ofCluster: cluster, file: file) == 0 && pendingDecrements[cluster] == nil {
                counted = true
                break
            }
            cluster += 1
        }
        if counted {
            try setRefcount(ofCluster: cluster, to: 1, file: file)
            try writeDirtyRefcountBlocks(file: file)
        } else {
            cluster = tableIndex * perBlock
            RefcountBlockCodec.set(&block, index: 0, order: geometry.refcountOrder, value: 1)
        }
        let offset = cluster * cs
        try file.write(block, at: offset)
        try file.flush()
        refcountTable[Int(tableIndex)] = offset
        try file.writeTable([offset], at: header.refcountTableOffset + tableIndex * 8)
        try file.flush()
        refcountCache.put(offset, block, dirty: false)
        fileLength = max(fileLength, offset + cs)
        return offset
    }

    /// Replaces the refcount table with a larger one at the end of the file, together with the
    /// refcount blocks that describe the new area (QEMU's `qcow2_refcount_area`, placed at EOF).
    /// Order: blocks and table written and flushed, then the 12-byte header switch, then the old
    /// table's clusters are freed.
    mutating func growRefcountTable(toCover tableIndex: UInt64, file: any BlockDevice) throws {
        let cs = UInt64(geometry.clusterSize)
        let perBlock = UInt64(geometry.refcountBlockEntries)
        let start = (max(fileLength, highestKnownEnd()) + cs - 1) / cs
        var entries = max(tableIndex + 1, UInt64(refcountTable.count)) * 3 / 2
        var tableClusters = (entries * 8 + cs - 1) / cs
        var blocks = 0
        // The area (table + its blocks) must be counted by blocks inside the area or existing ones.
        while true {
            let end = start + tableClusters + UInt64(blocks)
            let firstIndex = start / perBlock
            let lastIndex = (end - 1) / perBlock
            let needed = (firstIndex...lastIndex).filter { refcountBlockOffset(tableIndex: $0) == 0 }.count
            entries = max(entries, lastIndex + 1)
            let clustersForEntries = (entries * 8 + cs - 1) / cs
            if needed == blocks && clustersForEntries == tableClusters { break }
            blocks = needed
            tableClusters = max(tableClusters, clustersForEntries)
        }
        let maxEntries = UInt64(QCow2Geometry.maxRefcountTableBytes / 8)
        guard tableClusters * cs / 8 <= maxEntries else {
            throw QCow2Error.tooLarge(
                field: "refcount table", value: tableClusters * cs, limit: UInt64(QCow2Geometry.maxRefcountTableBytes))
        }
        var newTable = refcountTable + [UInt64](repeating: 0, count: Int(tableClusters * cs / 8) - refcountTable.count)
        let end = start + tableClusters + UInt64(blocks)
        var blockCluster = start + tableClusters
        var newBlocks: [(UInt64, [UInt8])] = []
        for index in (start / perBlock)...((end - 1) / perBlock) where refcountBlockOffset(tableIndex: index) == 0 {
            newTable[Int(index)] = blockCluster * cs
            newBlocks.append((index, [UInt8](repeating: 0, count: Int(cs))))
            blockCluster += 1
        }
        // Count the area's clusters: in new blocks directly, in existing blocks through the cache.
        for cluster in start..<end {
            let index = cluster / perBlock
            if let k = newBlocks.firstIndex(where: { $0.0 == index }) {
                RefcountBlockCodec.set(
                    &newBlocks[k].1, index: Int(cluster % perBlock), order: geometry.refcountOrder, value: 1)
            }
        }
        for (k, (index, bytes)) in newBlocks.enumerated() {
            let offset = (start + tableClusters + UInt64(k)) * cs
            try file.write(bytes, at: offset)
            refcountCache.put(offset, bytes, dirty: false)
            _ = index
        }
        let oldOffset = header.refcountTableOffset
        let oldClusters = UInt64(header.refcountTableClusters)
        refcountTable = newTable
        // Existing blocks that count part of the area get their entries now (dirty, flushed below).
        for cluster in start..<end where newBlocks.first(where: { $0.0 == cluster / perBlock }) == nil {
            try setRefcount(ofCluster: cluster, to: 1, file: file)
        }
        try switchRefcountTable(to: newTable, atCluster: start, clusters: tableClusters, file: file)
        fileLength = max(fileLength, end * cs)
        for cluster in (oldOffset / cs)..<(oldOffset / cs + oldClusters) {
            pendingDecrements[cluster, default: 0] += 1
        }
    }

    /// End of the last cluster anything in memory points at (allocated but maybe unwritten).
    func highestKnownEnd() -> UInt64 { fileLength }

    /// The crash-safe switch to a new refcount table: dirty refcount blocks, then `table` at
    /// cluster `start`, flushed; then the header's offset and size in one 12-byte write, flushed.
    /// Freeing the old table's clusters is the caller's (at once, or deferred).
    mutating func switchRefcountTable(
        to table: [UInt64], atCluster start: UInt64, clusters: UInt64, file: any BlockDevice
    ) throws {
        let cs = UInt64(geometry.clusterSize)
        try writeDirtyRefcountBlocks(file: file)
        try file.writeTable(table, at: start * cs)
        try file.flush()
        header.refcountTableOffset = start * cs
        header.refcountTableClusters = UInt32(clusters)
        var w = ByteWriter()
        w.uint64(header.refcountTableOffset)
        w.uint32(header.refcountTableClusters)
        try file.write(w.bytes, at: UInt64(QCow2Header.FieldOffset.refcountTableOffset))
        try file.flush()
        refcountTable = table
    }

    /// Writes every dirty refcount block (no flush).
    mutating func writeDirtyRefcountBlocks(file: any BlockDevice) throws {
        for offset in refcountCache.dirtyOffsets {
            if let block = refcountCache.peek(offset) {
                try file.write(block, at: offset)
                refcountCache.markClean(offset)
            }
        }
    }

    /// Queues a reference drop on every host cluster an L2 entry held; applied after the tables
    /// that dropped it are durable.
    mutating func releaseLater(_ entry: L2Entry) {
        let g = geometry
        if entry.isCompressed {
            let d = CompressedDescriptor(entry: entry.raw, clusterBits: UInt32(g.clusterBits))
            let first = d.hostOffset >> UInt64(g.clusterBits)
            let last = (d.hostOffset + UInt64(d.byteLength) - 1) >> UInt64(g.clusterBits)
            for c in first...last { pendingDecrements[c, default: 0] += 1 }
        } else if entry.hostOffset != 0 && !header.hasExternalDataFile {
            pendingDecrements[entry.hostOffset >> UInt64(g.clusterBits), default: 0] += 1
        }
    }

    /// Queues a reference drop on a metadata cluster (an L2 table, an old L1 table).
    mutating func releaseClusterLater(_ hostOffset: UInt64) {
        pendingDecrements[hostOffset >> UInt64(geometry.clusterBits), default: 0] += 1
    }
}
