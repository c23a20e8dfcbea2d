import ArgumentParser

/// `amend [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename`.
struct AmendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amend", abstract: "Change options of an existing image.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag
    @OptionGroup var progress: ProgressFlag
    @OptionGroup var creation: CreationOptionsFlag

    @Option(
        name: .customShort("t"),
        help: ArgumentHelp("Cache mode (accepted, ignored).", valueName: "cache"))
    var cache: String?
    @Flag(name: .customLong("force"), help: "Allow unsafe changes.") var force = false

    @Argument(help: "Image file.") var filename: String?

    func run() throws {
        if creation.wantsHelp {
            Console.current.out(try CreationOptionHelp.amendText(format: image.format ?? "qcow2"))
            return
        }
        guard creation.joined != nil else { throw CLIError.usage("Must specify options (-o)") }
        guard let filename else { throw CLIError.usage("Expecting one image file name") }
        let printer = progress.printer(quiet: quiet.quiet, step: 1)
        printer.update(0)
        try engine {
            try $0.amend(
                try image.open(filename), options: creation.dictionary, force: force, progress: printer.update)
        }
        printer.update(100)
        printer.finish()
    }
}
