import ArgumentParser

/// `bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... [-b source_file
/// [-F source_fmt]] [-g granularity] [-f fmt] filename bitmap`: persistent dirty bitmaps, each
/// operation applied in command-line order. `--merge` is not supported yet.
struct BitmapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bitmap", abstract: "Add, remove, clear, enable or disable a persistent dirty bitmap.")

    /// The operations, in the order given (ArgumentParser keeps it for repeated flags).
    enum Operation: String, EnumerableFlag {
        case add, remove, clear, enable, disable
        static func name(for value: Self) -> NameSpecification { .customLong(value.rawValue) }
        static func help(for value: Self) -> ArgumentHelp? {
            switch value {
            case .add: "Create the bitmap (enabled, all bits clear)."
            case .remove: "Delete the bitmap."
            case .clear: "Clear every bit."
            case .enable: "Make the bitmap record writes."
            case .disable: "Stop the bitmap recording writes."
            }
        }
    }

    @OptionGroup var image: ImageFlags
    @Flag var operations: [Operation] = []
    @Option(name: .customLong("merge"), help: ArgumentHelp("Merge bits from this bitmap.", valueName: "source"))
    var merge: [String] = []
    @Option(name: .customShort("g"), help: ArgumentHelp("Granularity of a new bitmap.", valueName: "granularity"))
    var granularity: String?
    @Option(name: .customShort("b"), help: ArgumentHelp("Image holding the --merge source.", valueName: "source_file"))
    var sourceFile: String?
    @Option(name: .customShort("F"), help: ArgumentHelp("Format of -b.", valueName: "source_fmt"))
    var sourceFormat: String?

    @Argument(help: "Image file, then the bitmap's name.") var arguments: [String] = []

    func run() throws {
        // qemu-img's checks, in its order.
        guard !operations.isEmpty || !merge.isEmpty else {
            throw CLIError("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge")
        }
        if granularity != nil && !operations.contains(.add) {
            throw CLIError("granularity only supported with --add")
        }
        if sourceFormat != nil && sourceFile == nil { throw CLIError("-F only supported with -b") }
        if sourceFile != nil && merge.isEmpty {
            throw CLIError("Merge bitmap source file only supported with --merge")
        }
        guard arguments.count == 2 else { throw CLIError("Expecting filename and bitmap name") }
        if !merge.isEmpty { throw CLIError("bitmap: --merge is not supported by vmimg yet") }
        var request = BitmapRequest(image: try image.open(arguments[0]), name: arguments[1])
        request.granularity = try granularity.map { try SizeParser.cvtnum("granularity", $0) }
        request.operations = operations.map {
            switch $0 {
            case .add: .add
            case .remove: .remove
            case .clear: .clear
            case .enable: .enable
            case .disable: .disable
            }
        }
        try engine { try $0.bitmap(request) }
    }
}
