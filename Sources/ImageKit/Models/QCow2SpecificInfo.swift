/// qcow2 details of `info`: qemu-img's QAPI `ImageInfoSpecificQCow2`.
///
/// For a v2 image qemu-img fills only `compat`, `refcount-bits` and `compression-type`; leave the
/// v3-only members `nil` to match.
public struct QCow2SpecificInfo: Sendable, Equatable, Encodable {
    /// `"0.10"` for version 2, `"1.1"` for version 3 (`compat`).
    public var compat: String
    /// External data file name from the header extension (`data-file`).
    public var dataFile: String?
    /// Whether the external data file stays a valid raw image; autoclear bit 1 (`data-file-raw`).
    /// Present whenever the image has a data file.
    public var dataFileRaw: Bool?
    /// Extended L2 entries with subclusters; incompatible bit 4 (`extended-l2`).
    public var extendedL2: Bool?
    /// Lazy refcounts; compatible bit 0 (`lazy-refcounts`).
    public var lazyRefcounts: Bool?
    /// Corrupt flag; incompatible bit 1 (`corrupt`).
    public var corrupt: Bool?
    /// Width of a refcount entry, `1 << refcount_order` (`refcount-bits`).
    public var refcountBits: Int64
    /// Persistent dirty bitmaps (`bitmaps`); `nil` when there are none, as qemu-img prints it.
    public var bitmaps: [BitmapInfo]?
    /// `"zlib"` or `"zstd"` (`compression-type`).
    public var compressionType: String

    /// Creates qcow2 details; defaults describe a fresh v3 image.
    public init(
        compat: String = "1.1", dataFile: String? = nil, dataFileRaw: Bool? = nil,
        extendedL2: Bool? = false, lazyRefcounts: Bool? = false, corrupt: Bool? = false,
        refcountBits: Int64 = 16, bitmaps: [BitmapInfo]? = nil, compressionType: String = "zlib"
    ) {
        self.compat = compat
        self.dataFile = dataFile
        self.dataFileRaw = dataFileRaw
        self.extendedL2 = extendedL2
        self.lazyRefcounts = lazyRefcounts
        self.corrupt = corrupt
        self.refcountBits = refcountBits
        self.bitmaps = bitmaps
        self.compressionType = compressionType
    }

    /// What qemu-img 7.2 reports for a version 2 image.
    public static func version2(refcountBits: Int64 = 16) -> QCow2SpecificInfo {
        QCow2SpecificInfo(
            compat: "0.10", extendedL2: nil, lazyRefcounts: nil, corrupt: nil, refcountBits: refcountBits)
    }

    enum CodingKeys: String, CodingKey {
        case compat
        case dataFile = "data-file"
        case dataFileRaw = "data-file-raw"
        case extendedL2 = "extended-l2"
        case lazyRefcounts = "lazy-refcounts"
        case corrupt
        case refcountBits = "refcount-bits"
        case bitmaps
        case compressionType = "compression-type"
    }
}

/// One persistent dirty bitmap: QAPI `Qcow2BitmapInfo`.
public struct BitmapInfo: Sendable, Equatable, Encodable {
    /// Bitmap name (`name`).
    public var name: String
    /// Bytes covered by one bit (`granularity`).
    public var granularity: Int64
    /// `"in-use"` and/or `"auto"` (`flags`).
    public var flags: [String]

    /// Creates a bitmap description.
    public init(name: String, granularity: Int64, flags: [String]) {
        self.name = name
        self.granularity = granularity
        self.flags = flags
    }
}
