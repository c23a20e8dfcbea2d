import BlockIO
import QCow2Format

/// Buffers writes that move forward through a new file into large sequential writes. Short gaps
/// between writes (compressed-stream padding) are written as zeros; gaps of 4 KiB or more stay
/// holes, so the file is as sparse as the source (table tails are trimmed for the same reason).
struct SequentialWriter {
    let device: any BlockDevice
    var start: UInt64 = 0
    var pending: [UInt8] = []
    static let limit = 8 << 20

    init(device: any BlockDevice) { self.device = device }

    mutating func write(_ bytes: [UInt8], at offset: UInt64) throws {
        let end = start + UInt64(pending.count)
        if offset < end || offset - end >= 4096 {
            try flush()
            start = offset
        } else if offset > end {
            pending.append(contentsOf: repeatElement(0, count: Int(offset - end)))
        }
        if pending.isEmpty { start = offset }
        pending.append(contentsOf: bytes)
        if pending.count >= Self.limit { try flush() }
    }

    mutating func flush() throws {
        guard !pending.isEmpty else { return }
        try device.write(pending, at: start)
        start += UInt64(pending.count)
        pending.removeAll(keepingCapacity: true)
    }
}

extension SnapshotCopier {
    /// The metadata pass: L2 tables (each distinct table once), L1 tables (snapshots, then the
    /// active one), the snapshot table, refcount blocks and table, all after the data; then a
    /// flush, and the header last, so the file is a valid image only once everything it points at
    /// is written.
    mutating func writeMetadata(layers: [CopyLayer], snapshots: [SnapshotEntry], size: UInt64) throws
        -> SnapshotCopyReport
    {
        let cs = UInt64(og.clusterSize)
        var next = roundUp(max(cursor, reservedEnd), cs)

        // Distinct L2 tables and how many L1 entries point at each.
        var tableIndex: [[UInt64]: Int] = [:]
        var tables: [[UInt64]] = []
        var tableRefs: [Int] = []
        var layerTables: [[Int: Int]] = []
        for layer in layers {
            var map: [Int: Int] = [:]
            for (l1Index, table) in layer.tables {
                let t: Int
                if let known = tableIndex[table] {
                    t = known
                } else {
                    t = tables.count
                    tables.append(table)
                    tableRefs.append(0)
                    tableIndex[table] = t
                }
                tableRefs[t] += 1
                map[l1Index] = t
            }
            layerTables.append(map)
        }
        let l2Start = next
        next += UInt64(tables.count) * cs
        var l1Offsets: [UInt64] = []
        for layer in layers {
            l1Offsets.append(next)
            next += og.clustersFor(bytes: UInt64(layer.outputL1Size) * 8) * cs
        }
        var entries = snapshots
        for i in entries.indices {
            entries[i].l1TableOffset = l1Offsets[i]
            entries[i].l1Size = UInt32(layers[i].outputL1Size)
        }
        let snapshotTable = SnapshotTable.encode(entries)
        let snapshotsOffset = snapshotTable.isEmpty ? 0 : next
        next += og.clustersFor(bytes: UInt64(snapshotTable.count)) * cs

        // Refcounts (§5): +1 per L1 entry pointing at an L2 table, to the table and to each data
        // cluster in it (every host cluster a compressed descriptor touches).
        let metadataClusters = next / cs
        let perBlock = UInt64(og.refcountBlockEntries)
        var blocks = (metadataClusters + perBlock - 1) / perBlock
        var tableClusters = og.clustersFor(bytes: blocks * 8)
        while blocks * perBlock < metadataClusters + blocks + tableClusters {
            blocks += 1
            tableClusters = og.clustersFor(bytes: blocks * 8)
        }
        let totalClusters = metadataClusters + blocks + tableClusters
        var counts = [UInt64](repeating: 0, count: Int(totalClusters))
        counts[0] = 1
        for (t, table) in tables.enumerated() {
            let refs = UInt64(tableRefs[t])
            counts[Int(l2Start / cs) + t] += refs
            for raw in table where raw != 0 {
                let e = L2Entry(raw: raw)
                if e.isCompressed {
                    let d = CompressedDescriptor(entry: raw, clusterBits: UInt32(og.clusterBits))
                    let last = (d.hostOffset + UInt64(d.byteLength) - 1) / cs
                    for c in (d.hostOffset / cs)...last { counts[Int(c)] += refs }
                    report.dataReferences += tableRefs[t]
                } else if e.hostOffset != 0 {
                    counts[Int(e.hostOffset / cs)] += refs
                    report.dataReferences += tableRefs[t]
                }
            }
        }
        for c in (l2Start / cs + UInt64(tables.count))..<totalClusters { counts[Int(c)] += 1 }
        if let worst = counts.max(), worst > og.maxRefcount {
            throw QCow2Error.unsupported(
                "refcount_bits=\(og.refcountBits) cannot count \(worst) references to one cluster; "
                    + "use a wider refcount_bits")
        }

        // COPIED where the refcount is 1: only tables the active L1 alone points at.
        let active = layers.count - 1
        var activeL1 = [UInt64](repeating: 0, count: layers[active].outputL1Size)
        for (l1Index, t) in layerTables[active] {
            let l2Offset = l2Start + UInt64(t) * cs
            guard tableRefs[t] == 1 else {
                activeL1[l1Index] = l2Offset
                continue
            }
            activeL1[l1Index] = l2Offset | L1Entry.copiedFlag
            for i in tables[t].indices {
                let e = L2Entry(raw: tables[t][i])
                if !e.isCompressed && e.hostOffset != 0 && counts[Int(e.hostOffset / cs)] == 1 {
                    tables[t][i] |= L2Entry.copiedFlag
                }
            }
        }

        for (t, table) in tables.enumerated() {
            try writer.write(bigEndianBytes(table), at: l2Start + UInt64(t) * cs)
        }
        for (k, layer) in layers.enumerated() {
            var l1 = [UInt64](repeating: 0, count: layer.outputL1Size)
            if k == active {
                l1 = activeL1
            } else {
                for (l1Index, t) in layerTables[k] { l1[l1Index] = l2Start + UInt64(t) * cs }
            }
            try writer.write(bigEndianBytes(l1), at: l1Offsets[k])
        }
        if !snapshotTable.isEmpty { try writer.write(snapshotTable, at: snapshotsOffset) }
        let blocksStart = metadataClusters * cs
        let tableStart = blocksStart + blocks * cs
        var refcountTable = [UInt64](repeating: 0, count: Int(tableClusters * cs / 8))
        for b in 0..<Int(blocks) {
            var block = [UInt8](repeating: 0, count: Int(cs))
            let first = b * Int(perBlock)
            for i in 0..<Int(perBlock) where first + i < counts.count && counts[first + i] != 0 {
                RefcountBlockCodec.set(&block, index: i, order: og.refcountOrder, value: counts[first + i])
            }
            let used = ((block.lastIndex { $0 != 0 } ?? 0) + 512) / 512 * 512
            try writer.write(Array(block.prefix(used)), at: blocksStart + UInt64(b) * cs)
            refcountTable[b] = blocksStart + UInt64(b) * cs
        }
        try writer.write(bigEndianBytes(refcountTable), at: tableStart)
        try writer.flush()
        let fileLength = totalClusters * cs
        try writer.device.setLength(fileLength)
        try writer.device.flush()

        var header = QCow2Header(
            version: options.version, clusterBits: options.clusterBits, size: size,
            refcountOrder: options.refcountOrder)
        header.l1Size = UInt32(layers[active].outputL1Size)
        header.l1TableOffset = l1Offsets[active]
        header.refcountTableOffset = tableStart
        header.refcountTableClusters = UInt32(tableClusters)
        header.nbSnapshots = UInt32(entries.count)
        header.snapshotsOffset = snapshotsOffset
        if options.lazyRefcounts { header.compatibleFeatures.insert(.lazyRefcounts) }
        if options.compressionType != .zlib {
            header.compressionType = options.compressionType
            header.incompatibleFeatures.insert(.compressionType)
        }
        var extensions = HeaderExtensions()
        if case .keep(let file, let format) = options.backing {
            extensions.backingFile = file
            extensions.backingFormat = format
        }
        guard let cluster0 = extensions.encodeCluster0(header: &header) else {
            throw QCow2Error.invalid(field: "header", reason: "header extensions do not fit in the first cluster")
        }
        try writer.device.write(cluster0, at: 0)
        try writer.device.flush()
        report.l2Tables = tables.count
        report.snapshots = entries.count
        report.fileLength = fileLength
        return report
    }

    /// A table's bytes up to its last non-zero entry (rounded to 512 bytes): the rest of its
    /// clusters stays a hole and reads as zeros.
    func bigEndianBytes(_ table: [UInt64]) -> [UInt8] {
        let used = (table.lastIndex { $0 != 0 } ?? -1) + 1
        var bytes = [UInt8](repeating: 0, count: min(table.count * 8, (used * 8 + 511) / 512 * 512))
        for (i, v) in table.prefix(used).enumerated() { bytes.setBigEndianUInt64(v, at: i * 8) }
        return bytes
    }
}
