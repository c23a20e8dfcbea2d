import ArgumentParser

/// `commit [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename`.
struct CommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit", abstract: "Write an overlay's changes into its backing image.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag
    @OptionGroup var progress: ProgressFlag

    @Option(
        name: .customShort("t"),
        help: ArgumentHelp("Cache mode (accepted, ignored).", valueName: "cache"))
    var cache: String?
    @Option(
        name: .customShort("b"),
        help: ArgumentHelp("Commit down to this backing image.", valueName: "base"))
    var base: String?
    @Option(
        name: .customShort("r"), help: ArgumentHelp("Rate limit, bytes/s.", valueName: "rate_limit"))
    var rateLimit: String?
    @Flag(name: .customShort("d"), help: "Keep the overlay's contents.") var keepOverlay = false

    @Argument(help: "Image file.") var filename: String

    func run() throws {
        var request = CommitRequest(image: try image.open(filename))
        request.base = base
        request.keepOverlay = keepOverlay
        request.rateLimit = try rateLimit.map { try SizeParser.cvtnum("rate limit", $0) }
        let printer = progress.printer(quiet: quiet.quiet, step: 1)
        printer.update(0)
        try engine { try $0.commit(request, progress: printer.update) }
        printer.update(100)
        printer.finish()
        if !quiet.quiet { Console.current.out("Image committed.\n") }
    }
}
