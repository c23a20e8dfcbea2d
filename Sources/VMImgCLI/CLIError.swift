import ImageKit

/// An error the CLI reports itself: one `vmimg: …` line on stderr and an exit code.
public struct CLIError: Error, Equatable, CustomStringConvertible {
    /// Text after `vmimg: `.
    public var message: String
    /// Exit status.
    public var exitCode: Int32
    /// Whether to add "Try 'vmimg --help' for more information" (usage errors).
    public var showsHelpHint: Bool

    /// A failure with exit code 1 (qemu-img's default).
    public init(_ message: String, exitCode: Int32 = 1, showsHelpHint: Bool = false) {
        self.message = message
        self.exitCode = exitCode
        self.showsHelpHint = showsHelpHint
    }

    /// A usage error: exit 1 and the "Try" line, like qemu-img's `error_exit`.
    public static func usage(_ message: String) -> CLIError {
        CLIError(message, exitCode: 1, showsHelpHint: true)
    }

    /// A command whose engine isn't connected yet.
    public static func notImplemented(_ command: String) -> CLIError {
        CLIError("\(command): not implemented yet")
    }

    /// The message text.
    public var description: String { message }
}

/// Maps any error a command throws to stderr text and an exit code.
enum ErrorMapping {
    static let helpHint = "Try 'vmimg --help' for more information"

    /// - Parameter exitCodes: exit status per kind; `compare` uses 2/3/4, others 1 (63 for
    ///   ``ImageErrorKind/checkNotSupported``).
    static func report(
        _ error: any Error, exitCodes: (ImageErrorKind) -> Int32 = defaultExitCode
    ) -> (stderr: String, code: Int32) {
        switch error {
        case let error as CLIError:
            let hint = error.showsHelpHint ? helpHint + "\n" : ""
            return ("vmimg: \(error.message)\n" + hint, error.exitCode)
        case let error as any ClassifiedImageError:
            let prefix = error.path.map { "vmimg: \($0): " } ?? "vmimg: "
            let hint = error.kind == .usage ? helpHint + "\n" : ""
            return (prefix + error.message + "\n" + hint, exitCodes(error.kind))
        default:
            return ("vmimg: \(error)\n", exitCodes(.other))
        }
    }

    static func defaultExitCode(_ kind: ImageErrorKind) -> Int32 {
        kind == .checkNotSupported ? 63 : 1
    }

    /// `compare`: 2 open error, 3 allocation-status error, 4 read error (else 2, as qemu-img
    /// fails with 2 before comparing).
    static func compareExitCode(_ kind: ImageErrorKind) -> Int32 {
        switch kind {
        case .usage: return 1
        case .blockStatus: return 3
        case .io: return 4
        default: return 2
        }
    }
}
