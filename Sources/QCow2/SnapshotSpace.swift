import BlockIO
import QCow2Format

/// Space figures of an image's snapshots, after ZFS (managers.md §3). A figure counts whole host
/// clusters: guest data, compressed data clusters and the L1/L2 tables a layer needs.
/// Whether a cluster would be freed is decided against its stored refcount, so leaked clusters
/// and clusters other structures hold are never counted as freeable.
public struct SnapshotSpace: Equatable, Sendable {
    /// One snapshot's figures.
    public struct Entry: Equatable, Sendable {
        public var id: String
        public var name: String
        /// Bytes reachable from the snapshot, shared or not (ZFS `referenced`).
        public var referencedBytes: UInt64
        /// Bytes only this snapshot holds: what deleting it alone frees (ZFS `used`).
        public var uniqueBytes: UInt64
        /// Bytes it shares with the active layer.
        public var sharedWithActiveBytes: UInt64
        /// Bytes it references that the previous snapshot (table order) does not (ZFS `written`);
        /// for the first snapshot, all it references.
        public var writtenBytes: UInt64
    }

    public var snapshots: [Entry]
    /// What deleting every snapshot would free (ZFS `usedbysnapshots`; not the sum of `uniqueBytes`).
    public var allSnapshotsBytes: UInt64
    /// Bytes only the active layer references (freed if it were discarded).
    public var activeOnlyBytes: UInt64
    /// Bytes reachable from the active layer.
    public var activeReferencedBytes: UInt64
    /// Bytes the active layer references that the newest snapshot does not (ZFS `written`).
    public var activeWrittenBytes: UInt64
}

/// A sorted multiset of host clusters: each cluster once, with how many references reach it.
struct ClusterCounts {
    var clusters: [UInt64] = []
    var counts: [UInt32] = []

    init(_ unsorted: [UInt64]) {
        for c in unsorted.sorted() {
            if clusters.last == c {
                counts[counts.count - 1] += 1
            } else {
                clusters.append(c)
                counts.append(1)
            }
        }
    }

    /// How many of `self`'s clusters are also in `other` (ignoring counts).
    func overlap(_ other: ClusterCounts) -> UInt64 {
        var i = 0
        var j = 0
        var n: UInt64 = 0
        while i < clusters.count && j < other.clusters.count {
            if clusters[i] == other.clusters[j] {
                n += 1
                i += 1
                j += 1
            } else if clusters[i] < other.clusters[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return n
    }
}

extension QCow2State {
    /// Every reference one L1 table makes: its own clusters, its L2 tables, their data.
    mutating func references(l1: [UInt64], l1Offset: UInt64, file: any BlockDevice) throws -> [UInt64] {
        let bits = UInt64(geometry.clusterBits)
        var result: [UInt64] = []
        if l1Offset != 0 && !l1.isEmpty {
            let first = l1Offset >> bits
            result += Array(first..<(first + geometry.clustersFor(bytes: UInt64(l1.count) * 8)))
        }
        let stride = geometry.extendedL2 ? 2 : 1
        for raw in l1 {
            let l2 = raw & L1Entry.offsetMask
            guard l2 != 0 else { continue }
            try Cancellation.check()
            result.append(l2 >> bits)
            let table = try scanL2(l2, file: file)
            var i = 0
            while i < table.count {
                if let range = referencedClusters(L2Entry(raw: table[i])) { result += Array(range) }
                i += stride
            }
        }
        return result
    }
}

extension QCow2Image {
    /// Computes ZFS-style space figures for every snapshot and the active layer, in one pass over
    /// the L1/L2 tables and refcounts (no guest data is read). Writable images are flushed first
    /// so the refcounts on disk are the ones counted.
    public func snapshotSpace() throws -> SnapshotSpace {
        try state.withLock { s in
            if isWritable { try s.flushMetadata(file: file, dataFile: dataFile) }
            let cs = UInt64(s.geometry.clusterSize)
            var layers: [ClusterCounts] = []
            var allSnapshotRefs: [UInt64] = []
            for snapshot in s.snapshots {
                let l1 = try file.readTable(at: snapshot.l1TableOffset, count: Int(snapshot.l1Size))
                let refs = try s.references(l1: l1, l1Offset: snapshot.l1TableOffset, file: file)
                allSnapshotRefs += refs
                layers.append(ClusterCounts(refs))
            }
            let active = ClusterCounts(try s.references(l1: s.l1, l1Offset: s.header.l1TableOffset, file: file))
            var memo = SnapshotChange(size: 0, snapshots: [], cursor: 0)
            // Clusters a set of layers holds alone: all their references are all the references.
            func exclusive(_ set: ClusterCounts) throws -> UInt64 {
                var n: UInt64 = 0
                for (k, c) in set.clusters.enumerated() {
                    if try s.oldRefcount(c, &memo, file: file) == UInt64(set.counts[k]) { n += 1 }
                }
                return n
            }
            var entries: [SnapshotSpace.Entry] = []
            for (k, snapshot) in s.snapshots.enumerated() {
                let layer = layers[k]
                let referenced = UInt64(layer.clusters.count)
                let written = k == 0 ? referenced : referenced - layer.overlap(layers[k - 1])
                entries.append(
                    SnapshotSpace.Entry(
                        id: snapshot.id, name: snapshot.name, referencedBytes: referenced * cs,
                        uniqueBytes: try exclusive(layer) * cs, sharedWithActiveBytes: layer.overlap(active) * cs,
                        writtenBytes: written * cs))
            }
            let activeReferenced = UInt64(active.clusters.count)
            let activeWritten = layers.last.map { activeReferenced - active.overlap($0) } ?? activeReferenced
            return SnapshotSpace(
                snapshots: entries, allSnapshotsBytes: try exclusive(ClusterCounts(allSnapshotRefs)) * cs,
                activeOnlyBytes: try exclusive(active) * cs, activeReferencedBytes: activeReferenced * cs,
                activeWrittenBytes: activeWritten * cs)
        }
    }
}
