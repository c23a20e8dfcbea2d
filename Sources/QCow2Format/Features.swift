/// Incompatible feature bits (header bytes 72–79): an unknown one means the image cannot be read.
public struct IncompatibleFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let dirty = Self(rawValue: 1 << 0)
    public static let corrupt = Self(rawValue: 1 << 1)
    public static let externalDataFile = Self(rawValue: 1 << 2)
    public static let compressionType = Self(rawValue: 1 << 3)
    public static let extendedL2 = Self(rawValue: 1 << 4)
    /// Bits QEMU 7.2 knows (`QCOW2_INCOMPAT_MASK`).
    public static let known = Self(rawValue: 0x1f)
}

/// Compatible feature bits (bytes 80–87): unknown ones are ignored.
public struct CompatibleFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let lazyRefcounts = Self(rawValue: 1 << 0)
    public static let known = Self(rawValue: 0x1)
}

/// Autoclear feature bits (bytes 88–95): unknown ones are cleared by any read-write open.
public struct AutoclearFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let bitmaps = Self(rawValue: 1 << 0)
    public static let dataFileRaw = Self(rawValue: 1 << 1)
    public static let known = Self(rawValue: 0x3)
}

/// The compression_type header byte (offset 104).
public enum QCow2CompressionType: UInt8, Sendable, CaseIterable {
    case zlib = 0
    case zstd = 1

    /// The name qemu-img prints and accepts (`compression_type=zstd`).
    public var name: String { self == .zlib ? "zlib" : "zstd" }

    public init?(name: String) {
        switch name {
        case "zlib": self = .zlib
        case "zstd": self = .zstd
        default: return nil
        }
    }
}

/// The crypt_method header field.
public enum CryptMethod: UInt32, Sendable {
    case none = 0
    case aes = 1
    case luks = 2
}

/// One 48-byte entry of the feature name table extension.
public struct FeatureNameEntry: Equatable, Sendable {
    public enum Kind: UInt8, Sendable { case incompatible = 0, compatible = 1, autoclear = 2 }
    public var kind: Kind
    public var bit: UInt8
    public var name: String

    public init(kind: Kind, bit: UInt8, name: String) {
        self.kind = kind
        self.bit = bit
        self.name = name
    }

    /// The eight entries QEMU 7.2 writes, in its order.
    public static let qemuDefault: [FeatureNameEntry] = [
        .init(kind: .incompatible, bit: 0, name: "dirty bit"),
        .init(kind: .incompatible, bit: 1, name: "corrupt bit"),
        .init(kind: .incompatible, bit: 2, name: "external data file"),
        .init(kind: .incompatible, bit: 3, name: "compression type"),
        .init(kind: .incompatible, bit: 4, name: "extended L2 entries"),
        .init(kind: .compatible, bit: 0, name: "lazy refcounts"),
        .init(kind: .autoclear, bit: 0, name: "bitmaps"),
        .init(kind: .autoclear, bit: 1, name: "raw external data"),
    ]
}
