import BlockIO
import QCow2Format

/// Refcount changes of one snapshot operation per host cluster, kept in dense pages of 4096
/// clusters so a million updates cost a million array stores, not a million dictionary entries.
struct RefcountDeltas {
    static let pageBits: UInt64 = 12
    static let pageSize = 1 << 12
    private(set) var pages: [UInt64: [Int64]] = [:]

    mutating func add(_ cluster: UInt64, _ delta: Int64) {
        let key = cluster >> Self.pageBits
        let i = Int(cluster & UInt64(Self.pageSize - 1))
        if pages[key] == nil { pages[key] = [Int64](repeating: 0, count: Self.pageSize) }
        pages[key]?[i] += delta
    }

    func delta(_ cluster: UInt64) -> Int64 {
        pages[cluster >> Self.pageBits]?[Int(cluster & UInt64(Self.pageSize - 1))] ?? 0
    }

    /// Refcount block indices (`cluster >> blockBits`) holding a changed entry. A page whose
    /// changes cancelled out may still be listed: rewriting an unchanged block is harmless.
    func touchedBlocks(blockBits: Int) -> Set<UInt64> {
        var result: Set<UInt64> = []
        for (key, page) in pages {
            let base = key << Self.pageBits
            if UInt64(blockBits) >= Self.pageBits {
                result.insert(base >> UInt64(blockBits))
                continue
            }
            for (i, d) in page.enumerated() where d != 0 { result.insert((base + UInt64(i)) >> UInt64(blockBits)) }
        }
        return result
    }
}

/// The new state one snapshot operation builds beside the old one. Nothing reachable from the
/// old header is written while it is built; `commitSnapshotChange` then switches to it with one
/// header write.
struct SnapshotChange {
    var deltas = RefcountDeltas()
    /// New active L1 entries; nil keeps the current table where it is.
    var activeL1: [UInt64]?
    var size: UInt64
    var snapshots: [SnapshotEntry]
    /// Whether the snapshot table must be rewritten.
    var snapshotsChanged = false
    /// New clusters and unreferenced tables to write before the switch.
    var writes: [(offset: UInt64, bytes: [UInt8])] = []
    /// L2 tables written by this change, to seed the cache after the switch.
    var l2Tables: [UInt64: [UInt64]] = [:]
    /// First-fit cursor for clusters allocated by this change.
    var cursor: UInt64
    /// End of the highest cluster allocated.
    var allocatedEnd: UInt64 = 0
    /// One-block memo for old refcount lookups.
    var memoIndex: UInt64 = .max
    var memoBlock: [UInt8] = []
}

extension QCow2State {
    /// An L2 table for a read-only pass: from the cache if there, else read without caching, so a
    /// scan over every table does not churn the cache.
    mutating func scanL2(_ offset: UInt64, file: any BlockDevice) throws -> [UInt64] {
        if let table = l2Cache.peek(offset) { return table }
        return try readL2Table(at: offset, file: file)
    }

    /// A refcount block for a read-only pass (cache if there, else the file, uncached).
    mutating func scanRefcountBlock(_ offset: UInt64, file: any BlockDevice) throws -> [UInt8] {
        if let block = refcountCache.peek(offset) { return block }
        return try readRefcountBlock(at: offset, file: file)
    }

    /// The refcount of `cluster` in the old (current) state.
    mutating func oldRefcount(_ cluster: UInt64, _ change: inout SnapshotChange, file: any BlockDevice) throws
        -> UInt64
    {
        let (tableIndex, blockIndex) = geometry.refcountLocation(clusterIndex: cluster)
        if tableIndex != change.memoIndex {
            let offset = refcountBlockOffset(tableIndex: tableIndex)
            change.memoBlock = offset == 0 ? [] : try scanRefcountBlock(offset, file: file)
            change.memoIndex = tableIndex
        }
        guard !change.memoBlock.isEmpty else { return 0 }
        return RefcountBlockCodec.get(change.memoBlock, index: blockIndex, order: geometry.refcountOrder)
    }

    /// The host clusters an L2 entry holds a reference to (QEMU's check rule: NORMAL and
    /// ZERO_ALLOC entries their cluster; compressed entries every cluster their stream touches).
    func referencedClusters(_ e: L2Entry) -> ClosedRange<UInt64>? {
        let bits = UInt64(geometry.clusterBits)
        if e.isCompressed {
            let d = CompressedDescriptor(entry: e.raw, clusterBits: UInt32(geometry.clusterBits))
            return (d.hostOffset >> bits)...((d.hostOffset + UInt64(d.byteLength) - 1) >> bits)
        }
        guard e.hostOffset != 0, !header.hasExternalDataFile else { return nil }
        return (e.hostOffset >> bits)...(e.hostOffset >> bits)
    }

    /// Adds `coefficient` references through each L2 table: to the table and to every cluster
    /// its entries hold. Tables whose coefficient is 0 (in both the old and new trees) are skipped
    /// unread, so an operation costs what differs, not the whole image.
    mutating func addPaths(_ coefficients: [UInt64: Int64], _ change: inout SnapshotChange, file: any BlockDevice)
        throws
    {
        let bits = UInt64(geometry.clusterBits)
        let stride = geometry.extendedL2 ? 2 : 1
        for (l2, c) in coefficients.sorted(by: { $0.key < $1.key }) where c != 0 {
            // Planning only reads: stopping here leaves the image untouched.
            try Cancellation.check()
            change.deltas.add(l2 >> bits, c)
            let table = try scanL2(l2, file: file)
            var i = 0
            while i < table.count {
                let raw = table[i]
                i += stride
                guard raw & ~L2Entry.copiedFlag != 0 else { continue }
                if raw & L2Entry.compressedFlag == 0 {
                    let host = raw & L2Entry.offsetMask
                    if host != 0 && !header.hasExternalDataFile { change.deltas.add(host >> bits, c) }
                } else if let range = referencedClusters(L2Entry(raw: raw)) {
                    for cluster in range { change.deltas.add(cluster, c) }
                }
            }
        }
    }

    /// Allocates `count` contiguous clusters that are free in the old state and not yet taken by
    /// this change; they get +1 in the change. Nothing is written.
    mutating func allocate(_ count: Int, _ change: inout SnapshotChange, file: any BlockDevice) throws -> UInt64 {
        var start = change.cursor
        var run = 0
        var cluster = change.cursor
        var poll = CancellationPoll()
        while run < count {
            try poll.check()
            if try oldRefcount(cluster, &change, file: file) == 0 && change.deltas.delta(cluster) == 0
                && pendingDecrements[cluster] == nil
            {
                if run == 0 { start = cluster }
                run += 1
            } else {
                run = 0
                // Everything below the cursor is taken: the next search starts past this cluster
                // (without this, each of thousands of one-cluster allocations rescans the image).
                if cluster == change.cursor { change.cursor += 1 }
            }
            cluster += 1
        }
        let limit = QCow2Geometry.maxHostOffset >> UInt64(geometry.clusterBits)
        guard start + UInt64(count) <= limit else {
            throw QCow2Error.unsupported("image file would exceed the largest host offset qcow2 can address")
        }
        for c in start..<(start + UInt64(count)) { change.deltas.add(c, 1) }
        if start == change.cursor { change.cursor = start + UInt64(count) }
        let end = (start + UInt64(count)) << UInt64(geometry.clusterBits)
        change.allocatedEnd = max(change.allocatedEnd, end)
        return start << UInt64(geometry.clusterBits)
    }

    /// Drops one reference from each cluster of a table of `byteCount` bytes at `offset`.
    func releaseTable(at offset: UInt64, byteCount: UInt64, _ change: inout SnapshotChange) {
        guard offset != 0, byteCount > 0 else { return }
        let first = offset >> UInt64(geometry.clusterBits)
        for c in first..<(first + geometry.clustersFor(bytes: byteCount)) { change.deltas.add(c, -1) }
    }

    /// Sets the COPIED flags of the new active tree from the new refcounts (QEMU's
    /// `qcow2_update_snapshot_refcount` with addend 0). An L2 table that needs a flag changed is
    /// rewritten in place only if the old active tree does not use it (snapshot tables are never
    /// checked for COPIED); otherwise the active tree gets a corrected copy, so neither the old nor
    /// the new state ever shows a flag that disagrees with its refcount.
    mutating func settleCopiedFlags(
        _ l1: inout [UInt64], oldActive: Set<UInt64>, _ change: inout SnapshotChange, file: any BlockDevice
    ) throws {
        let bits = UInt64(geometry.clusterBits)
        let stride = geometry.extendedL2 ? 2 : 1
        var copies: [(index: Int, table: [UInt64])] = []
        var fixedInPlace: Set<UInt64> = []
        for index in l1.indices {
            let l2 = l1[index] & L1Entry.offsetMask
            guard l2 != 0, !fixedInPlace.contains(l2) else { continue }
            try Cancellation.check()
            let table = try scanL2(l2, file: file)
            let inOld = oldActive.contains(l2)
            var fixed = table
            var mismatch = false
            var i = 0
            while i < table.count {
                let raw = table[i]
                defer { i += stride }
                let host = raw & L2Entry.offsetMask
                guard raw & L2Entry.compressedFlag == 0, host != 0 else { continue }
                let cluster = host >> bits
                let d = header.hasExternalDataFile ? 0 : change.deltas.delta(cluster)
                if inOld && d == 0 { continue }
                let rc = header.hasExternalDataFile ? 1 : Int64(try oldRefcount(cluster, &change, file: file)) + d
                let want = rc == 1
                if want != (raw & L2Entry.copiedFlag != 0) {
                    mismatch = true
                    fixed[i] = want ? raw | L2Entry.copiedFlag : raw & ~L2Entry.copiedFlag
                }
            }
            guard mismatch else { continue }
            if inOld {
                copies.append((index, fixed))
            } else {
                fixedInPlace.insert(l2)
                change.writes.append((l2, tableBytes(fixed)))
                change.l2Tables[l2] = fixed
            }
        }
        if !copies.isEmpty {
            let cs = UInt64(geometry.clusterSize)
            let first = try allocate(copies.count, &change, file: file)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(copies.count * geometry.clusterSize)
            for (k, copy) in copies.enumerated() {
                let old = l1[copy.index] & L1Entry.offsetMask
                change.deltas.add(old >> bits, -1)
                let offset = first + UInt64(k) * cs
                l1[copy.index] = offset
                bytes += tableBytes(copy.table)
                change.l2Tables[offset] = copy.table
            }
            change.writes.append((first, bytes))
        }
        for index in l1.indices {
            let l2 = l1[index] & L1Entry.offsetMask
            guard l2 != 0 else { continue }
            let rc = Int64(try oldRefcount(l2 >> bits, &change, file: file)) + change.deltas.delta(l2 >> bits)
            l1[index] = rc == 1 ? l2 | L1Entry.copiedFlag : l2
        }
    }

    /// Coefficients (+1 per L2 table reference) of an L1 table.
    func tableCoefficients(_ l1: [UInt64], sign: Int64, into result: inout [UInt64: Int64]) {
        for raw in l1 {
            let l2 = raw & L1Entry.offsetMask
            if l2 != 0 { result[l2, default: 0] += sign }
        }
    }
}

/// Big-endian bytes of a table of 64-bit entries.
func tableBytes(_ entries: [UInt64]) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: entries.count * 8)
    for (i, value) in entries.enumerated() {
        for j in 0..<8 { bytes[i * 8 + j] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(j))) }
    }
    return bytes
}
