import CBlockIO

/// A long operation stopped because the process was asked to stop (SIGINT or SIGTERM).
public struct OperationCancelled: Error, Equatable, Sendable, CustomStringConvertible {
    /// The signal that asked (2 for SIGINT, 15 for SIGTERM).
    public var signal: Int32

    public init(signal: Int32) { self.signal = signal }

    public var description: String { "interrupted" }
}

/// Process-wide, cooperative cancellation of long operations (issue 6: "long scans honour
/// cancellation").
///
/// The CLI calls ``installSignalHandlers()`` for its long commands; SIGINT/SIGTERM then only set a
/// flag, and the scan loops (check, convert, compare, map, measure, commit, rebase, snapshot
/// planning, compaction, bench) call ``check()`` at points where stopping leaves every image
/// consistent. ``check()`` is one load of a `sig_atomic_t` behind a C call: loops over single
/// table entries call it every few thousand entries (``CancellationPoll``), loops over chunks every time.
public enum Cancellation {
    /// Routes SIGINT and SIGTERM to the flag (a second signal ends the process at once).
    /// Without this call (library use, tests) ``check()`` never throws.
    public static func installSignalHandlers() {
        _ = cblockio_cancel_install()
    }

    /// The signal that requested cancellation, if one did.
    public static var requestedSignal: Int32? {
        let sig = cblockio_cancel_signal()
        return sig == 0 ? nil : sig
    }

    /// Whether a signal asked the process to stop.
    @inline(__always) public static var isRequested: Bool { cblockio_cancel_signal() != 0 }

    /// Throws ``OperationCancelled`` once a signal asked the process to stop.
    @inline(__always) public static func check() throws(OperationCancelled) {
        let sig = cblockio_cancel_signal()
        if sig != 0 { throw OperationCancelled(signal: sig) }
    }

    /// Ends the process through `signal` with its default action, so the parent sees "killed by
    /// SIGINT" (a shell reports 130, 143 for SIGTERM, and stops a running script); stdio is flushed first.
    public static func exit(signal: Int32) -> Never {
        cblockio_cancel_exit(signal)
    }
}

/// A countdown for hot loops: `try poll.check()` tests the flag once every `interval` calls.
public struct CancellationPoll: Sendable {
    private var remaining: Int
    private let interval: Int

    public init(every interval: Int = 4096) {
        self.interval = max(1, interval)
        remaining = self.interval
    }

    @inline(__always) public mutating func check() throws(OperationCancelled) {
        remaining -= 1
        if remaining <= 0 {
            remaining = interval
            try Cancellation.check()
        }
    }
}
