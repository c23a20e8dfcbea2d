/// Result of one `check` pass: qemu-img's QAPI `ImageCheck`.
///
/// Counters are plain integers; like qemu-img (`has_x = x != 0`), JSON leaves out every counter
/// that is zero except `check-errors`. Per-cluster findings (`Leaked cluster 7 refcount=1
/// reference=0`, `ERROR …`, `Repairing …`) are not part of the report: the engine streams them to
/// the caller while it checks, and the CLI writes them to stderr.
public struct CheckReport: Sendable, Equatable, Encodable {
    /// Image name as given on the command line (`filename`).
    public var filename: String
    /// Format driver name (`format`).
    public var format: String
    /// Internal errors (I/O, allocation) that kept the check from completing (`check-errors`).
    public var checkErrors: Int64
    /// Offset just past the last cluster in use, `(highest used cluster + 1) × cluster size`
    /// (`image-end-offset`).
    public var imageEndOffset: Int64
    /// Corruptions still present (`corruptions`).
    public var corruptions: Int64
    /// Leaked clusters still present (`leaks`).
    public var leaks: Int64
    /// Corruptions the repair pass fixed (`corruptions-fixed`).
    public var corruptionsFixed: Int64
    /// Leaks the repair pass fixed (`leaks-fixed`).
    public var leaksFixed: Int64
    /// Guest clusters, `ceil(virtual size / cluster size)` (`total-clusters`).
    public var totalClusters: Int64
    /// Clusters allocated in the active L1/L2 tree (`allocated-clusters`).
    public var allocatedClusters: Int64
    /// Allocated clusters not contiguous with their predecessor, plus every compressed cluster
    /// (`fragmented-clusters`).
    public var fragmentedClusters: Int64
    /// Compressed clusters (`compressed-clusters`).
    public var compressedClusters: Int64

    /// Creates a report; all counters default to zero.
    public init(
        filename: String, format: String, checkErrors: Int64 = 0, imageEndOffset: Int64 = 0,
        corruptions: Int64 = 0, leaks: Int64 = 0, corruptionsFixed: Int64 = 0, leaksFixed: Int64 = 0,
        totalClusters: Int64 = 0, allocatedClusters: Int64 = 0, fragmentedClusters: Int64 = 0,
        compressedClusters: Int64 = 0
    ) {
        self.filename = filename
        self.format = format
        self.checkErrors = checkErrors
        self.imageEndOffset = imageEndOffset
        self.corruptions = corruptions
        self.leaks = leaks
        self.corruptionsFixed = corruptionsFixed
        self.leaksFixed = leaksFixed
        self.totalClusters = totalClusters
        self.allocatedClusters = allocatedClusters
        self.fragmentedClusters = fragmentedClusters
        self.compressedClusters = compressedClusters
    }

    enum CodingKeys: String, CodingKey {
        case filename, format
        case checkErrors = "check-errors"
        case imageEndOffset = "image-end-offset"
        case corruptions, leaks
        case corruptionsFixed = "corruptions-fixed"
        case leaksFixed = "leaks-fixed"
        case totalClusters = "total-clusters"
        case allocatedClusters = "allocated-clusters"
        case fragmentedClusters = "fragmented-clusters"
        case compressedClusters = "compressed-clusters"
    }

    /// Encodes in QAPI order, leaving out zero counters other than `check-errors`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func nonZero(_ value: Int64, _ key: CodingKeys) throws {
            if value != 0 { try c.encode(value, forKey: key) }
        }
        try c.encode(filename, forKey: .filename)
        try c.encode(format, forKey: .format)
        try c.encode(checkErrors, forKey: .checkErrors)
        try nonZero(imageEndOffset, .imageEndOffset)
        try nonZero(corruptions, .corruptions)
        try nonZero(leaks, .leaks)
        try nonZero(corruptionsFixed, .corruptionsFixed)
        try nonZero(leaksFixed, .leaksFixed)
        try nonZero(totalClusters, .totalClusters)
        try nonZero(allocatedClusters, .allocatedClusters)
        try nonZero(fragmentedClusters, .fragmentedClusters)
        try nonZero(compressedClusters, .compressedClusters)
    }
}

/// What a check may repair: qemu's `BdrvCheckMode` (`-r leaks` / `-r all`).
public struct RepairMode: OptionSet, Sendable, Hashable {
    /// Raw bits: 1 = `BDRV_FIX_LEAKS`, 2 = `BDRV_FIX_ERRORS`.
    public let rawValue: Int
    /// Creates a mode from raw bits.
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// Decrement leaked refcounts (`-r leaks`).
    public static let leaks = RepairMode(rawValue: 1)
    /// Fix corruptions, rebuilding refcounts if needed (with `.leaks`: `-r all`).
    public static let errors = RepairMode(rawValue: 2)
    /// `-r all`.
    public static let all: RepairMode = [.leaks, .errors]
}
