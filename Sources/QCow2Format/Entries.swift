/// An active or snapshot L1 entry (§4.1).
public struct L1Entry: Equatable, Sendable {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }
    public init(l2Offset: UInt64, copied: Bool) { raw = l2Offset | (copied ? Self.copiedFlag : 0) }

    public static let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    public static let reservedMask: UInt64 = 0x7f00_0000_0000_01ff
    public static let copiedFlag: UInt64 = 1 << 63

    public var l2Offset: UInt64 { raw & Self.offsetMask }
    public var isCopied: Bool { raw & Self.copiedFlag != 0 }
    public var reservedBits: UInt64 { raw & Self.reservedMask }
}

/// QEMU's `QCow2ClusterType`.
public enum ClusterType: Sendable, Equatable {
    case unallocated, zeroPlain, zeroAllocated, normal, compressed
}

/// QEMU's `QCow2SubclusterType`.
public enum SubclusterType: Sendable, Equatable {
    case unallocatedPlain, unallocatedAllocated, zeroPlain, zeroAllocated, normal, compressed, invalid
}

/// A standard L2 entry word plus, with extended L2, its subcluster bitmap (§4.2, §4.4).
public struct L2Entry: Equatable, Sendable {
    public var raw: UInt64
    /// Allocation bits 0–31, zero bits 32–63; always 0 without extended L2.
    public var bitmap: UInt64

    public init(raw: UInt64, bitmap: UInt64 = 0) {
        self.raw = raw
        self.bitmap = bitmap
    }

    public static let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    public static let reservedMask: UInt64 = 0x3f00_0000_0000_01fe
    public static let copiedFlag: UInt64 = 1 << 63
    public static let compressedFlag: UInt64 = 1 << 62
    public static let zeroFlag: UInt64 = 1 << 0
    public static let allZeroBitmap: UInt64 = 0xffff_ffff_0000_0000

    public var isCompressed: Bool { raw & Self.compressedFlag != 0 }
    public var isCopied: Bool { raw & Self.copiedFlag != 0 }
    /// Host offset of a standard (not compressed) entry.
    public var hostOffset: UInt64 { raw & Self.offsetMask }
    public var allocatedMask: UInt32 { UInt32(truncatingIfNeeded: bitmap) }
    public var zeroMask: UInt32 { UInt32(truncatingIfNeeded: bitmap >> 32) }

    /// Reserved bits of a standard entry (compressed entries have none outside the descriptor).
    public func reservedBits(extendedL2: Bool) -> UInt64 {
        guard !isCompressed else { return 0 }
        return raw & (extendedL2 ? (Self.reservedMask | Self.zeroFlag) : Self.reservedMask)
    }

    /// Classification in QEMU's order (`qcow2_get_cluster_type`).
    public func clusterType(extendedL2: Bool, externalDataFile: Bool) -> ClusterType {
        if isCompressed { return .compressed }
        if !extendedL2 && raw & Self.zeroFlag != 0 {
            return hostOffset != 0 ? .zeroAllocated : .zeroPlain
        }
        if hostOffset == 0 && !(externalDataFile && isCopied) { return .unallocated }
        return .normal
    }

    /// Per-subcluster state (`qcow2_get_subcluster_type`); without extended L2 it mirrors the cluster.
    public func subclusterType(_ index: Int, extendedL2: Bool, externalDataFile: Bool) -> SubclusterType {
        let type = clusterType(extendedL2: extendedL2, externalDataFile: externalDataFile)
        guard extendedL2 else {
            switch type {
            case .unallocated: return .unallocatedPlain
            case .zeroPlain: return .zeroPlain
            case .zeroAllocated: return .zeroAllocated
            case .normal: return .normal
            case .compressed: return .compressed
            }
        }
        let alloc = allocatedMask >> UInt32(index) & 1 != 0
        let zero = zeroMask >> UInt32(index) & 1 != 0
        switch type {
        case .compressed:
            return bitmap == 0 ? .compressed : .invalid
        case .normal:
            if allocatedMask & zeroMask != 0 { return .invalid }
            if zero { return .zeroAllocated }
            return alloc ? .normal : .unallocatedAllocated
        default:
            if allocatedMask != 0 { return .invalid }
            return zero ? .zeroPlain : .unallocatedPlain
        }
    }
}

/// A decoded compressed cluster descriptor (§4.3).
public struct CompressedDescriptor: Equatable, Sendable {
    /// Host byte offset of the compressed stream (any alignment).
    public var hostOffset: UInt64
    /// Number of 512-byte sectors the stream may occupy, counted from the sector holding hostOffset.
    public var sectorCount: Int
    /// Bytes to read from hostOffset: sectorCount × 512 − (hostOffset mod 512).
    public var byteLength: Int { sectorCount * 512 - Int(hostOffset & 511) }

    public init(hostOffset: UInt64, sectorCount: Int) {
        self.hostOffset = hostOffset
        self.sectorCount = sectorCount
    }

    /// Decodes a compressed L2 entry for `clusterBits`.
    public init(entry: UInt64, clusterBits: UInt32) {
        let shift = UInt64(62 - (clusterBits - 8))
        let offsetMask = (UInt64(1) << shift) - 1
        let sizeMask = (UInt64(1) << UInt64(clusterBits - 8)) - 1
        hostOffset = entry & offsetMask & 0x00ff_ffff_ffff_ffff
        sectorCount = Int((entry >> shift) & sizeMask) + 1
    }

    /// Encodes a stored stream of `length` bytes at `offset` (COMPRESSED flag set, COPIED clear).
    public static func encode(offset: UInt64, length: Int, clusterBits: UInt32) -> UInt64 {
        let shift = UInt64(62 - (clusterBits - 8))
        let extra = (offset + UInt64(length) - 1) / 512 - offset / 512
        return L2Entry.compressedFlag | (extra << shift) | offset
    }

    /// Largest host offset a descriptor can hold for `clusterBits`: min(2^x, 2^56).
    public static func offsetLimit(clusterBits: UInt32) -> UInt64 {
        let x = 62 - (clusterBits - 8)
        return x >= 56 ? UInt64(1) << 56 : UInt64(1) << UInt64(x)
    }
}
