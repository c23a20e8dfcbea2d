/// Derived layout arithmetic for one image (§1): entries per table, index math, QEMU's caps.
/// Built only from a validated header, so its shifts cannot overflow.
public struct QCow2Geometry: Equatable, Sendable {
    public let clusterBits: Int
    public let clusterSize: Int
    public let extendedL2: Bool
    /// Bytes per L2 entry (8, or 16 with extended L2).
    public let l2EntrySize: Int
    public let l2Bits: Int
    public let l2Entries: Int
    public let refcountOrder: Int
    public let refcountBits: Int
    public let refcountBlockEntries: Int
    public let subclusterSize: Int

    /// QEMU caps (§10).
    public static let maxL1Entries = 4 * 1024 * 1024
    public static let maxRefcountTableBytes = 8 * 1024 * 1024
    public static let maxSnapshots = 65536
    public static let maxSnapshotTableBytes = 1024 * 65536
    public static let maxSnapshotExtraData = 1024
    public static let maxHostOffset: UInt64 = (1 << 56) - 1

    public init(clusterBits: Int, extendedL2: Bool, refcountOrder: Int) {
        self.clusterBits = clusterBits
        clusterSize = 1 << clusterBits
        self.extendedL2 = extendedL2
        l2EntrySize = extendedL2 ? 16 : 8
        l2Bits = clusterBits - (extendedL2 ? 4 : 3)
        l2Entries = 1 << l2Bits
        self.refcountOrder = refcountOrder
        refcountBits = 1 << refcountOrder
        refcountBlockEntries = 1 << (clusterBits + 3 - refcountOrder)
        subclusterSize = extendedL2 ? clusterSize / 32 : clusterSize
    }

    public init(header: QCow2Header) {
        self.init(
            clusterBits: Int(header.clusterBits), extendedL2: header.hasExtendedL2,
            refcountOrder: Int(header.refcountOrder))
    }

    /// Guest bytes covered by one L1 entry.
    public var bytesPerL1Entry: UInt64 { UInt64(1) << UInt64(clusterBits + l2Bits) }

    public func l1Index(_ guestOffset: UInt64) -> Int { Int(guestOffset >> UInt64(clusterBits + l2Bits)) }
    public func l2Index(_ guestOffset: UInt64) -> Int {
        Int((guestOffset >> UInt64(clusterBits)) & UInt64(l2Entries - 1))
    }
    public func offsetInCluster(_ offset: UInt64) -> Int { Int(offset & UInt64(clusterSize - 1)) }
    public func clusterIndex(_ hostOffset: UInt64) -> UInt64 { hostOffset >> UInt64(clusterBits) }
    public func isClusterAligned(_ offset: UInt64) -> Bool { offset & UInt64(clusterSize - 1) == 0 }
    public func clustersFor(bytes: UInt64) -> UInt64 {
        (bytes >> UInt64(clusterBits)) + (bytes & UInt64(clusterSize - 1) == 0 ? 0 : 1)
    }

    /// L1 entries needed for a guest of `size` bytes (QEMU's `size_to_l1`).
    public func l1EntriesNeeded(size: UInt64) -> UInt64 {
        let shift = UInt64(clusterBits + l2Bits)
        return (size >> shift) + (size & ((1 << shift) - 1) == 0 ? 0 : 1)
    }

    /// Largest guest size the L1 cap allows for this geometry.
    public var maxVirtualSize: UInt64 {
        let shift = UInt64(clusterBits + l2Bits) + 22
        return shift >= 63 ? UInt64(Int64.max) - (1 << 30) + 1 : UInt64(1) << shift
    }

    /// Refcount table index and block index for a host cluster.
    public func refcountLocation(clusterIndex: UInt64) -> (tableIndex: UInt64, blockIndex: Int) {
        let per = UInt64(refcountBlockEntries)
        return (clusterIndex / per, Int(clusterIndex % per))
    }

    /// Largest value a refcount entry holds.
    public var maxRefcount: UInt64 { refcountBits == 64 ? UInt64.max : (UInt64(1) << UInt64(refcountBits)) - 1 }
}

/// Read and write one width-parameterized refcount entry inside a refcount block's bytes
/// (entries narrower than a byte are packed from the least significant bit; wider ones big-endian).
public enum RefcountBlockCodec {
    @inlinable
    public static func get(_ block: [UInt8], index: Int, order: Int) -> UInt64 {
        switch order {
        case 0...2:
            let bits = 1 << order
            let perByte = 8 / bits
            let byte = block[index / perByte]
            let shift = (index % perByte) * bits
            return UInt64((byte >> UInt8(shift)) & UInt8((1 << bits) - 1))
        default:
            let width = 1 << (order - 3)
            var value: UInt64 = 0
            let start = index * width
            for i in start..<(start + width) { value = value << 8 | UInt64(block[i]) }
            return value
        }
    }

    @inlinable
    public static func set(_ block: inout [UInt8], index: Int, order: Int, value: UInt64) {
        switch order {
        case 0...2:
            let bits = 1 << order
            let perByte = 8 / bits
            let shift = (index % perByte) * bits
            let mask = UInt8(((1 << bits) - 1) << shift)
            let byte = block[index / perByte]
            block[index / perByte] = (byte & ~mask) | (UInt8(truncatingIfNeeded: value << UInt64(shift)) & mask)
        default:
            let width = 1 << (order - 3)
            let start = index * width
            for i in 0..<width {
                block[start + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - i)))
            }
        }
    }
}
