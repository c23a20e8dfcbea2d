import BlockIO
import Foundation
import QCow2
import QCow2Format

/// Which host clusters the active layer and each internal snapshot reference, read from the L1
/// and L2 tables. Stand-in for the engine's `SnapshotSpace` (issue 4) until it lands.
struct ClusterUsage {
    let image: QCow2Image
    private var l2Cache: [UInt64: [UInt64]] = [:]

    init(path: String) throws {
        image = try QCow2Image(path: path, writable: false)
    }

    mutating func space() throws -> DriveSpace {
        let header = image.header
        let clusterSize = UInt64(image.geometry.clusterSize)
        let active = try clusters(l1Offset: header.l1TableOffset, l1Size: header.l1Size)
        let entries = image.snapshots
        var sets: [Set<UInt64>] = []
        for entry in entries {
            sets.append(try clusters(l1Offset: entry.l1TableOffset, l1Size: entry.l1Size))
        }
        var multiplicity: [UInt64: Int] = [:]
        for set in sets { for c in set { multiplicity[c, default: 0] += 1 } }
        var figures: [String: SnapshotSpaceFigures] = [:]
        for (index, entry) in entries.enumerated() {
            let set = sets[index]
            let unique = set.filter { multiplicity[$0] == 1 && !active.contains($0) }.count
            let written = index == 0 ? set.count : set.subtracting(sets[index - 1]).count
            figures[entry.id] = SnapshotSpaceFigures(
                referenced: UInt64(set.count) * clusterSize, unique: UInt64(unique) * clusterSize,
                written: UInt64(written) * clusterSize)
        }
        let snapshotOnly = multiplicity.keys.filter { !active.contains($0) }.count
        return DriveSpace(
            activeBytes: UInt64(active.count) * clusterSize,
            snapshotOnlyBytes: UInt64(snapshotOnly) * clusterSize,
            snapshots: figures, fileBytes: 0)
    }

    /// Host offsets of the data clusters one L1 table reaches.
    private mutating func clusters(l1Offset: UInt64, l1Size: UInt32) throws -> Set<UInt64> {
        guard l1Size <= UInt32(QCow2Geometry.maxL1Entries) else {
            throw QCow2Error.corrupt(offset: l1Offset, reason: "l1_size \(l1Size) above the limit")
        }
        let l1 = try image.file.readTable(at: l1Offset, count: Int(l1Size))
        var result = Set<UInt64>()
        for raw in l1 {
            let l2Offset = L1Entry(raw: raw).l2Offset
            guard l2Offset != 0 else { continue }
            result.formUnion(try l2Clusters(at: l2Offset))
        }
        return result
    }

    private mutating func l2Clusters(at offset: UInt64) throws -> [UInt64] {
        if let cached = l2Cache[offset] { return cached }
        let geometry = image.geometry
        let words = geometry.l2Entries * (geometry.extendedL2 ? 2 : 1)
        let table = try image.file.readTable(at: offset, count: words)
        let clusterMask = ~(UInt64(geometry.clusterSize) - 1)
        let external = image.header.hasExternalDataFile
        var result: [UInt64] = []
        for i in 0..<geometry.l2Entries {
            let raw = table[geometry.extendedL2 ? 2 * i : i]
            let entry = L2Entry(raw: raw, bitmap: geometry.extendedL2 ? table[2 * i + 1] : 0)
            switch entry.clusterType(extendedL2: geometry.extendedL2, externalDataFile: external) {
            case .normal, .zeroAllocated: result.append(entry.hostOffset)
            case .compressed:
                let descriptor = CompressedDescriptor(entry: raw, clusterBits: UInt32(geometry.clusterBits))
                result.append(descriptor.hostOffset & clusterMask)
            case .unallocated, .zeroPlain: break
            }
        }
        l2Cache[offset] = result
        return result
    }
}
