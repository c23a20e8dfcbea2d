/// The fixed qcow2 header (72 bytes in v2, `header_length` bytes in v3). Field names follow the
/// spec in camelCase; bytes past 112 in a longer v3 header are kept in `trailingHeaderBytes`.
public struct QCow2Header: Equatable, Sendable {
    public static let magic: UInt32 = 0x5146_49FB
    public static let minClusterBits: UInt32 = 9
    public static let maxClusterBits: UInt32 = 21

    public var version: UInt32
    public var backingFileOffset: UInt64
    public var backingFileSize: UInt32
    public var clusterBits: UInt32
    /// The `size` field: guest-visible size in bytes.
    public var size: UInt64
    public var cryptMethod: UInt32
    public var l1Size: UInt32
    public var l1TableOffset: UInt64
    public var refcountTableOffset: UInt64
    public var refcountTableClusters: UInt32
    public var nbSnapshots: UInt32
    public var snapshotsOffset: UInt64
    public var incompatibleFeatures: IncompatibleFeatures
    public var compatibleFeatures: CompatibleFeatures
    public var autoclearFeatures: AutoclearFeatures
    public var refcountOrder: UInt32
    public var headerLength: UInt32
    public var compressionType: QCow2CompressionType
    /// Header bytes beyond 112 that a newer writer put there; written back verbatim.
    public var trailingHeaderBytes: [UInt8]

    public var clusterSize: Int { 1 << Int(clusterBits) }
    public var refcountBits: Int { 1 << Int(refcountOrder) }
    public var hasExtendedL2: Bool { incompatibleFeatures.contains(.extendedL2) }
    public var hasExternalDataFile: Bool { incompatibleFeatures.contains(.externalDataFile) }

    /// A fresh v3 header as QEMU writes it (header_length 112).
    public init(version: UInt32 = 3, clusterBits: UInt32 = 16, size: UInt64 = 0, refcountOrder: UInt32 = 4) {
        self.version = version
        backingFileOffset = 0
        backingFileSize = 0
        self.clusterBits = clusterBits
        self.size = size
        cryptMethod = 0
        l1Size = 0
        l1TableOffset = 0
        refcountTableOffset = 0
        refcountTableClusters = 0
        nbSnapshots = 0
        snapshotsOffset = 0
        incompatibleFeatures = []
        compatibleFeatures = []
        autoclearFeatures = []
        self.refcountOrder = refcountOrder
        headerLength = version >= 3 ? 112 : 72
        compressionType = .zlib
        trailingHeaderBytes = []
    }
}

extension QCow2Header {
    /// Decodes and checks the header in QEMU's order (first failure wins): magic, version,
    /// cluster_bits, header_length, backing_file_offset, compression type, refcount_order.
    /// Unknown incompatible bits are reported by `QCow2Metadata` once the feature name table is read.
    public init(decoding bytes: [UInt8]) throws(QCow2Error) {
        var r = ByteReader(bytes, structure: "qcow2 header")
        let magic = try r.uint32()
        guard magic == Self.magic else { throw .badMagic(found: magic) }
        version = try r.uint32()
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        backingFileOffset = try r.uint64()
        backingFileSize = try r.uint32()
        clusterBits = try r.uint32()
        guard (Self.minClusterBits...Self.maxClusterBits).contains(clusterBits) else {
            throw .fieldOutOfRange(field: "cluster_bits", value: UInt64(clusterBits), allowed: 9...21)
        }
        size = try r.uint64()
        cryptMethod = try r.uint32()
        l1Size = try r.uint32()
        l1TableOffset = try r.uint64()
        refcountTableOffset = try r.uint64()
        refcountTableClusters = try r.uint32()
        nbSnapshots = try r.uint32()
        snapshotsOffset = try r.uint64()
        trailingHeaderBytes = []
        compressionType = .zlib
        if version == 2 {
            incompatibleFeatures = []
            compatibleFeatures = []
            autoclearFeatures = []
            refcountOrder = 4
            headerLength = 72
        } else {
            incompatibleFeatures = IncompatibleFeatures(rawValue: try r.uint64())
            compatibleFeatures = CompatibleFeatures(rawValue: try r.uint64())
            autoclearFeatures = AutoclearFeatures(rawValue: try r.uint64())
            refcountOrder = try r.uint32()
            headerLength = try r.uint32()
            guard headerLength >= 104 else {
                throw .fieldOutOfRange(
                    field: "header_length", value: UInt64(headerLength), allowed: 104...UInt64(1 << clusterBits))
            }
            // The spec requires a multiple of 8 (QEMU 7.2 does not check). 105...111 would put the
            // extensions inside the 8-byte compression field that `encode()` writes whole.
            guard headerLength % 8 == 0 else {
                throw .invalid(field: "header_length", reason: "\(headerLength) is not a multiple of 8")
            }
        }
        let cs = UInt64(1) << clusterBits
        guard UInt64(headerLength) <= cs else {
            throw .fieldOutOfRange(field: "header_length", value: UInt64(headerLength), allowed: 72...cs)
        }
        guard backingFileOffset <= cs else {
            throw .fieldOutOfRange(field: "backing_file_offset", value: backingFileOffset, allowed: 0...cs)
        }
        if version >= 3 && headerLength > 104 {
            let raw = try r.uint8()
            guard let type = QCow2CompressionType(rawValue: raw) else {
                throw .invalid(field: "compression_type", reason: "unknown compression type: \(raw)")
            }
            compressionType = type
            try r.skip(7)
            if headerLength > 112 {
                trailingHeaderBytes = try r.bytes(Int(headerLength) - 112)
            }
        }
        let flagged = incompatibleFeatures.contains(.compressionType)
        if compressionType != .zlib && !flagged {
            throw .invalid(field: "compression_type", reason: "Compression type incompatible feature bit must be set")
        }
        if compressionType == .zlib && flagged {
            throw .invalid(
                field: "compression_type", reason: "Compression type incompatible feature bit must not be set")
        }
        guard refcountOrder <= 6 else {
            throw .fieldOutOfRange(field: "refcount_order", value: UInt64(refcountOrder), allowed: 0...6)
        }
        if hasExtendedL2 && clusterBits < 14 {
            throw .invalid(field: "cluster_bits", reason: "Unsupported subcluster size: \(clusterSize / 32)")
        }
    }

    /// Encodes the header (v2: 72 bytes; v3: `headerLength` bytes, 112 for images we create).
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Int(headerLength))
        w.uint32(Self.magic)
        w.uint32(version)
        w.uint64(backingFileOffset)
        w.uint32(backingFileSize)
        w.uint32(clusterBits)
        w.uint64(size)
        w.uint32(cryptMethod)
        w.uint32(l1Size)
        w.uint64(l1TableOffset)
        w.uint64(refcountTableOffset)
        w.uint32(refcountTableClusters)
        w.uint32(nbSnapshots)
        w.uint64(snapshotsOffset)
        guard version >= 3 else { return w.bytes }
        w.uint64(incompatibleFeatures.rawValue)
        w.uint64(compatibleFeatures.rawValue)
        w.uint64(autoclearFeatures.rawValue)
        w.uint32(refcountOrder)
        w.uint32(headerLength)
        if headerLength > 104 {
            w.uint8(compressionType.rawValue)
            w.zeros(7)
            w.append(trailingHeaderBytes)
        }
        return w.bytes
    }

    /// Byte offsets of fields that QEMU updates in place with one small write.
    public enum FieldOffset {
        public static let size = 24
        public static let l1Size = 36
        public static let refcountTableOffset = 48
        public static let nbSnapshots = 60
        public static let incompatibleFeatures = 72
        public static let autoclearFeatures = 88
    }
}
