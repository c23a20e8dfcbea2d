import BlockIO
import QCow2Format

/// `qemu-img amend` steps (QEMU's `qcow2_amend_options`). Each step leaves the image consistent
/// (leaks at most) at every instant; after ``changeRefcountOrder(to:)`` reopen the image, since
/// ``QCow2Image/geometry`` keeps the width it was opened with.
extension QCow2Image {
    /// `compat=1.1` on a v2 image: the header is rewritten as v3 (112 bytes, feature name table).
    public func upgradeToVersion3() throws {
        try amendLocked { s in
            guard s.header.version < 3 else { return }
            try s.flushMetadata(file: file, dataFile: dataFile)
            s.header.version = 3
            s.header.headerLength = 112
            try s.rewriteCluster0(file: file)
        }
    }

    /// `lazy_refcounts=on|off` (v3 only): sets or clears compatible bit 0. vmimg keeps refcounts
    /// exact either way, so the image is always clean.
    public func setLazyRefcounts(_ on: Bool) throws {
        try amendLocked { s in
            guard s.header.compatibleFeatures.contains(.lazyRefcounts) != on else { return }
            guard s.header.version >= 3 || !on else {
                throw QCow2Error.invalid(
                    field: "lazy_refcounts",
                    reason:
                        "Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or "
                        + "greater)")
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            if on {
                s.header.compatibleFeatures.insert(.lazyRefcounts)
            } else {
                s.header.compatibleFeatures.remove(.lazyRefcounts)
            }
            try s.rewriteCluster0(file: file)
        }
    }

    /// `compat=0.10` on a v3 image (QEMU's `qcow2_downgrade`): refused with refcount widths other
    /// than 16 or incompatible features; zero clusters become unallocated (no backing file) or
    /// allocated clusters of zeros (backing file, or a zero cluster that kept its host cluster),
    /// in the active and every snapshot L1 table; then the header is rewritten as v2.
    public func downgradeToVersion2() throws {
        try amendLocked { s in
            guard s.header.version >= 3 else { return }
            guard s.header.refcountOrder == 4 else {
                throw QCow2Error.invalid(field: "compat", reason: "compat=0.10 requires refcount_bits=16")
            }
            let blocking = s.header.incompatibleFeatures.subtracting(.compressionType)
            guard blocking.isEmpty else {
                throw QCow2Error.unsupported(
                    "Cannot downgrade an image with incompatible features 0x\(hex(blocking.rawValue)) set")
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            var l1Tables = [s.l1]
            for snapshot in s.snapshots {
                l1Tables.append(try file.readTable(at: snapshot.l1TableOffset, count: Int(snapshot.l1Size)))
            }
            var sawCompressed = false
            for table in l1Tables {
                for raw in table where L1Entry(raw: raw).l2Offset != 0 {
                    if Cancellation.isRequested {
                        // Stopped between tables: each rewritten table reads as before, and the
                        // image is still v3. Its changes go to disk in the usual order.
                        try s.flushMetadata(file: file, dataFile: dataFile)
                        try Cancellation.check()
                    }
                    sawCompressed =
                        try expandZeroClusters(&s, l2Offset: L1Entry(raw: raw).l2Offset) || sawCompressed
                }
            }
            if s.header.compressionType != .zlib {
                guard !sawCompressed else {
                    throw QCow2Error.unsupported(
                        "Cannot downgrade an image with zstd compression type and existing compressed clusters")
                }
                s.header.compressionType = .zlib
                s.header.incompatibleFeatures.remove(.compressionType)
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            s.header.version = 2
            s.header.headerLength = 72
            s.header.compatibleFeatures = []
            s.header.autoclearFeatures = []
            try s.rewriteCluster0(file: file)
        }
    }

    /// Rewrites the zero entries of one L2 table (shared tables in place, as QEMU does: every
    /// user of the table reads zeros before and after). Returns whether it holds compressed clusters.
    func expandZeroClusters(_ s: inout QCow2State, l2Offset: UInt64) throws -> Bool {
        let g = s.geometry
        let cs = g.clusterSize
        var table = try s.l2Table(at: l2Offset, file: file)
        let l2Refcount = try s.refcount(ofCluster: l2Offset >> UInt64(g.clusterBits), file: file)
        var changed = false
        var sawCompressed = false
        let zeros = [UInt8](repeating: 0, count: cs)
        for i in 0..<g.l2Entries {
            let e = s.entry(table, i)
            switch e.clusterType(extendedL2: false, externalDataFile: false) {
            case .zeroPlain:
                guard backingDisk != nil else {
                    setEntry(&table, i, L2Entry(raw: 0), g)
                    changed = true
                    continue
                }
                // The backing file must not show through: a new cluster of zeros, counted once per
                // table that references it (QEMU sets the refcount to the L2 table's).
                let host = try s.allocateClusters(1, file: file)
                try file.write(zeros, at: host)
                if l2Refcount > 1 {
                    try s.setRefcount(ofCluster: host >> UInt64(g.clusterBits), to: l2Refcount, file: file)
                }
                setEntry(&table, i, L2Entry(raw: host | (l2Refcount == 1 ? L2Entry.copiedFlag : 0)), g)
                changed = true
            case .zeroAllocated:
                try file.write(zeros, at: e.hostOffset)
                let count = try s.refcount(ofCluster: e.hostOffset >> UInt64(g.clusterBits), file: file)
                setEntry(&table, i, L2Entry(raw: e.hostOffset | (count == 1 ? L2Entry.copiedFlag : 0)), g)
                changed = true
            case .compressed:
                sawCompressed = true
            case .normal, .unallocated:
                break
            }
        }
        // Written at the next flush, after the zeroed data and the new refcounts are durable.
        if changed { s.l2Cache.update(l2Offset, table) }
        return sawCompressed
    }

    /// `refcount_bits=N` (QEMU's `qcow2_change_refcount_order`): a complete refcount structure at
    /// the new width is written past the end of the file, then one cluster-0 write switches the
    /// header to it, then the old table and blocks are freed. A crash leaves the old structure
    /// in use, or the new one with the old clusters leaked.
    /// - Throws: `QCow2Error.invalid` when a refcount does not fit the new width.
    public func changeRefcountOrder(to order: Int) throws {
        try amendLocked { s in
            guard s.header.refcountOrder != UInt32(order) else { return }
            guard s.header.version >= 3 else {
                throw QCow2Error.invalid(
                    field: "refcount_bits",
                    reason:
                        "Refcount widths other than 16 bits require compatibility level 1.1 or above (use "
                        + "compat=1.1 or greater)")
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            try s.switchRefcountOrder(to: order, file: file)
        }
    }

    /// Runs one amend step under the lock, refusing read-only and corrupt images.
    func amendLocked(_ body: (inout QCow2State) throws -> Void) throws {
        guard isWritable else { throw QCow2Error.unsupported("\(filename): image is opened read-only") }
        try state.withLock { s in
            guard !s.markedCorrupt else {
                throw QCow2Error.unsupported(
                    "\(filename): image was marked corrupt; further writes refused")
            }
            try body(&s)
        }
    }
}

extension QCow2State {
    /// Writes the header and its extensions as cluster 0 in one write, then flushes.
    mutating func rewriteCluster0(file: any BlockDevice) throws {
        var h = header
        guard let bytes = extensions.encodeCluster0(header: &h) else {
            throw QCow2Error.invalid(
                field: "header", reason: "header extensions do not fit in the first cluster")
        }
        try file.write(bytes, at: 0)
        try file.flush()
        header = h
    }

    /// The body of `changeRefcountOrder`; metadata already flushed.
    mutating func switchRefcountOrder(to order: Int, file: any BlockDevice) throws {
        let cs = UInt64(geometry.clusterSize)
        let oldClusters = (fileLength + cs - 1) / cs
        // Until the switch nothing refers to the new structure: a signal (or an error) before it
        // leaves the image as it was, the new clusters cut off again.
        let originalLength = try file.length()
        var poll = CancellationPoll()
        var counts = [UInt64](repeating: 0, count: Int(oldClusters))
        for i in 0..<oldClusters {
            try poll.check()
            counts[Int(i)] = try refcount(ofCluster: i, file: file)
        }
        let newGeometry = QCow2Geometry(
            clusterBits: geometry.clusterBits, extendedL2: geometry.extendedL2, refcountOrder: order)
        if let bad = counts.firstIndex(where: { $0 > newGeometry.maxRefcount }) {
            throw QCow2Error.invalid(
                field: "refcount_bits",
                reason: "Cannot decrease refcount entry width to \(1 << order) bits: Cluster at offset "
                    + "0x\(hex(UInt64(bad) * cs)) has a refcount of \(counts[bad])")
        }
        let perBlock = UInt64(newGeometry.refcountBlockEntries)
        var usedBlocks = Set<UInt64>()
        for (i, c) in counts.enumerated() where c != 0 { usedBlocks.insert(UInt64(i) / perBlock) }
        // New area past the end: the table, then its blocks. Grow both until they cover themselves.
        let start = oldClusters
        var tableClusters: UInt64 = 1
        var blocks: [UInt64] = []
        while true {
            let end = start + tableClusters + UInt64(blocks.count)
            let needed = usedBlocks.union((start / perBlock)...((end - 1) / perBlock)).sorted()
            let entries = (needed.last ?? 0) + 1
            let neededTableClusters = max(1, (entries * 8 + cs - 1) / cs)
            if needed == blocks && neededTableClusters == tableClusters { break }
            blocks = needed
            tableClusters = max(tableClusters, neededTableClusters)
        }
        let end = start + tableClusters + UInt64(blocks.count)
        var newTable = [UInt64](repeating: 0, count: Int(tableClusters * cs / 8))
        var blockBytes: [UInt64: [UInt8]] = [:]
        for (k, b) in blocks.enumerated() {
            newTable[Int(b)] = (start + tableClusters + UInt64(k)) * cs
            blockBytes[b] = [UInt8](repeating: 0, count: Int(cs))
        }
        func count(_ cluster: UInt64) -> UInt64 {
            cluster >= start ? (cluster < end ? 1 : 0) : counts[Int(cluster)]
        }
        do {
            for b in blocks {
                try Cancellation.check()
                guard var bytes = blockBytes[b] else { continue }
                for i in 0..<perBlock {
                    let cluster = b * perBlock + i
                    guard cluster < end else { break }
                    let c = count(cluster)
                    if c != 0 { RefcountBlockCodec.set(&bytes, index: Int(i), order: order, value: c) }
                }
                try file.write(bytes, at: newTable[Int(b)])
                blockBytes[b] = bytes
            }
            try file.writeTable(newTable, at: start * cs)
            try file.flush()
            try Cancellation.check()
        } catch {
            try? file.setLength(originalLength)
            throw error
        }
        // The switch: one write of cluster 0.
        let oldTableOffset = header.refcountTableOffset
        let oldTableClusters = UInt64(header.refcountTableClusters)
        let oldBlocks = refcountTable.filter { $0 & 0xffff_ffff_ffff_fe00 != 0 }.map {
            $0 & 0xffff_ffff_ffff_fe00
        }
        header.refcountOrder = UInt32(order)
        header.refcountTableOffset = start * cs
        header.refcountTableClusters = UInt32(tableClusters)
        try rewriteCluster0(file: file)
        geometry = newGeometry
        refcountTable = newTable
        refcountCache.removeAll()
        for (b, bytes) in blockBytes { refcountCache.put(newTable[Int(b)], bytes, dirty: false) }
        fileLength = max(fileLength, end * cs)
        freeClusterHint = 0
        // Nothing points at the old structure any more: free it (a crash before this only leaks).
        for cluster in (oldTableOffset / cs)..<(oldTableOffset / cs + oldTableClusters) {
            try setRefcount(ofCluster: cluster, to: 0, file: file)
        }
        for offset in oldBlocks { try setRefcount(ofCluster: offset / cs, to: 0, file: file) }
        try writeDirtyRefcountBlocks(file: file)
        try file.flush()
    }
}
