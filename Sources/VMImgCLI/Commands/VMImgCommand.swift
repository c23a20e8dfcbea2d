import ArgumentParser

/// The `vmimg` root command: qemu-img 7.2's subcommands with its flag spellings.
public struct VMImgCommand: ParsableCommand {
    /// Command tree and help texts.
    public static let configuration = CommandConfiguration(
        commandName: "vmimg",
        abstract: "qcow2 VM image manager, compatible with qemu-img 7.2.",
        version: "vmimg 0.1 (qemu-img 7.2 compatible)",
        subcommands: [
            AmendCommand.self, BenchCommand.self, CheckCommand.self, CommitCommand.self,
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
    public static func run(_ arguments: [String]) -> Int32 {
        let console = Console.current
        do {
            var command = try VMImgCommand.parseAsRoot(ResizeCommand.protectSize(arguments))
            try command.run()
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
}
