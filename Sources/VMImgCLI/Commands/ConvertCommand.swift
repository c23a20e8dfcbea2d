import ArgumentParser

/// `convert [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt]
/// [-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] [-S sparse_size]
/// [-r rate_limit] [-m num_coroutines] [-W] [--salvage] [--target-is-zero] [--bitmaps [--skip-broken-bitmaps]]
/// [--target-image-opts] filename [filename2 […]] output_filename`.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Copy one or more images into a new image, possibly of another format.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag
    @OptionGroup var progress: ProgressFlag
    @OptionGroup var cache: CacheFlags
    @OptionGroup var creation: CreationOptionsFlag

    @Option(name: .customShort("O"), help: ArgumentHelp("Output format.", valueName: "output_fmt"))
    var outputFormat: String?
    @Option(
        name: .customShort("B"),
        help: ArgumentHelp("Backing file of the output.", valueName: "backing_file"))
    var backingFile: String?
    @Option(
        name: .customShort("F"),
        help: ArgumentHelp("Format of that backing file.", valueName: "backing_fmt"))
    var backingFormat: String?
    @Option(
        name: .customShort("l"),
        help: ArgumentHelp("Convert this snapshot.", valueName: "snapshot_param"))
    var snapshot: String?
    @Option(
        name: .customShort("S"),
        help: ArgumentHelp("Zero run length kept sparse.", valueName: "sparse_size"))
    var sparseSize: String?
    @Option(
        name: .customShort("r"), help: ArgumentHelp("Rate limit, bytes/s.", valueName: "rate_limit"))
    var rateLimit: String?
    @Option(
        name: .customShort("m"),
        help: ArgumentHelp("Parallel requests (1-16).", valueName: "num_coroutines"))
    var coroutines: Int = 8
    @Flag(name: .customShort("c"), help: "Compress the output.") var compress = false
    @Flag(name: .customShort("C"), help: "Use copy offloading.") var copyRange = false
    @Flag(name: .customShort("n"), help: "Don't create the output image.") var skipCreate = false
    @Flag(name: .customShort("W"), help: "Allow out-of-order writes.") var outOfOrder = false
    @Flag(name: .customLong("target-is-zero"), help: "The target reads as zeros.") var targetIsZero =
        false
    @Flag(name: .customLong("salvage"), help: "Continue past read errors.") var salvage = false
    @Flag(name: .customLong("bitmaps"), help: "Copy persistent bitmaps.") var bitmaps = false
    @Flag(name: .customLong("skip-broken-bitmaps"), help: "With --bitmaps: leave out inconsistent bitmaps.")
    var skipBrokenBitmaps = false
    @Flag(
        name: .customLong("target-image-opts"),
        help: "The output filename is an option string (needs -n): driver=qcow2,file.filename=PATH")
    var targetImageOpts = false
    @Flag(
        name: .customLong("keep-snapshots"),
        help: "qcow2 to qcow2: keep every internal snapshot, shared clusters stored once (vmimg extra).")
    var keepSnapshots = false

    @Argument(help: "Source image(s) then the output file.") var filenames: [String] = []

    func run() throws {
        if creation.wantsHelp {
            Console.current.out(try CreationOptionHelp.text(format: outputFormat ?? "raw"))
            return
        }
        guard filenames.count >= 2, let output = filenames.last else {
            throw CLIError("Must specify image file name")
        }
        guard (1...16).contains(coroutines) else {
            throw CLIError(
                "Invalid number of coroutines. Allowed number of coroutines is between 1 and 16")
        }
        var request = ConvertRequest(
            sources: try filenames.dropLast().map { try image.open($0, snapshot: snapshot) }, output: output)
        if let sparseSize {
            let bytes = try SizeParser.cvtnum("buffer size for sparse output", sparseSize)
            guard bytes % 512 == 0, bytes / 512 <= 32768 else {
                throw CLIError(
                    "Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to "
                        + "16777216. Select 0 to disable sparse detection (fully allocates output).")
            }
            request.sparseSize = bytes
        }
        request.rateLimit = try rateLimit.map { try SizeParser.cvtnum("rate limit", $0) }
        // qemu-img's order: the flag checks, then the sources, then the target's option string.
        if targetImageOpts && !skipCreate { throw CLIError("--target-image-opts requires use of -n flag") }
        if targetIsZero && !skipCreate { throw CLIError("--target-is-zero requires use of -n flag") }
        if skipCreate && creation.joined != nil {
            throw CLIError("-o has no effect when skipping image creation")
        }
        request.outputFormat = outputFormat ?? "raw"
        if targetImageOpts {
            if outputFormat != nil { throw CLIError("--image-opts and --format are mutually exclusive") }
            let target = try ImageOpts.parse(output)
            request.output = target.path
            request.targetOptions = target
        }
        request.options = creation.dictionary
        request.backingFile = backingFile
        request.backingFormat = backingFormat
        request.compress = compress
        request.copyRange = copyRange
        request.skipCreate = skipCreate
        request.coroutines = coroutines
        request.outOfOrder = outOfOrder
        request.targetIsZero = targetIsZero
        request.salvage = salvage
        request.bitmaps = bitmaps
        request.skipBrokenBitmaps = skipBrokenBitmaps
        request.quiet = quiet.quiet
        request.keepSnapshots = keepSnapshots
        request.cache = cache.cache
        let printer = progress.printer(quiet: quiet.quiet, step: 1)
        printer.update(0)
        try engine { try $0.convert(request, progress: printer.update) }
        printer.update(100)
        printer.finish()
    }
}
