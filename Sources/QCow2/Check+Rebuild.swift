import BlockIO
import QCow2Format

/// Rebuilding the whole refcount structure from the expected refcounts (QEMU 7.2
/// `rebuild_refcount_structure`, `rebuild_refcounts_write_refblocks`, `alloc_clusters_imrt`).
///
/// Crash safety: new blocks and the new table go only into clusters that no structure references
/// (free in the expected table, which counts the old refcount table and blocks too), they are
/// flushed, and only then does one 12-byte header write switch `refcount_table_offset` and
/// `refcount_table_clusters`. Until that write the old structure is in force; after it the new one,
/// which leaves the old table and blocks as leaks for the following pass to free.
extension QCow2State {
    /// First-fit allocation of `count` clusters in the in-memory table, growing it past the end of
    /// the image when no gap is large enough. `firstFree` moves to the first gap seen.
    func allocateInTable(_ run: inout CheckRun, count: Int, firstFree: inout Int) throws -> Int {
        var cluster = firstFree
        var firstGap = true
        var contiguous = 0
        while cluster < run.imrt.count && contiguous < count {
            if run.imrt[cluster] == 0 {
                contiguous += 1
                if firstGap {
                    firstFree = cluster
                    firstGap = false
                }
            } else {
                contiguous = 0
            }
            cluster += 1
        }
        if contiguous < count {
            try run.imrt.grow(to: cluster + count - contiguous)
        }
        cluster -= contiguous
        for i in 0..<count { run.imrt[cluster + i] = 1 }
        return cluster
    }

    /// Writes the refcount blocks for every allocated cluster in `[first, end)`, allocating each
    /// block in the in-memory table (so it counts itself) and entering it into `table`.
    /// - Returns: whether `table` had to grow.
    mutating func writeRebuiltBlocks(
        _ run: inout CheckRun, first: Int, end initialEnd: Int, table: inout [UInt64], file: any BlockDevice
    ) throws -> Bool {
        let g = geometry
        let blockBits = g.clusterBits + 3 - g.refcountOrder
        let entriesPerCluster = g.clusterSize / 8
        var end = initialEnd
        var firstFree = 0
        var grown = false
        var cluster = first
        while cluster < end {
            defer { cluster += 1 }
            guard run.imrt[cluster] != 0 else { continue }
            let blockIndex = cluster >> blockBits
            let blockStart = blockIndex << blockBits
            let blockOffset: UInt64
            if blockIndex < table.count && table[blockIndex] != 0 {
                blockOffset = table[blockIndex]
            } else {
                // Never place a block inside the range of a block already written.
                firstFree = max(firstFree, blockStart)
                let allocated = try allocateInTable(&run, count: 1, firstFree: &firstFree)
                if allocated >= end { end = allocated + 1 }
                if table.count <= blockIndex {
                    let entries = (blockIndex + 1 + entriesPerCluster - 1) / entriesPerCluster * entriesPerCluster
                    guard entries * 8 <= QCow2Geometry.maxRefcountTableBytes else { throw CheckFailure.tooLarge }
                    table.append(contentsOf: repeatElement(0, count: entries - table.count))
                    grown = true
                }
                blockOffset = UInt64(allocated) << UInt64(g.clusterBits)
                table[blockIndex] = blockOffset
            }
            try file.write(run.imrt.block(blockIndex), at: blockOffset)
            fileLength = max(fileLength, blockOffset + UInt64(g.clusterSize))
            // This block is done: skip to its last cluster.
            cluster = blockStart + (1 << blockBits) - 1
        }
        return grown
    }

    /// Builds and switches to a new refcount table and blocks holding exactly the expected counts.
    mutating func rebuildRefcountStructure(_ run: inout CheckRun, file: any BlockDevice) throws {
        refcountCache.removeAll()
        var table: [UInt64] = []
        var tableCluster = 0
        var tableClusters = 0
        do {
            var grown = try writeRebuiltBlocks(&run, first: 0, end: run.imrt.count, table: &table, file: file)
            repeat {
                tableClusters = (table.count * 8 + geometry.clusterSize - 1) / geometry.clusterSize
                var firstFree = 0
                tableCluster = try allocateInTable(&run, count: tableClusters, firstFree: &firstFree)
                grown = try writeRebuiltBlocks(
                    &run, first: tableCluster, end: tableCluster + tableClusters, table: &table, file: file)
            } while grown
            let tableOffset = UInt64(tableCluster) << UInt64(geometry.clusterBits)
            try file.writeTable(table, at: tableOffset)
            // Blocks and table must be durable before the header points at them.
            try file.flush()
            var pointer = bigEndianBytes(tableOffset)
            pointer += bigEndianBytes(UInt64(tableClusters) << 32).prefix(4)
            try file.write(pointer, at: UInt64(QCow2Header.FieldOffset.refcountTableOffset))
            try file.flush()
            header.refcountTableOffset = tableOffset
            header.refcountTableClusters = UInt32(tableClusters)
            refcountTable = table
            fileLength = max(fileLength, tableOffset + UInt64(table.count * 8))
            freeClusterHint = 0
        } catch let error as CheckFailure {
            run.res.checkErrors += 1
            run.log("ERROR rebuilding refcount structure: \(error.reason)")
            throw error
        } catch {
            run.res.checkErrors += 1
            let failure = CheckFailure(error)
            run.log("ERROR writing refcount structure: \(failure.reason)")
            throw failure
        }
    }
}
