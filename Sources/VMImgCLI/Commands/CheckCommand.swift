import ArgumentParser
import ImageKit

/// `check [-q] [-f fmt] [--output=ofmt] [-r leaks|all] [-T src_cache] [-U] filename`.
///
/// Follows qemu-img's `img_check`: a repairing pass that fixed anything prints the "repaired"
/// block and is followed by a plain re-check whose report (with the fixed counts copied in)
/// decides the output and exit status: 0 clean, 1 not completed, 2 corruptions, 3 leaks only,
/// 63 no check for this format.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Check an image for consistency, optionally repairing it.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var output: OutputFlag
    @OptionGroup var quiet: QuietFlag

    @Option(
        name: .customShort("r"), help: ArgumentHelp("Repair: leaks or all.", valueName: "leaks|all"))
    var repair: String?

    @Option(
        name: .customShort("T"),
        help: ArgumentHelp("Source cache mode (accepted, ignored).", valueName: "src_cache"))
    var sourceCache: String?

    @Argument(help: "Image file.") var filename: String

    /// The parsed values.
    var values: CheckArguments {
        CheckArguments(
            image: image.values, output: output.output, quiet: quiet.quiet, repair: repair,
            sourceCache: sourceCache, filename: filename)
    }

    func run() throws { try values.run() }
}

/// `check`'s arguments as plain data (filled by ArgumentParser through ``CheckCommand`` or by
/// ``FastParser``) and the command itself.
struct CheckArguments: Equatable {
    var image = ImageArguments()
    var output = "human"
    var quiet = false
    var repair: String?
    var sourceCache: String?
    var filename: String

    func repairMode() throws -> RepairMode {
        switch repair {
        case nil: return []
        case "leaks": return .leaks
        case "all": return .all
        case let other?:
            throw CLIError.usage("Unknown option value for -r (expecting 'leaks' or 'all'): \(other)")
        }
    }

    func run() throws {
        let json = try OutputFlag.isJSON(output)
        let mode = try repairMode()
        let console = Console.current
        let open = try image.open(filename)
        var report = try pass(open, mode, console)
        if report.corruptionsFixed != 0 || report.leaksFixed != 0 {
            if !json && !quiet {
                console.out(
                    CheckRenderer.repaired(
                        leaksFixed: report.leaksFixed, corruptionsFixed: report.corruptionsFixed))
            }
            let fixed = report
            report = try pass(open, [], console)
            report.leaksFixed = fixed.leaksFixed
            report.corruptionsFixed = fixed.corruptionsFixed
        }
        if !quiet {
            console.out(json ? try CheckRenderer.json(report) : CheckRenderer.human(report))
        }
        if report.checkErrors != 0 { throw CLIError("Check failed") }
        let code = CheckRenderer.exitCode(report)
        if code != 0 { throw ExitCode(code) }
    }

    /// One engine pass; failures other than open errors read "Check failed: …" as in qemu-img.
    private func pass(_ open: ImageOpenOptions, _ mode: RepairMode, _ console: Console) throws
        -> CheckReport
    {
        do {
            return try ImageService.current.check(open, repair: mode) { console.err($0 + "\n") }
        } catch let error as any ClassifiedImageError
            where ![.open, .usage, .checkNotSupported].contains(error.kind)
        {
            throw CLIError("Check failed: \(error.message)")
        } catch let error as CLIError {
            throw error
        } catch let error as any ClassifiedImageError {
            let (text, code) = ErrorMapping.report(error)
            throw ReportedError(stderr: text, exitCode: code)
        } catch {
            throw CLIError("Check failed: \(error)")
        }
    }
}
