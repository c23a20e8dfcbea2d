import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Errors from running external programs.
public enum ToolError: Error, CustomStringConvertible, Sendable {
    /// The program is not installed (not on `PATH`); `hint` says how to install it.
    case missing(program: String, hint: String)
    /// The program ran and exited with a status other than the expected one.
    case failed(ToolResult)
    /// The program was killed after its time limit.
    case timedOut(ToolResult)
    /// Output was not what the caller could parse.
    case unexpectedOutput(program: String, reason: String)

    /// One or a few lines with the command line, status and stderr.
    public var description: String {
        switch self {
        case .missing(let program, let hint): "\(program) not found on PATH; install it: \(hint)"
        case .failed(let result): "command failed: \(result)"
        case .timedOut(let result): "command timed out: \(result)"
        case .unexpectedOutput(let program, let reason): "\(program): unexpected output: \(reason)"
        }
    }
}

/// What a finished (or killed) program left behind.
public struct ToolResult: Sendable, CustomStringConvertible {
    /// The executable's path as run.
    public let executable: String
    /// The arguments, without the executable.
    public let arguments: [String]
    /// The exit status, or 128 + signal number when killed by a signal (as a shell reports it).
    public let status: Int32
    /// Everything written to standard output.
    public let stdout: Data
    /// Everything written to standard error.
    public let stderr: Data
    /// Whether the time limit expired and the program was killed.
    public let timedOut: Bool
    /// How long it ran.
    public let duration: Duration
    /// With `interrupt:`, how long the program took to end after the signal; nil when it ended
    /// before the signal was sent.
    public var exitAfterSignal: Duration? = nil

    /// Standard output decoded as UTF-8 (invalid bytes replaced).
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error decoded as UTF-8 (invalid bytes replaced).
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    /// The command line, shell-quoted where needed, for messages and reruns.
    public var commandLine: String { ([executable] + arguments).map(shellQuoted).joined(separator: " ") }

    /// Returns `self` if the program exited with `status`, else throws.
    /// - Parameter status: the expected exit status (default 0).
    /// - Returns: `self`, for chaining.
    /// - Throws: ``ToolError/timedOut(_:)`` or ``ToolError/failed(_:)``.
    @discardableResult
    public func checked(status expected: Int32 = 0) throws -> ToolResult {
        if timedOut { throw ToolError.timedOut(self) }
        guard status == expected else { throw ToolError.failed(self) }
        return self
    }

    /// The command line, status, and the first lines of stderr.
    public var description: String {
        let err = stderrText.split(separator: "\n", omittingEmptySubsequences: false).prefix(20)
            .joined(separator: "\n")
        return "\(commandLine) -> status \(status)\(timedOut ? " (timed out)" : "")"
            + (err.isEmpty ? "" : "\nstderr:\n\(err)")
    }
}

/// Runs external programs with captured output and a time limit.
public enum Tool {
    /// Install hints for programs tests depend on, shown when one is missing.
    public static let installHints: [String: String] = [
        "qemu-img": "apt-get install -y qemu-utils",
        "qemu-io": "apt-get install -y qemu-utils",
        "qemu-nbd": "apt-get install -y qemu-utils",
        "qemu-system-x86_64": "apt-get install -y qemu-system-x86",
        "mke2fs": "apt-get install -y e2fsprogs",
        "vmimg": "swift build --product vmimg, or set VMIMG_BIN",
    ]

    static let perl = "/usr/bin/perl"
    static let unblockAndExec =
        #"sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!\n"; "#
        + #"exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n""#

    /// Whether `VMIMG_ALLOW_SKIP=1` is set: missing programs cancel tests instead of failing them.
    public static var allowSkip: Bool { ProcessInfo.processInfo.environment["VMIMG_ALLOW_SKIP"] == "1" }

    /// Finds `program` on `PATH` (or checks it if it contains a slash).
    /// - Parameter program: a name like `qemu-img` or a path.
    /// - Returns: the executable's path, or nil.
    public static func which(_ program: String) -> String? {
        let fm = FileManager.default
        if program.contains("/") { return fm.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(program)"
            if fm.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Finds `program` or stops the test: under `VMIMG_ALLOW_SKIP=1` the current test is cancelled
    /// (`Test.cancel`), otherwise ``ToolError/missing(program:hint:)`` is thrown with an install hint.
    /// - Parameter program: a name like `qemu-img` or a path.
    /// - Returns: the executable's path.
    /// - Throws: ``ToolError/missing(program:hint:)`` or the cancellation.
    public static func require(_ program: String) throws -> String {
        if let found = which(program) { return found }
        let hint = installHints[program] ?? "install \(program)"
        if allowSkip {
            try Test.cancel("\(program) missing (VMIMG_ALLOW_SKIP=1); install it: \(hint)")
        }
        throw ToolError.missing(program: program, hint: hint)
    }

    /// Runs `program` with `arguments` and waits for it, capturing stdout and stderr.
    ///
    /// Output goes to temporary files rather than pipes, so a chatty program cannot block on a full
    /// pipe. On timeout the program gets SIGTERM, then SIGKILL two seconds later. The program starts
    /// with no signals blocked, as from a shell (through `perl -MPOSIX`, which clears the mask and execs).
    /// - Parameters:
    ///   - program: a name looked up on `PATH`, or a path (see ``require(_:)``).
    ///   - arguments: the arguments.
    ///   - cwd: the working directory; the current one when nil.
    ///   - environment: extra environment variables, added to this process's.
    ///   - stdin: bytes for standard input; `/dev/null` when nil.
    ///   - timeout: the time limit (default 60 s).
    ///   - interrupt: sends `signal` after `after` if the program still runs (Ctrl-C tests);
    ///     ``ToolResult/exitAfterSignal`` then tells how long it took to end.
    /// - Returns: the result, whatever the exit status; use ``ToolResult/checked(status:)``.
    /// - Throws: ``ToolError/missing(program:hint:)`` (or cancellation), or a launch error.
    public static func run(
        _ program: String, _ arguments: [String], cwd: String? = nil, environment: [String: String] = [:],
        stdin: Data? = nil, timeout: Duration = .seconds(60), interrupt: (signal: Int32, after: Duration)? = nil
    ) throws -> ToolResult {
        let executable = try require(program)
        let io = try Scratch(label: "io", removeAlways: true)
        let outPath = io.path("stdout")
        let errPath = io.path("stderr")
        let inPath = io.path("stdin")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        _ = FileManager.default.createFile(atPath: inPath, contents: stdin ?? Data())
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath),
            let input = FileHandle(forReadingAtPath: inPath)
        else { throw BytesError.cannotOpen(path: io.directory) }
        defer {
            try? out.close()
            try? err.close()
            try? input.close()
        }

        let process = Process()
        // Swift Testing runs tests on threads that block most signals, and a spawned child inherits
        // that mask: it would ignore SIGTERM (and QEMU would run with SIGINT, SIGALRM… blocked).
        // Clearing it needs pointers (unsafe here), so Debian's always-installed perl does it and execs.
        if FileManager.default.isExecutableFile(atPath: Tool.perl) {
            process.executableURL = URL(fileURLWithPath: Tool.perl)
            process.arguments = ["-MPOSIX", "-e", Tool.unblockAndExec, executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }

        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        var timedOut = false
        var signalledAt: ContinuousClock.Instant?
        if let interrupt, done.wait(timeout: .now() + interrupt.after.timeInterval) == .timedOut {
            // A loaded machine can take longer than `after` to start a big debug binary: wait (up
            // to 10 s) until it catches the signal, or the test would only see the default action.
            let pid = process.processIdentifier
            let deadline = clock.now + .seconds(10)
            var ended = false
            while clock.now < deadline && !catches(pid: pid, signal: interrupt.signal) {
                if done.wait(timeout: .now() + 0.02) == .success {
                    done.signal()
                    ended = true
                    break
                }
            }
            if !ended {
                signalledAt = clock.now
                #if canImport(Glibc)
                    kill(pid, interrupt.signal)
                #endif
            }
        }
        if done.wait(timeout: .now() + timeout.timeInterval) == .timedOut {
            timedOut = true
            process.terminate()
            if done.wait(timeout: .now() + 2) == .timedOut {
                #if canImport(Glibc)
                    kill(process.processIdentifier, SIGKILL)
                #endif
                done.wait()
            }
        }
        let end = clock.now
        let duration = end - start
        let status =
            process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
        return ToolResult(
            executable: executable, arguments: arguments, status: status,
            stdout: (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data(),
            stderr: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data(),
            timedOut: timedOut, duration: duration, exitAfterSignal: signalledAt.map { end - $0 })
    }
}

/// Whether process `pid` has a handler for `signal` (the SigCgt mask in /proc/PID/status; false
/// when unreadable).
func catches(pid: Int32, signal: Int32) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
        let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return false }
    return mask & (UInt64(1) << UInt64(signal - 1)) != 0
}

extension Duration {
    /// Seconds as a `TimeInterval`, for Dispatch.
    fileprivate var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

/// Quotes `word` for a POSIX shell when it contains anything but safe characters.
/// - Parameter word: one argument.
/// - Returns: the word, or the word in single quotes.
public func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
