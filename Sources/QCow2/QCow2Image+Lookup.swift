import BlockIO
import QCow2Format

/// What one run of guest bytes maps to in this layer.
enum Mapping: Equatable {
    /// Stored at `host` (in the data file when the image has one); contiguous for the run.
    case data(host: UInt64)
    /// Reads as zeros; `host` is the preallocated cluster if any.
    case zero(host: UInt64?)
    /// Falls through to the backing disk (or zeros). `host` is the cluster an extended L2 entry
    /// still holds for an unallocated subcluster (qemu-img map prints it as the offset).
    case unallocated(host: UInt64?)
    /// A compressed cluster; the run lies inside one guest cluster starting at `clusterOffset`.
    case compressed(CompressedDescriptor, clusterOffset: UInt64)
}

extension QCow2State {
    /// Loads an L2 table through the cache, refusing one that is misaligned or outside the file.
    mutating func l2Table(at offset: UInt64, file: any BlockDevice) throws -> [UInt64] {
        if let table = l2Cache.get(offset) { return table }
        let table = try readL2Table(at: offset, file: file)
        l2Cache.put(offset, table, dirty: false)
        return table
    }

    /// The L2 entry (and bitmap) at `index` of a loaded table.
    func entry(_ table: [UInt64], _ index: Int) -> L2Entry {
        geometry.extendedL2 ? L2Entry(raw: table[index * 2], bitmap: table[index * 2 + 1]) : L2Entry(raw: table[index])
    }

    /// Maps the run of guest bytes starting at `offset`, at most `maxLength` long, using `l1`
    /// (the active table or a snapshot's). Runs stop at L2 table boundaries.
    mutating func lookup(
        _ offset: UInt64, maxLength: UInt64, l1 table: [UInt64]? = nil, file: any BlockDevice
    ) throws -> (Mapping, UInt64) {
        let l1Table = table ?? l1
        let g = geometry
        let l1Index = g.l1Index(offset)
        // A snapshot's disk_size may claim up to 2^64 − 1 bytes: the last L1 range ends at 2^64.
        let (l1End, pastEnd) = (UInt64(l1Index) + 1).multipliedReportingOverflow(by: g.bytesPerL1Entry)
        let limit = pastEnd ? maxLength : min(maxLength, l1End - offset)
        guard l1Index < l1Table.count else { return (.unallocated(host: nil), maxLength) }
        let l1Entry = L1Entry(raw: l1Table[l1Index])
        guard l1Entry.l2Offset != 0 else { return (.unallocated(host: nil), limit) }
        let l2 = try l2Table(at: l1Entry.l2Offset, file: file)
        let external = header.hasExternalDataFile
        let unit = UInt64(g.subclusterSize)
        let cs = UInt64(g.clusterSize)

        // Classify the unit (subcluster, or cluster without extended L2) holding `pos`.
        func classify(_ pos: UInt64) throws -> Mapping {
            let index = g.l2Index(pos)
            let e = entry(l2, index)
            let sub = g.extendedL2 ? Int((pos & (cs - 1)) / unit) : 0
            let clusterStart = pos & ~(cs - 1)
            switch e.subclusterType(sub, extendedL2: g.extendedL2, externalDataFile: external) {
            case .unallocatedPlain:
                return .unallocated(host: nil)
            case .unallocatedAllocated:
                return .unallocated(host: e.hostOffset + (pos & (cs - 1)))
            case .zeroPlain:
                if header.version < 3 && !g.extendedL2 {
                    throw QCow2Error.corrupt(offset: pos, reason: "Zero cluster entry found in pre-v3 image")
                }
                return .zero(host: nil)
            case .zeroAllocated:
                return .zero(host: e.hostOffset + (pos & (cs - 1)))
            case .normal:
                let host = e.hostOffset
                guard g.isClusterAligned(host) else {
                    throw QCow2Error.corrupt(
                        offset: host, reason: "Cluster allocation offset 0x\(hex(host)) unaligned (L2 index \(index))")
                }
                if external && host != clusterStart {
                    throw QCow2Error.corrupt(
                        offset: host,
                        reason: "External data file host cluster offset 0x\(hex(host)) does not match guest cluster "
                            + "offset: 0x\(hex(clusterStart))")
                }
                return .data(host: host + (pos & (cs - 1)))
            case .compressed:
                if external {
                    throw QCow2Error.corrupt(offset: pos, reason: "Compressed cluster in image with data file")
                }
                return .compressed(
                    CompressedDescriptor(entry: e.raw, clusterBits: UInt32(g.clusterBits)), clusterOffset: clusterStart)
            case .invalid:
                throw QCow2Error.corrupt(
                    offset: pos, reason: "Invalid cluster entry found (L2 index \(index), bitmap 0x\(hex(e.bitmap)))")
            }
        }

        let first = try classify(offset)
        var length = min(limit, unit - (offset & (unit - 1)))
        if case .compressed = first {
            return (first, min(limit, cs - (offset & (cs - 1))))
        }
        while length < limit {
            let pos = offset + length
            let next = try classify(pos)
            let same: Bool
            switch (first, next) {
            case (.data(let a), .data(let b)): same = b == a + length
            case (.zero(nil), .zero(nil)): same = true
            case (.zero(let a?), .zero(let b?)): same = b == a + length
            case (.unallocated(nil), .unallocated(nil)): same = true
            case (.unallocated(let a?), .unallocated(let b?)): same = b == a + length
            default: same = false
            }
            guard same else { break }
            length = min(limit, length + unit)
        }
        return (first, length)
    }
}
