import ArgumentParser
import ImageKit

/// `-f fmt`, `-U`, `--allow-data-file`: flags of every command that opens one image.
struct ImageFlags: ParsableArguments {
    @Option(
        name: .customShort("f"),
        help: ArgumentHelp("Image format (probed when omitted).", valueName: "fmt"))
    var format: String?

    @Flag(
        name: [.customShort("U"), .customLong("force-share")], help: "Open without taking image locks.")
    var forceShare = false

    @Flag(
        name: .customLong("allow-data-file"),
        help: "Allow images that name an external data file (vmimg).")
    var allowDataFile = false

    @Flag(
        name: .customLong("image-opts"),
        help: "The filename is an option string: driver=qcow2,file.filename=PATH,l2-cache-size=…")
    var imageOpts = false

    /// The parsed values.
    var values: ImageArguments {
        ImageArguments(
            format: format, forceShare: forceShare, allowDataFile: allowDataFile, imageOpts: imageOpts)
    }

    /// - Throws: as ``ImageArguments/open(_:snapshot:)``.
    func open(_ path: String, snapshot: String? = nil) throws -> ImageOpenOptions {
        try values.open(path, snapshot: snapshot)
    }
}

/// The values of ``ImageFlags`` as plain data, which ``FastParser`` fills without ArgumentParser.
struct ImageArguments: Equatable {
    var format: String?
    var forceShare = false
    var allowDataFile = false
    var imageOpts = false

    /// - Throws: qemu-img's errors for `--image-opts` with `-f` or a bad option string.
    func open(_ path: String, snapshot: String? = nil) throws -> ImageOpenOptions {
        guard imageOpts else {
            return ImageOpenOptions(
                path: path, format: format, forceShare: forceShare, allowDataFile: allowDataFile,
                snapshot: snapshot)
        }
        if format != nil { throw CLIError("--image-opts and --format are mutually exclusive") }
        var options = try ImageOpts.parse(path)
        options.forceShare = forceShare
        options.allowDataFile = allowDataFile
        options.snapshot = snapshot
        return options
    }
}

/// `-q`: quiet.
struct QuietFlag: ParsableArguments {
    @Flag(name: .customShort("q"), help: "Quiet: print no report or progress.")
    var quiet = false
}

/// `--output=human|json` (also `--output json`).
struct OutputFlag: ParsableArguments {
    @Option(
        name: .customLong("output"),
        help: ArgumentHelp("Output format: human or json.", valueName: "ofmt"))
    var output: String = "human"

    /// Whether JSON was asked for.
    /// - Throws: qemu-img's "--output must be used with human or json as argument." (exit 1).
    func isJSON() throws -> Bool { try Self.isJSON(output) }

    /// Whether `output` asks for JSON.
    /// - Throws: as ``isJSON()``.
    static func isJSON(_ output: String) throws -> Bool {
        switch output {
        case "json": return true
        case "human": return false
        default: throw CLIError("--output must be used with human or json as argument.")
        }
    }
}

/// `-o options` (repeatable, joined with commas) with `-o help`.
struct CreationOptionsFlag: ParsableArguments {
    @Option(
        name: .customShort("o"),
        help: ArgumentHelp("Format options key=value[,…] or 'help'.", valueName: "options"))
    var options: [String] = []

    var joined: String? { OptionString.accumulate(options) }
    var wantsHelp: Bool { joined.map(OptionString.wantsHelp) ?? false }
    var dictionary: [String: String] { joined.map(OptionString.dictionary) ?? [:] }
}

/// `-t cache` / `-T src_cache`: accepted for qemu-img compatibility; vmimg always uses its own I/O.
struct CacheFlags: ParsableArguments {
    @Option(
        name: .customShort("t"),
        help: ArgumentHelp("Cache mode (accepted, ignored).", valueName: "cache"))
    var cache: String?

    @Option(
        name: .customShort("T"),
        help: ArgumentHelp("Source cache mode (accepted, ignored).", valueName: "src_cache"))
    var sourceCache: String?
}

/// `-p`: progress.
struct ProgressFlag: ParsableArguments {
    @Flag(name: .customShort("p"), help: "Show progress.")
    var progress = false

    func printer(quiet: Bool, step: Double) -> ProgressPrinter {
        Self.printer(progress: progress, quiet: quiet, step: step)
    }

    /// The printer for `-p` = `progress`.
    static func printer(progress: Bool, quiet: Bool, step: Double) -> ProgressPrinter {
        let console = Console.current
        return ProgressPrinter(enabled: progress && !quiet, step: step, write: console.out)
    }
}

/// Runs `body` against the engine and turns its errors into ``CLIError``s with the right exit code.
func engine<T>(
    exitCodes: (ImageErrorKind) -> Int32 = ErrorMapping.defaultExitCode,
    _ body: (any ImageOperations) throws -> T
) throws -> T {
    do {
        return try body(ImageService.current)
    } catch let error as CLIError {
        throw error
    } catch {
        let (text, code) = ErrorMapping.report(error, exitCodes: exitCodes)
        throw ReportedError(stderr: text, exitCode: code)
    }
}

/// An error whose stderr text is already final.
struct ReportedError: Error {
    var stderr: String
    var exitCode: Int32
}
