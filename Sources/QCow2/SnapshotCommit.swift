import BlockIO
import QCow2Format

/// The refcount structure of the new state: copies of every changed refcount block at new
/// places and a new refcount table pointing at them.
struct RefcountShadow {
    var table: [UInt64]
    var tableOffset: UInt64
    var tableClusters: Int
    /// Block index → (new offset, contents).
    var blocks: [UInt64: (offset: UInt64, bytes: [UInt8])]
    /// Offsets of the old blocks the copies replace.
    var replaced: [UInt64]
    /// Clusters in use before whose refcount reaches 0.
    var freed: [UInt64]
}

extension QCow2State {
    /// Builds the new refcount structure for `change`. Every block holding a changed refcount is
    /// copied to a free cluster (which changes more refcounts, so this runs to a fixed point), and
    /// a new table is placed in free clusters. Refcounts are checked here, before anything is
    /// written, so an overflow (1-bit refcounts) or underflow fails with the file untouched.
    mutating func buildRefcountShadow(_ change: inout SnapshotChange, file: any BlockDevice) throws -> RefcountShadow {
        let blockBits = geometry.clusterBits + 3 - geometry.refcountOrder
        let cs = UInt64(geometry.clusterSize)
        var placed: [UInt64: UInt64] = [:]
        var table: (offset: UInt64, clusters: Int)?
        var replaced: [UInt64] = []
        while true {
            // Copy every touched block; each copy touches the blocks counting its new and old place.
            while true {
                let pending = change.deltas.touchedBlocks(blockBits: blockBits).subtracting(placed.keys)
                guard !pending.isEmpty else { break }
                for index in pending.sorted() {
                    let old = refcountBlockOffset(tableIndex: index)
                    if old != 0 {
                        change.deltas.add(old >> UInt64(geometry.clusterBits), -1)
                        replaced.append(old)
                    }
                    placed[index] = try allocate(1, &change, file: file)
                }
            }
            let highest = placed.keys.max() ?? 0
            let needed = max(UInt64(refcountTable.count), highest + 1)
            if let t = table, UInt64(t.clusters) * cs / 8 >= needed { break }
            if let t = table {
                releaseTable(at: t.offset, byteCount: UInt64(t.clusters) * cs, &change)
            } else {
                releaseTable(
                    at: header.refcountTableOffset, byteCount: UInt64(header.refcountTableClusters) * cs, &change)
            }
            // Same size when it fits (QEMU keeps it), else QEMU's growth by half again.
            let entries = needed <= UInt64(refcountTable.count) ? needed : needed * 3 / 2
            let clusters = Int(geometry.clustersFor(bytes: entries * 8))
            guard clusters * geometry.clusterSize <= QCow2Geometry.maxRefcountTableBytes else {
                throw QCow2Error.tooLarge(
                    field: "refcount table", value: UInt64(clusters) * cs,
                    limit: UInt64(QCow2Geometry.maxRefcountTableBytes))
            }
            table = (try allocate(clusters, &change, file: file), clusters)
        }
        guard let t = table else { throw QCow2Error.invalid(field: "refcount table", reason: "not placed") }

        var newTable = refcountTable
        newTable += [UInt64](repeating: 0, count: t.clusters * geometry.clusterSize / 8 - refcountTable.count)
        var blocks: [UInt64: (offset: UInt64, bytes: [UInt8])] = [:]
        for (index, offset) in placed {
            let old = refcountBlockOffset(tableIndex: index)
            let bytes =
                old == 0 ? [UInt8](repeating: 0, count: geometry.clusterSize) : try scanRefcountBlock(old, file: file)
            blocks[index] = (offset, bytes)
            newTable[Int(index)] = offset
        }
        var freed: [UInt64] = []
        let order = geometry.refcountOrder
        let maxRefcount = geometry.maxRefcount
        let blockMask = UInt64(geometry.refcountBlockEntries - 1)
        var currentIndex = UInt64.max
        var current: [UInt8] = []
        for (key, page) in change.deltas.pages.sorted(by: { $0.key < $1.key }) {
            try Cancellation.check()
            let base = key << RefcountDeltas.pageBits
            for (i, d) in page.enumerated() where d != 0 {
                let cluster = base + UInt64(i)
                let index = cluster >> UInt64(blockBits)
                if index != currentIndex {
                    if currentIndex != .max { blocks[currentIndex]?.bytes = current }
                    guard let next = blocks[index] else {
                        throw QCow2Error.invalid(field: "refcount block", reason: "block \(index) was not copied")
                    }
                    current = next.bytes
                    currentIndex = index
                }
                let slot = Int(cluster & blockMask)
                let old = RefcountBlockCodec.get(current, index: slot, order: order)
                let (value, overflow) =
                    d > 0 ? old.addingReportingOverflow(UInt64(d)) : old.subtractingReportingOverflow(UInt64(-d))
                if d < 0 && overflow {
                    throw SnapshotError.refcountUnderflow(cluster: cluster, refcount: old, change: d)
                }
                guard !overflow, value <= maxRefcount else {
                    throw SnapshotError.refcountOverflow(cluster: cluster, refcount: old, limit: maxRefcount)
                }
                RefcountBlockCodec.set(&current, index: slot, order: order, value: value)
                if value == 0 { freed.append(cluster) }
            }
        }
        if currentIndex != .max { blocks[currentIndex]?.bytes = current }
        return RefcountShadow(
            table: newTable, tableOffset: t.offset, tableClusters: t.clusters, blocks: blocks, replaced: replaced,
            freed: freed)
    }

    /// Makes `change` the image's state. Order, each step durable before the next:
    /// 1. new L2 copies, corrected snapshot L2 tables, the new L1, the new snapshot table, the
    ///    refcount block copies and the new refcount table, all in clusters the old state does
    ///    not use (or does not check), then flush;
    /// 2. one 48-byte header write of bytes 24–71 (`size`, `l1_size`, `l1_table_offset`,
    ///    `refcount_table_offset`, `refcount_table_clusters`, `nb_snapshots`,
    ///    `snapshots_offset`), then flush;
    /// 3. freed clusters are discarded.
    /// A kill before step 2 leaves the old state and unused clusters; after it, the new state.
    /// Nothing is ever leaked or under-counted, so `qemu-img check` is clean at every instant.
    mutating func commitSnapshotChange(_ change: inout SnapshotChange, file: any BlockDevice) throws {
        let cs = UInt64(geometry.clusterSize)
        var newL1Offset = header.l1TableOffset
        var newL1Size = header.l1Size
        if let l1 = change.activeL1, !l1.isEmpty {
            guard l1.count <= QCow2Geometry.maxL1Entries else {
                throw QCow2Error.tooLarge(
                    field: "l1_size", value: UInt64(l1.count), limit: UInt64(QCow2Geometry.maxL1Entries))
            }
            let clusters = Int(geometry.clustersFor(bytes: UInt64(l1.count) * 8))
            newL1Offset = try allocate(clusters, &change, file: file)
            newL1Size = UInt32(l1.count)
            var padded = l1
            padded += [UInt64](repeating: 0, count: clusters * geometry.clusterSize / 8 - l1.count)
            change.writes.append((newL1Offset, tableBytes(padded)))
        }
        var snapshotsOffset = header.snapshotsOffset
        var tableBytesOut: [UInt8] = []
        if change.snapshotsChanged {
            releaseTable(at: header.snapshotsOffset, byteCount: UInt64(snapshotTableLength), &change)
            tableBytesOut = SnapshotTable.encode(change.snapshots)
            snapshotsOffset = 0
            if !tableBytesOut.isEmpty {
                snapshotsOffset = try allocate(
                    Int(geometry.clustersFor(bytes: UInt64(tableBytesOut.count))), &change, file: file)
                change.writes.append((snapshotsOffset, tableBytesOut))
            }
        }
        let shadow = try buildRefcountShadow(&change, file: file)

        // Step 1: everything new, in offset order, then one flush.
        var writes = change.writes
        for (_, block) in shadow.blocks { writes.append((block.offset, block.bytes)) }
        writes.append((shadow.tableOffset, tableBytes(shadow.table)))
        writes.sort { $0.offset < $1.offset }
        for w in writes {
            // Before step 2 a stop leaves the old state (as a kill would).
            try Cancellation.check()
            try file.write(w.bytes, at: w.offset)
        }
        try file.flush()

        // Step 2: the switch.
        var w = ByteWriter()
        w.uint64(change.size)
        w.uint32(header.cryptMethod)
        w.uint32(newL1Size)
        w.uint64(newL1Offset)
        w.uint64(shadow.tableOffset)
        w.uint32(UInt32(shadow.tableClusters))
        w.uint32(UInt32(change.snapshots.count))
        w.uint64(snapshotsOffset)
        try file.write(w.bytes, at: UInt64(QCow2Header.FieldOffset.size))

        // The header is written: memory follows it now, whatever the flush says.
        header.size = change.size
        header.l1Size = newL1Size
        header.l1TableOffset = newL1Offset
        header.refcountTableOffset = shadow.tableOffset
        header.refcountTableClusters = UInt32(shadow.tableClusters)
        header.nbSnapshots = UInt32(change.snapshots.count)
        header.snapshotsOffset = snapshotsOffset
        if let newL1 = change.activeL1 { l1 = newL1 }
        l1DirtyIndices.removeAll()
        refcountTable = shadow.table
        for old in shadow.replaced { refcountCache.remove(old) }
        for (_, block) in shadow.blocks { refcountCache.put(block.offset, block.bytes, dirty: false) }
        for cluster in shadow.freed { l2Cache.remove(cluster << UInt64(geometry.clusterBits)) }
        for (offset, table) in change.l2Tables { l2Cache.put(offset, table, dirty: false) }
        if change.snapshotsChanged {
            snapshots = change.snapshots
            snapshotTableLength = tableBytesOut.count
        }
        fileLength = max(fileLength, change.allocatedEnd)
        if let first = shadow.freed.min() { freeClusterHint = min(freeClusterHint, first) }
        try file.flush()

        // Step 3: give freed space back to the host (best effort, as QEMU's discard).
        var runStart: UInt64?
        var runEnd: UInt64 = 0
        for cluster in shadow.freed.sorted() where cluster * cs < fileLength {
            if let start = runStart, cluster == runEnd {
                runEnd += 1
                runStart = start
            } else {
                if let start = runStart { try? file.discard(offset: start * cs, count: (runEnd - start) * cs) }
                runStart = cluster
                runEnd = cluster + 1
            }
        }
        if let start = runStart { try? file.discard(offset: start * cs, count: (runEnd - start) * cs) }
    }
}
