import ArgumentParser
import BlockIO
import QCow2

/// The `vmimg` root command: qemu-img 7.2's subcommands with its flag spellings.
public struct VMImgCommand: ParsableCommand {
    /// Command tree and help texts.
    public static let configuration = CommandConfiguration(
        commandName: "vmimg",
        abstract: "qcow2 VM image manager, compatible with qemu-img 7.2.",
        version: "vmimg 0.1 (qemu-img 7.2 compatible)",
        subcommands: [
            AmendCommand.self, BenchCommand.self, BitmapCommand.self, CheckCommand.self, CommitCommand.self,
            CompactCommand.self, CompareCommand.self,
            ConvertCommand.self, CreateCommand.self, InfoCommand.self, MapCommand.self,
            MeasureCommand.self,
            SnapshotCommand.self, RebaseCommand.self, ResizeCommand.self, ServeCommand.self, ConsoleCommand.self,
            InstanceCommand.self, ImagesCommand.self, ConfigCommand.self, TickCommand.self,
        ])

    /// Required by `ParsableCommand`.
    public init() {}
}

/// The CLI entry point `main.swift` calls.
public enum VMImgMain {
    /// Parses `arguments` (without the program name), runs the command and returns the exit status.
    ///
    /// Usage errors print `vmimg: <message>` and "Try 'vmimg --help' for more information" and
    /// return 1 (qemu-img's status, not ArgumentParser's 64); `--help` and `--version` print to
    /// stdout and return 0.
    ///
    /// `VMIMG_ARGUMENT_PARSER=1` in the environment sends every command line through
    /// ArgumentParser, skipping ``FastParser`` (tests compare the two paths this way).
    public static func run(_ arguments: [String]) -> Int32 {
        run(arguments, fastPath: fastPathAllowed)
    }

    /// ``run(_:)`` as the whole process (`main.swift`): a command that is over in one step also
    /// turns off the images' cache-clean timer (`QCow2Image.periodicCacheCleaning`), a process-wide
    /// setting that tests running commands in-process must not inherit.
    public static func main(_ arguments: [String]) -> Int32 {
        run(arguments, fastPath: fastPathAllowed, ownsProcess: true)
    }

    /// False when `VMIMG_ARGUMENT_PARSER=1` asks for ArgumentParser on every command line.
    static var fastPathAllowed: Bool { ProcessEnvironment.value("VMIMG_ARGUMENT_PARSER") != "1" }

    /// ``run(_:)``; `fastPath: false` always parses with ArgumentParser (tests compare the two).
    static func run(_ arguments: [String], fastPath: Bool, ownsProcess: Bool = false) -> Int32 {
        let console = Console.current
        do {
            if fastPath, let command = FastParser.parse(arguments) {
                if command.isCancellable { Cancellation.installSignalHandlers() }
                if ownsProcess { QCow2Image.periodicCacheCleaning.withLock { $0 = false } }
                try runStoppingOnSignal { try command.run() }
            } else {
                var command = try VMImgCommand.parseAsRoot(ResizeCommand.protectSize(arguments))
                if command is any CancellableCommand { Cancellation.installSignalHandlers() }
                if ownsProcess && !(command is any LongRunningCommand) {
                    QCow2Image.periodicCacheCleaning.withLock { $0 = false }
                }
                try runStoppingOnSignal { try command.run() }
            }
            return 0
        } catch let error as ReportedError {
            console.err(error.stderr)
            return error.exitCode
        } catch let error as CLIError {
            let (text, code) = ErrorMapping.report(error)
            console.err(text)
            return code
        } catch let error as ExitCode {
            return error.rawValue
        } catch {
            if VMImgCommand.exitCode(for: error) == .success {
                console.out(VMImgCommand.fullMessage(for: error) + "\n")
                return 0
            }
            let message = VMImgCommand.message(for: error)
            console.err("vmimg: \(message)\n\(ErrorMapping.helpHint)\n")
            return 1
        }
    }

    /// Runs a parsed command; after a SIGINT/SIGTERM, exits through ``interrupted()``.
    private static func runStoppingOnSignal(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            // Whatever the command threw on its way out (often wrapped), the signal is the story.
            if Cancellation.isRequested { interrupted() }
            throw error
        }
        // A signal that came after the last check: the work is done, but the caller asked us
        // to stop, and a script running us must see it.
        if Cancellation.isRequested { interrupted() }
    }

    /// After SIGINT/SIGTERM stopped a command: one line, then exit through the same signal (a
    /// shell sees 130 or 143 and stops a script), as qemu-img, which has no handler, would.
    static func interrupted() -> Never {
        Console.current.err("vmimg: interrupted\n")
        Cancellation.exit(signal: Cancellation.requestedSignal ?? 2)
    }
}

/// Commands that keep images open for as long as they run (exports, the console, the scheduler):
/// their images run QEMU's cache-clean timer; every other command is over in one step and skips it.
protocol LongRunningCommand {}

extension ServeCommand: LongRunningCommand {}
extension InstanceServeCommand: LongRunningCommand {}
extension ConsoleCommand: LongRunningCommand {}

/// Commands with long scans that stop at a safe point on SIGINT/SIGTERM (issue 6; Formats/cli.md
/// "Interrupting a command"). Other commands keep the default action: the signal ends them at once.
protocol CancellableCommand {}

extension AmendCommand: CancellableCommand {}
extension BenchCommand: CancellableCommand {}
extension CheckCommand: CancellableCommand {}
extension CommitCommand: CancellableCommand {}
extension CompactCommand: CancellableCommand {}
extension CompareCommand: CancellableCommand {}
extension ConvertCommand: CancellableCommand {}
extension MapCommand: CancellableCommand {}
extension MeasureCommand: CancellableCommand {}
extension RebaseCommand: CancellableCommand {}
extension SnapshotCommand: CancellableCommand {}
