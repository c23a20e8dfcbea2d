import BlockIO

/// Where commands write: stdout for results, stderr for errors and per-cluster findings.
///
/// Bound per task so tests can capture output in-process (`Console.$current.withValue(…)`).
public struct Console: Sendable {
    /// Writes to stdout.
    public var out: @Sendable (String) -> Void
    /// Writes to stderr.
    public var err: @Sendable (String) -> Void

    /// Creates a console from two sinks.
    public init(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void) {
        self.out = out
        self.err = err
    }

    /// The process's stdout and stderr, unbuffered (progress lines must show at once).
    public static let standard = Console(
        out: TextOutput.standardOutput, err: TextOutput.standardError)

    /// The console commands use.
    @TaskLocal public static var current: Console = .standard
}
