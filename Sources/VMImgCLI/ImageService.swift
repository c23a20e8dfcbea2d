import ImageKit

/// What the CLI needs from the engine. Each command calls exactly one of these; the CLI does the
/// rest (argument checks, the qemu-img repair/re-check flow, merging map extents, rendering).
///
/// Errors should conform to ``ClassifiedImageError`` so they print in qemu-img's words and map to
/// the right exit code; anything else prints its description and exits 1.
public protocol ImageOperations: Sendable {
    /// Describes an image; with `backingChain`, fills ``ImageInfo/backingImage`` down the chain.
    func info(_ image: ImageOpenOptions, backingChain: Bool) throws -> ImageInfo
    /// Block-status extents for guest bytes `startOffset ..< startOffset + maxLength` (to the end
    /// when `maxLength` is nil), in order; they need not be merged.
    func map(_ image: ImageOpenOptions, startOffset: Int64, maxLength: Int64?) throws -> [MapExtent]
    /// One check pass, repairing what `repair` allows; streams each finding line (`Leaked cluster
    /// …`, `ERROR …`, `Repairing …`) to `messages` as it goes.
    func check(_ image: ImageOpenOptions, repair: RepairMode, messages: (String) -> Void) throws
        -> CheckReport
    /// Compares guest contents; reports progress in percent, and calls `sizeMismatch` when the
    /// common part matched and the larger image's tail is next (qemu-img's warning goes there).
    func compare(
        _ first: ImageOpenOptions, _ second: ImageOpenOptions, strict: Bool, progress: (Double) -> Void,
        sizeMismatch: () -> Void
    ) throws -> CompareResult
    /// Creates an image; calls `announce` with the final creation options (for the `Formatting …`
    /// line) right before writing anything.
    func create(_ request: CreateRequest, announce: ([String: String]) -> Void) throws
    /// Converts one or more images into a new one; reports progress in percent.
    func convert(_ request: ConvertRequest, progress: (Double) -> Void) throws
    /// Changes the virtual size.
    func resize(_ image: ImageOpenOptions, to size: SizeChange, shrink: Bool, preallocation: String?)
        throws
    /// Changes creation options of an existing image; reports progress in percent.
    func amend(
        _ image: ImageOpenOptions, options: [String: String], force: Bool, progress: (Double) -> Void)
        throws
    /// Space needed to convert an image, or a new image of `--size`.
    func measure(_ request: MeasureRequest) throws -> MeasureResult
    /// Internal snapshots, in table order.
    func snapshots(_ image: ImageOpenOptions) throws -> [SnapshotInfo]
    /// Creates, applies or deletes an internal snapshot.
    func snapshot(_ image: ImageOpenOptions, _ action: SnapshotAction) throws
    /// Commits an overlay into its backing file (or `base`); reports progress in percent.
    func commit(_ request: CommitRequest, progress: (Double) -> Void) throws
    /// Changes the backing file, copying data unless `unsafe`; reports progress in percent.
    func rebase(_ request: RebaseRequest, progress: (Double) -> Void) throws
    /// Runs the I/O benchmark and returns the elapsed seconds.
    func bench(_ request: BenchRequest) throws -> Double
    /// Changes a persistent dirty bitmap (`qemu-img bitmap`).
    func bitmap(_ request: BitmapRequest) throws
}

/// Where commands find the engine. Connecting the real engine means changing ``defaultOperations``;
/// tests swap in a fake with `ImageService.$current.withValue(fake) { … }`.
public enum ImageService {
    /// The engine used when nothing else is bound.
    public static let defaultOperations: any ImageOperations = EngineOperations()

    /// The engine commands call.
    @TaskLocal public static var current: any ImageOperations = defaultOperations
}

/// Stand-in until the engine is connected: every operation fails with "not implemented yet".
public struct UnconnectedOperations: ImageOperations {
    /// Creates the stand-in.
    public init() {}

    /// Throws ``CLIError/notImplemented(_:)``.
    public func info(_ image: ImageOpenOptions, backingChain: Bool) throws -> ImageInfo {
        throw CLIError.notImplemented("info")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func map(_ image: ImageOpenOptions, startOffset: Int64, maxLength: Int64?) throws
        -> [MapExtent]
    {
        throw CLIError.notImplemented("map")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func check(_ image: ImageOpenOptions, repair: RepairMode, messages: (String) -> Void)
        throws
        -> CheckReport
    {
        throw CLIError.notImplemented("check")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func compare(
        _ first: ImageOpenOptions, _ second: ImageOpenOptions, strict: Bool, progress: (Double) -> Void,
        sizeMismatch: () -> Void
    ) throws -> CompareResult {
        throw CLIError.notImplemented("compare")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func create(_ request: CreateRequest, announce: ([String: String]) -> Void) throws {
        throw CLIError.notImplemented("create")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func convert(_ request: ConvertRequest, progress: (Double) -> Void) throws {
        throw CLIError.notImplemented("convert")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func resize(
        _ image: ImageOpenOptions, to size: SizeChange, shrink: Bool, preallocation: String?
    )
        throws
    {
        throw CLIError.notImplemented("resize")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func amend(
        _ image: ImageOpenOptions, options: [String: String], force: Bool, progress: (Double) -> Void
    ) throws {
        throw CLIError.notImplemented("amend")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func measure(_ request: MeasureRequest) throws -> MeasureResult {
        throw CLIError.notImplemented("measure")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func snapshots(_ image: ImageOpenOptions) throws -> [SnapshotInfo] {
        throw CLIError.notImplemented("snapshot")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func snapshot(_ image: ImageOpenOptions, _ action: SnapshotAction) throws {
        throw CLIError.notImplemented("snapshot")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func commit(_ request: CommitRequest, progress: (Double) -> Void) throws {
        throw CLIError.notImplemented("commit")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func rebase(_ request: RebaseRequest, progress: (Double) -> Void) throws {
        throw CLIError.notImplemented("rebase")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func bench(_ request: BenchRequest) throws -> Double {
        throw CLIError.notImplemented("bench")
    }
    /// Throws ``CLIError/notImplemented(_:)``.
    public func bitmap(_ request: BitmapRequest) throws {
        throw CLIError.notImplemented("bitmap")
    }
}
