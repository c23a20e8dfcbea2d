import ArgumentParser

/// `create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]`.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a new image.")

    @OptionGroup var quiet: QuietFlag
    @OptionGroup var creation: CreationOptionsFlag

    @Option(
        name: .customShort("f"), help: ArgumentHelp("Image format (default raw).", valueName: "fmt"))
    var format = "raw"
    @Option(name: .customShort("b"), help: ArgumentHelp("Backing file.", valueName: "backing_file"))
    var backingFile: String?
    @Option(
        name: .customShort("F"), help: ArgumentHelp("Backing file format.", valueName: "backing_fmt"))
    var backingFormat: String?
    @Flag(name: .customShort("u"), help: "Don't open the backing file.") var unsafe = false

    @Argument(help: "Image file.") var filename: String?
    @Argument(help: "Virtual size, with optional k, M, G, T, P, E suffix.") var size: String?

    func run() throws {
        if creation.wantsHelp {
            Console.current.out(try CreationOptionHelp.text(format: format))
            return
        }
        guard let filename else { throw CLIError.usage("Expecting image file name") }
        var request = CreateRequest(filename: filename)
        request.format = format
        request.size = try size.map { try SizeParser.cvtnum("image size", $0) }
        request.backingFile = backingFile
        request.backingFormat = backingFormat
        request.unsafe = unsafe
        request.options = creation.dictionary
        let console = Console.current
        let quiet = quiet.quiet
        try engine {
            try $0.create(request) { options in
                if !quiet {
                    console.out(
                        CreateRenderer.formatting(filename: filename, format: format, options: options) + "\n")
                }
            }
        }
    }
}
