/// What `vmimg info` reports about one image: qemu-img's QAPI `ImageInfo`.
///
/// The engine fills it; the CLI renders it. Property order is the QAPI schema order, which is the
/// order qemu-img inserts keys into its JSON dictionary (and so decides ties in its key order).
/// Optional properties are absent from JSON when `nil`, like QAPI's `has_*` flags.
public struct ImageInfo: Sendable, Equatable, Encodable {
    /// The name the image was opened by, as given on the command line (`filename`).
    public var filename: String
    /// Format driver name: `qcow2` or `raw` (`format`).
    public var format: String
    /// Whether the image was not cleanly closed: qcow2 incompatible bit 0 (`dirty-flag`).
    public var dirtyFlag: Bool?
    /// Bytes the file occupies on the host, from `st_blocks` (`actual-size`).
    public var actualSize: Int64?
    /// Guest-visible size in bytes (`virtual-size`).
    public var virtualSize: Int64
    /// Cluster size in bytes (`cluster-size`); `nil` for raw.
    public var clusterSize: Int64?
    /// Whether the image is encrypted (`encrypted`); qemu-img only prints it when true.
    public var encrypted: Bool?
    /// Backing file name as stored in the header (`backing-filename`).
    public var backingFilename: String?
    /// Backing file path resolved against the image's directory (`full-backing-filename`).
    public var fullBackingFilename: String?
    /// Backing format from the header extension (`backing-filename-format`).
    public var backingFilenameFormat: String?
    /// Internal snapshots; left out of the output when empty, as qemu-img does (`snapshots`).
    public var snapshots: [SnapshotInfo]
    /// The backing image, for callers that want the chain as a tree (`backing-image`).
    ///
    /// `vmimg info --backing-chain` prints the chain as a list, like qemu-img 7.2, so the CLI
    /// flattens this before rendering.
    public var backingImage: ImageInfo? {
        get { backingStorage.first }
        set { backingStorage = newValue.map { [$0] } ?? [] }
    }
    // An array lets the struct contain itself; it holds at most one element.
    private var backingStorage: [ImageInfo] = []
    /// qcow2 header details (`format-specific`, printed as `{"type": "qcow2", "data": …}`).
    public var formatSpecific: QCow2SpecificInfo?

    /// Creates an image description; everything but the three required fields starts empty.
    public init(
        filename: String, format: String, virtualSize: Int64, actualSize: Int64? = nil,
        clusterSize: Int64? = nil, dirtyFlag: Bool? = nil, encrypted: Bool? = nil,
        backingFilename: String? = nil, fullBackingFilename: String? = nil,
        backingFilenameFormat: String? = nil, snapshots: [SnapshotInfo] = [],
        backingImage: ImageInfo? = nil, formatSpecific: QCow2SpecificInfo? = nil
    ) {
        self.filename = filename
        self.format = format
        self.virtualSize = virtualSize
        self.actualSize = actualSize
        self.clusterSize = clusterSize
        self.dirtyFlag = dirtyFlag
        self.encrypted = encrypted
        self.backingFilename = backingFilename
        self.fullBackingFilename = fullBackingFilename
        self.backingFilenameFormat = backingFilenameFormat
        self.snapshots = snapshots
        self.backingImage = backingImage
        self.formatSpecific = formatSpecific
    }

    /// This image followed by its backing images, top first (the `--backing-chain` list).
    public var chain: [ImageInfo] {
        var result: [ImageInfo] = []
        var next: ImageInfo? = self
        while let current = next {
            var flat = current
            flat.backingImage = nil
            result.append(flat)
            next = current.backingImage
        }
        return result
    }

    enum CodingKeys: String, CodingKey {
        case filename, format
        case dirtyFlag = "dirty-flag"
        case actualSize = "actual-size"
        case virtualSize = "virtual-size"
        case clusterSize = "cluster-size"
        case encrypted
        case backingFilename = "backing-filename"
        case fullBackingFilename = "full-backing-filename"
        case backingFilenameFormat = "backing-filename-format"
        case snapshots
        case backingImage = "backing-image"
        case formatSpecific = "format-specific"
    }

    /// Encodes in QAPI order, skipping absent members and an empty snapshot list.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(filename, forKey: .filename)
        try c.encode(format, forKey: .format)
        try c.encodeIfPresent(dirtyFlag, forKey: .dirtyFlag)
        try c.encodeIfPresent(actualSize, forKey: .actualSize)
        try c.encode(virtualSize, forKey: .virtualSize)
        try c.encodeIfPresent(clusterSize, forKey: .clusterSize)
        try c.encodeIfPresent(encrypted, forKey: .encrypted)
        try c.encodeIfPresent(backingFilename, forKey: .backingFilename)
        try c.encodeIfPresent(fullBackingFilename, forKey: .fullBackingFilename)
        try c.encodeIfPresent(backingFilenameFormat, forKey: .backingFilenameFormat)
        if !snapshots.isEmpty { try c.encode(snapshots, forKey: .snapshots) }
        try c.encodeIfPresent(backingImage, forKey: .backingImage)
        if let formatSpecific {
            var union = c.nestedContainer(keyedBy: FormatSpecificKeys.self, forKey: .formatSpecific)
            try union.encode("qcow2", forKey: .type)
            try union.encode(formatSpecific, forKey: .data)
        }
    }

    private enum FormatSpecificKeys: String, CodingKey { case type, data }
}
