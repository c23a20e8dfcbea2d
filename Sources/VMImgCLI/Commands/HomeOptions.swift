import ArgumentParser
import Foundation
import Instances

#if canImport(Glibc)
    import Glibc
#endif

/// `--home DIR`: the vmimg home of every `instance`, `images` and `config` command.
struct HomeOptions: ParsableArguments {
    @Option(
        name: .customLong("home"),
        help: ArgumentHelp(
            "vmimg home: catalog, images and drives (default $VMIMG_HOME, else ~/.local/share/vmimg).",
            valueName: "DIR"))
    var home: String?

    /// The resolved home (`--home`, else `VMIMG_HOME`, else the default).
    var resolved: VMImgHome { VMImgHome.resolve(explicit: home) }

    /// Opens the home (recovering interrupted operations, reported on stderr) and runs `body`,
    /// turning the service's errors into one `vmimg: …` line and exit status 1.
    /// `reportRecovery: false` keeps stderr quiet for polling (`start --wait`).
    func run<T>(
        engine: EngineAdapter = EngineAdapter(), reportRecovery: Bool = true, _ body: (InstanceManager) throws -> T
    ) throws -> T {
        do {
            let manager = try InstanceManager(home: resolved, engine: engine)
            let console = Console.current
            if reportRecovery {
                for line in manager.recoveryReport.recovered { console.err("vmimg: recovered: \(line)\n") }
                for line in manager.recoveryReport.notices { console.err("vmimg: notice: \(line)\n") }
            }
            return try body(manager)
        } catch let error as CLIError {
            throw error
        } catch let error as ExitCode {
            throw error
        } catch let error as InstancesError {
            throw CLIError(error.description)
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// Prints to stdout.
func say(_ text: String) {
    Console.current.out(text.hasSuffix("\n") ? text : text + "\n")
}

/// Prints `value` as pretty JSON on stdout, keys sorted so the output is stable. (qemu-img's own
/// objects keep QEMU's hash order through ``JSONWriter``; these objects are vmimg's.)
func sayJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    Console.current.out(String(decoding: try encoder.encode(value), as: UTF8.self) + "\n")
}

/// Whether standard input is a terminal a question can be asked on.
enum Terminal {
    static var isInteractive: Bool { isatty(STDIN_FILENO) != 0 }

    /// Asks `question` on stderr and reads a line from stdin: true for `y` or `yes`.
    static func confirm(_ question: String) -> Bool {
        Console.current.err(question + " [y/N] ")
        guard let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
        return answer == "y" || answer == "yes"
    }
}

/// Size options of the manager commands (`--size`, `--quota`, `config set budget`): qemu-img's
/// suffixes (`64M`, `1.5G`), more than zero.
func parseSize(_ text: String, _ what: String) throws -> UInt64 {
    do {
        let value = try SizeParser.parse(text)
        guard value > 0 else { throw CLIError.usage("\(what) must be more than 0") }
        return value
    } catch let error as CLIError {
        throw error
    } catch {
        throw CLIError.usage("invalid \(what) '\(text)': use a number with an optional k, M, G, T suffix")
    }
}

/// Human byte counts as the service prints them ("1.5 MiB").
func bytes(_ value: UInt64) -> String { formatBytes(Int64(clamping: value)) }

/// Dates in human tables: local time to the second.
func humanDate(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
}

/// Dates in JSON: ISO 8601 in UTC.
func jsonDate(_ date: Date) -> String {
    ISO8601DateFormatter().string(from: date)
}
