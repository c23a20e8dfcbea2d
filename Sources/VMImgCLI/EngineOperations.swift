import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format

/// The real engine behind the CLI: each operation opens images under the host-file policy and
/// calls ImageKit / QCow2.
public struct EngineOperations: ImageOperations {
    public init() {}

    func open(_ image: ImageOpenOptions, writable: Bool = false, backing: Bool = true) throws -> any VirtualDisk {
        var options = openOptions(image)
        options.writable = writable
        options.openBacking = backing
        return try ImageOpener.open(image.path, options: options)
    }

    /// Opens an image and, with `-l`, the snapshot view instead of the active layer.
    func openSource(_ image: ImageOpenOptions) throws -> any VirtualDisk {
        let disk = try open(image)
        guard let name = image.snapshot else { return disk }
        guard let qcow2 = disk as? QCow2Image else {
            throw ImageError(
                .unsupported, "Failed to load snapshot: snapshots are not supported by '\(disk.formatName)'")
        }
        let selector = SnapshotSelector(convertArgument: name)
        guard qcow2.findSnapshot(selector) != nil else {
            throw ImageError(.open, "Failed to load snapshot: Can't find snapshot")
        }
        return try SnapshotView(image: qcow2, selector: selector)
    }

    public func info(_ image: ImageOpenOptions, backingChain: Bool) throws -> ImageInfo {
        let options = openOptions(image)
        return try ImageInspector.info(path: image.path, options: options, backingChain: backingChain)
    }

    public func map(_ image: ImageOpenOptions, startOffset: Int64, maxLength: Int64?) throws -> [MapExtent] {
        let disk = try open(image)
        let extents = try disk.mapExtents(
            start: UInt64(max(0, startOffset)), length: maxLength.map { UInt64(max(0, $0)) })
        return extents.map {
            MapExtent(
                start: Int64($0.start), length: Int64($0.length), depth: Int64($0.depth), present: $0.present,
                zero: $0.zero, data: $0.data, offset: $0.offset.map { Int64($0) }, filename: $0.filename)
        }
    }

    public func check(_ image: ImageOpenOptions, repair: RepairMode, messages: (String) -> Void) throws -> CheckReport {
        var options = openOptions(image)
        options.writable = !repair.isEmpty
        options.openBacking = false
        options.skipDirtyRepair = true
        options.inspectOnly = true
        let disk = try ImageOpener.open(image.path, options: options)
        guard let qcow2 = disk as? QCow2Image else {
            throw ImageError(.checkNotSupported, "This image format does not support checks")
        }
        var mode: QCow2RepairMode = []
        if repair.contains(.leaks) { mode.insert(.leaks) }
        if repair.contains(.errors) { mode.insert(.errors) }
        let r = try qcow2.checkPass(repair: mode)
        r.messages.forEach(messages)
        if let failure = r.failure { throw ImageError(.io, failure) }
        return CheckReport(
            filename: image.path, format: "qcow2", checkErrors: Int64(r.checkErrors),
            imageEndOffset: Int64(r.imageEndOffset), corruptions: Int64(r.corruptions), leaks: Int64(r.leaks),
            corruptionsFixed: Int64(r.corruptionsFixed), leaksFixed: Int64(r.leaksFixed),
            totalClusters: Int64(r.totalClusters), allocatedClusters: Int64(r.allocatedClusters),
            fragmentedClusters: Int64(r.fragmentedClusters), compressedClusters: Int64(r.compressedClusters))
    }

    public func compare(
        _ first: ImageOpenOptions, _ second: ImageOpenOptions, strict: Bool, progress: (Double) -> Void,
        sizeMismatch: () -> Void
    ) throws -> CompareResult {
        let a = try openSource(first)
        let b = try openSource(second)
        return try Comparer.compare(a, b, strict: strict, progress: progress, sizeMismatch: sizeMismatch)
    }

    public func create(_ request: CreateRequest, announce: ([String: String]) -> Void) throws {
        var dict = request.options
        if let b = request.backingFile { dict["backing_file"] = b }
        if let f = request.backingFormat { dict["backing_fmt"] = f }
        var size = request.size.map { UInt64($0) }
        if size == nil, let backing = dict["backing_file"] {
            // qemu-img takes the size from the backing file when none is given.
            let resolved = try ImageOpener.resolveBacking(backing, overlay: request.filename)
            size = try ImageOpener.open(resolved, options: OpenOptions(format: dict["backing_fmt"], forceShare: true))
                .virtualSize
        }
        guard let size else { throw CLIError.usage("Image creation needs a size parameter") }
        switch request.format {
        case "qcow2":
            if dict["backing_file"] != nil && dict["backing_fmt"] == nil && !request.unsafe {
                throw ImageError(.usage, "Backing file specified without backing format", path: request.filename)
            }
            let options = try CreationOptions.qcow2(dict, size: size)
            var shown = dict
            shown["size"] = String((size + 511) / 512 * 512)
            shown["cluster_size"] = String(1 << options.clusterBits)
            announce(shown)
            try ImageCreator.createQCow2(path: request.filename, options: options)
        case "raw":
            var shown = dict
            shown["size"] = String(size)
            announce(shown)
            let prealloc = try CreationOptions.preallocation(dict["preallocation"])
            try ImageCreator.createRaw(path: request.filename, size: size, preallocation: prealloc)
        default:
            throw ImageError(.usage, "Unknown file format '\(request.format)'")
        }
    }

    public func convert(_ request: ConvertRequest, progress: (Double) -> Void) throws {
        guard let first = request.sources.first else { throw CLIError("Expecting image file name") }
        if request.sources.count > 1 {
            // qemu-img's words; vmimg refuses `-l snapshot.name=…` the same way (qemu-img would
            // load it in the first source only).
            if first.snapshot != nil { throw CLIError("No support for concatenating multiple snapshot") }
            if request.keepSnapshots { throw CLIError("--keep-snapshots takes one source") }
        }
        if request.keepSnapshots { return try convertKeepingSnapshots(request, source: first) }
        let disk: any VirtualDisk =
            request.sources.count == 1
            ? try openSource(first) : ConcatenatedDisk(try request.sources.map { try openSource($0) })
        let formatName = try request.targetOptions.map(targetFormat) ?? request.outputFormat
        guard let format = ConvertTarget.Format(rawValue: formatName) else {
            throw ImageError(.usage, "Unknown file format '\(formatName)'")
        }
        var target = ConvertTarget(path: request.output, format: format)
        target.compress = request.compress
        target.skipCreate = request.skipCreate
        target.targetIsZero = request.targetIsZero
        target.rateLimit = request.rateLimit
        target.salvage = request.salvage
        if !request.quiet { target.warn = { Console.current.err("vmimg: warning: \($0)\n") } }
        target.sparseSize = Int(request.sparseSize)
        target.flushes = (request.cache ?? "unsafe") != "unsafe"
        if format == .qcow2 {
            var dict = request.options
            if let b = request.backingFile { dict["backing_file"] = b }
            if let f = request.backingFormat { dict["backing_fmt"] = f }
            target.qcow2 = try CreationOptions.qcow2(dict, size: disk.virtualSize)
            target.copyTopLayerOnly = target.qcow2.backingFile != nil
            if target.copyTopLayerOnly && request.targetIsZero {
                throw CLIError("Cannot use --target-is-zero when the destination image has a backing file")
            }
            if target.copyTopLayerOnly && request.sources.count > 1 {
                throw CLIError(
                    "Having a backing file for the target makes no sense when concatenating multiple input images")
            }
        } else if request.compress {
            throw ImageError(.unsupported, "Compression not supported for this file format")
        }
        if let bitmaps = try bitmapsToCopy(request, from: disk, to: target) {
            target.beforeClose = { output in
                try Self.copyBitmaps(bitmaps.entries, from: bitmaps.image, to: output)
            }
        }
        try Converter.convert(ConvertSource(disk: disk), to: target, progress: progress)
    }

    /// `convert --bitmaps`: the source's persistent bitmaps, refused as qemu-img refuses them,
    /// before anything is written (qemu-img creates the output before its check of the output).
    func bitmapsToCopy(_ request: ConvertRequest, from disk: any VirtualDisk, to target: ConvertTarget) throws
        -> (image: QCow2Image, entries: [BitmapDirectoryEntry])?
    {
        guard request.bitmaps else { return nil }
        guard request.sources.count == 1 else {
            throw ImageError(.unsupported, "Copying bitmaps only possible with single source")
        }
        guard let image = (disk as? QCow2Image) ?? (disk as? SnapshotView)?.image, image.header.version >= 3 else {
            throw ImageError(.unsupported, "Source lacks bitmap support")
        }
        let entries = try image.persistentBitmaps()
        // qemu-img walks its bitmap list, newest first (the directory's order reversed).
        if !request.skipBrokenBitmaps, let broken = entries.reversed().first(where: \.inUse) {
            throw ImageError(
                .unsupported,
                "Cannot copy inconsistent bitmap '\(broken.name)'\nTry --skip-broken-bitmaps, or use 'qemu-img "
                    + "bitmap --remove' to delete it")
        }
        if target.format == .raw { throw ImageError(.unsupported, "Format driver 'raw' does not support bitmaps") }
        let version =
            target.skipCreate
            ? try (ImageOpener.open(target.path, options: OpenOptions(format: "qcow2")) as? QCow2Image)?.header.version
            : target.qcow2.version
        if (version ?? 2) < 3 { throw ImageError(.unsupported, "Format driver 'qcow2' does not support bitmaps") }
        return (image, entries)
    }

    /// Stores the bitmaps in the converted output, as qemu-img does after the copy: each with its
    /// granularity, enabled or not, and its bits; inconsistent ones are left out with a warning.
    static func copyBitmaps(_ entries: [BitmapDirectoryEntry], from image: QCow2Image, to output: QCow2Image) throws {
        for e in entries.reversed() where e.inUse {
            Console.current.err("vmimg: warning: Skipping inconsistent bitmap '\(e.name)'\n")
        }
        let copied = entries.filter { !$0.inUse }
        guard !copied.isEmpty else { return }
        let tables = try copied.map { try image.bitmapTable($0) }
        let cs = output.geometry.clusterSize
        try output.addPersistentBitmaps(
            copied.map { ($0.nameBytes, $0.granularityBits, $0.flags & BitmapDirectoryEntry.flagAuto) }
        ) { i, piece in
            try image.bitmapData(copied[i], table: tables[i], piece: piece, clusterSize: cs)
        }
    }

    /// The format of the existing output `--target-image-opts` names: opened once as qemu-img
    /// opens it (its errors name the option string; no `driver=` probes), then released.
    func targetFormat(_ target: ImageOpenOptions) throws -> String {
        try open(target, writable: true, backing: false).formatName
    }

    /// `convert --keep-snapshots`: qcow2 to qcow2 with every internal snapshot.
    func convertKeepingSnapshots(_ request: ConvertRequest, source: ImageOpenOptions) throws {
        guard request.outputFormat == "qcow2" else {
            throw CLIError("--keep-snapshots needs -O qcow2")
        }
        guard source.snapshot == nil, !request.skipCreate else {
            throw CLIError("--keep-snapshots cannot be combined with -l or -n")
        }
        guard let image = try open(source) as? QCow2Image else {
            throw ImageError(.unsupported, "--keep-snapshots needs a qcow2 source")
        }
        var dict = request.options
        if let b = request.backingFile { dict["backing_file"] = b }
        if let f = request.backingFormat { dict["backing_fmt"] = f }
        let options = try SnapshotCopyOptions(
            create: CreationOptions.qcow2(dict, size: image.virtualSize), compress: request.compress)
        _ = try Compactor.convertKeepingSnapshots(image, to: request.output, options: options)
    }

    public func resize(_ image: ImageOpenOptions, to size: SizeChange, shrink: Bool, preallocation: String?) throws {
        let disk = try open(image, writable: true)
        let current = Int64(disk.virtualSize)
        let newSize: Int64
        switch size {
        case .absolute(let n): newSize = n
        case .grow(let n): newSize = current + n
        case .shrink(let n): newSize = current - n
        }
        guard newSize >= 0 else { throw CLIError("New image size must be positive") }
        let prealloc = try CreationOptions.preallocation(preallocation)
        if let qcow2 = disk as? QCow2Image {
            if newSize < current && !shrink {
                throw CLIError(
                    "Use the --shrink option to perform a shrink operation.\nvmimg: warning: Shrinking an image will "
                        + "delete all data beyond the shrunken image's end. Before performing such an operation, make "
                        + "sure there is no important data there.")
            }
            try qcow2.resize(to: UInt64(newSize), preallocation: prealloc)
            try qcow2.close()
        } else if let raw = disk as? RawImage {
            if newSize < current && !shrink {
                throw CLIError("Use the --shrink option to perform a shrink operation.")
            }
            try raw.device.setLength(UInt64(newSize))
            if prealloc == .falloc && newSize > current {
                try raw.device.preallocate(offset: UInt64(current), count: UInt64(newSize - current))
            }
            try raw.device.flush()
        }
    }

    public func amend(_ image: ImageOpenOptions, options: [String: String], force: Bool, progress: (Double) -> Void)
        throws
    {
        let openQCow2 = { () throws -> QCow2Image in
            let disk = try open(image, writable: true)
            guard let qcow2 = disk as? QCow2Image else {
                throw ImageError(.unsupported, "Format driver '\(disk.formatName)' does not support option amendment")
            }
            return qcow2
        }
        let plan = try Amender.plan(options, header: try openQCow2().header)
        try Amender.apply(plan, open: openQCow2, progress: progress)
    }

    public func measure(_ request: MeasureRequest) throws -> MeasureResult {
        let source = try request.source.map { try openSource($0) }
        let size = request.size.map { UInt64($0) }
        let options = try CreationOptions.qcow2(request.options, size: size ?? source?.virtualSize ?? 0)
        guard ["qcow2", "raw"].contains(request.outputFormat) else {
            throw ImageError(.usage, "Unknown file format '\(request.outputFormat)'")
        }
        return try Measurer.measure(source: source, size: size, format: request.outputFormat, options: options)
    }

    public func snapshots(_ image: ImageOpenOptions) throws -> [SnapshotInfo] {
        let disk = try open(image, backing: false)
        guard let qcow2 = disk as? QCow2Image else { return [] }
        return ImageInspector.snapshotInfos(qcow2)
    }

    public func snapshot(_ image: ImageOpenOptions, _ action: SnapshotAction) throws {
        let disk = try open(image, writable: true, backing: false)
        guard let qcow2 = disk as? QCow2Image else {
            throw ImageError(.unsupported, "snapshots are not supported by '\(disk.formatName)'")
        }
        do {
            switch action {
            case .create(let name): _ = try qcow2.createSnapshot(name: name)
            case .apply(let name): try qcow2.applySnapshot(name)
            case .delete(let name): try qcow2.deleteSnapshot(name)
            }
            try qcow2.close()
        } catch let error as SnapshotError {
            throw ImageError(.other, error.description)
        }
    }

    public func commit(_ request: CommitRequest, progress: (Double) -> Void) throws {
        var options = CommitOptions()
        options.base = request.base
        options.keepOverlay = request.keepOverlay
        options.rateLimit = request.rateLimit
        try withoutActuallyEscaping(progress) { p in
            try ImageCommit.commit(
                request.image.path, options: options, open: openOptions(request.image), progress: p)
        }
    }

    public func rebase(_ request: RebaseRequest, progress: (Double) -> Void) throws {
        try withoutActuallyEscaping(progress) { p in
            try ImageRebase.rebase(
                request.image.path, backingFile: request.backingFile, backingFormat: request.backingFormat,
                unsafe: request.unsafe, open: openOptions(request.image), progress: p)
        }
    }

    func openOptions(_ image: ImageOpenOptions) -> OpenOptions {
        var options = OpenOptions(
            format: image.format, forceShare: image.forceShare, allowDataFile: image.allowDataFile)
        options.cache = image.cache
        options.displayName = image.displayName
        return options
    }

    public func bitmap(_ request: BitmapRequest) throws {
        let disk = try open(request.image, writable: true)
        guard let image = disk as? QCow2Image else {
            throw ImageError(.unsupported, "Format driver '\(disk.formatName)' does not support bitmaps")
        }
        // qemu-img's default: the cluster size, within 4 KiB…64 KiB.
        let granularity = request.granularity ?? Int64(min(65536, max(4096, image.geometry.clusterSize)))
        let operations = try request.operations.map { operation -> BitmapOperation in
            switch operation {
            case .add:
                guard granularity >= 512, granularity <= 1 << 31, granularity & (granularity - 1) == 0 else {
                    throw ImageError(
                        .unsupported,
                        "Operation add on bitmap \(request.name) failed: Granularity must be power of 2 and at least 512"
                    )
                }
                return .add(granularityBits: UInt8(granularity.trailingZeroBitCount))
            case .remove: return .remove
            case .clear: return .clear
            case .enable: return .enable
            case .disable: return .disable
            }
        }
        do {
            try image.changeBitmap(Array(request.name.utf8), operations)
        } catch {
            try? image.close()
            throw error
        }
        try image.close()
    }

    public func bench(_ request: BenchRequest) throws -> Double {
        let parameters = BenchParameters(
            count: request.count, depth: request.depth, bufferSize: Int(request.bufferSize),
            offset: UInt64(max(0, request.offset)), step: UInt64(max(0, request.step ?? 0)), write: request.write,
            pattern: request.pattern, flushInterval: request.flushInterval, drainOnFlush: !request.noDrain)
        try parameters.validate()
        let disk = try open(request.image, writable: request.write)
        let console = Console.current
        var onFlush: (@Sendable (Int) -> Void)?
        if request.flushLog {
            onFlush = { (n: Int) in console.out("flushed \(n)\n") }
        }
        let seconds = try Bench.run(try Bench.Target(disk), parameters: parameters, onFlush: onFlush)
        if let qcow2 = disk as? QCow2Image, request.write { try qcow2.close() }
        return seconds
    }
}
