import ArgumentParser

/// `compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2`.
///
/// Exit status: 0 identical, 1 different, 2 open error, 3 allocation-status error, 4 read error.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Check whether two images have the same contents.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag
    @OptionGroup var progress: ProgressFlag

    @Option(
        name: .customShort("F"), help: ArgumentHelp("Format of the second image.", valueName: "fmt"))
    var secondFormat: String?

    @Option(
        name: .customShort("T"),
        help: ArgumentHelp("Source cache mode (accepted, ignored).", valueName: "src_cache"))
    var sourceCache: String?

    @Flag(name: .customShort("s"), help: "Strict: sizes and allocation must match too.")
    var strict = false

    @Argument(help: "First image.") var filename1: String
    @Argument(help: "Second image.") var filename2: String

    /// The parsed values.
    var values: CompareArguments {
        CompareArguments(
            image: image.values, quiet: quiet.quiet, progress: progress.progress,
            secondFormat: secondFormat, sourceCache: sourceCache, strict: strict, filename1: filename1,
            filename2: filename2)
    }

    func run() throws { try values.run() }
}

/// `compare`'s arguments as plain data (see ``CheckArguments``) and the command itself.
struct CompareArguments: Equatable {
    var image = ImageArguments()
    var quiet = false
    var progress = false
    var secondFormat: String?
    var sourceCache: String?
    var strict = false
    var filename1: String
    var filename2: String

    func run() throws {
        let printer = ProgressFlag.printer(progress: progress, quiet: quiet, step: 2)
        var second = try image.open(filename2)
        second.format = secondFormat
        printer.update(0)
        // qemu-img prints the size warning between the progress of the common part and the tail's.
        var warned = false
        let result = try engine(exitCodes: ErrorMapping.compareExitCode) {
            try $0.compare(
                try image.open(filename1), second, strict: strict, progress: printer.update,
                sizeMismatch: {
                    guard !quiet else { return }
                    Console.current.out("Warning: Image size mismatch!\n")
                    warned = true
                })
        }
        if !quiet { Console.current.out(CompareRenderer.human(result, warned: warned)) }
        printer.finish()
        let code = CompareRenderer.exitCode(result)
        if code != 0 { throw ExitCode(code) }
    }
}
