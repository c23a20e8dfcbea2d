import ArgumentParser

/// `rebase [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt]
/// filename`.
struct RebaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebase", abstract: "Change an image's backing file.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag
    @OptionGroup var progress: ProgressFlag
    @OptionGroup var cache: CacheFlags

    @Option(
        name: .customShort("b"),
        help: ArgumentHelp("New backing file ('' for none).", valueName: "backing_file"))
    var backingFile: String?
    @Option(name: .customShort("F"), help: ArgumentHelp("Its format.", valueName: "backing_fmt"))
    var backingFormat: String?
    @Flag(name: .customShort("u"), help: "Unsafe: only rewrite the header.") var unsafe = false

    @Argument(help: "Image file.") var filename: String

    func run() throws {
        guard unsafe || backingFile != nil else {
            throw CLIError.usage("Must specify backing file (-b) or use unsafe mode (-u)")
        }
        var request = RebaseRequest(image: try image.open(filename), backingFile: backingFile ?? "")
        request.backingFormat = backingFormat
        request.unsafe = unsafe
        let printer = progress.printer(quiet: quiet.quiet, step: 2)
        printer.update(0)
        try engine { try $0.rebase(request, progress: printer.update) }
        printer.update(100)
        printer.finish()
    }
}
