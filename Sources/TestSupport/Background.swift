import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A long-running program a test needs beside it (qemu-io waiting for commands, a paused QEMU
/// holding an image), killed when the value goes away or on ``stop()``.
///
/// Its stdin stays open (qemu-io quits at end of input) and its output is discarded. Like
/// ``Tool/run(_:_:cwd:environment:stdin:timeout:)`` it starts with no signals blocked.
public final class BackgroundProcess: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let lock = NSLock()

    /// Starts `program` with `arguments`.
    /// - Throws: ``ToolError/missing(program:hint:)`` (or cancellation), or a launch error.
    public init(_ program: String, _ arguments: [String]) throws {
        let executable = try Tool.require(program)
        if FileManager.default.isExecutableFile(atPath: Tool.perl) {
            process.executableURL = URL(fileURLWithPath: Tool.perl)
            process.arguments = ["-MPOSIX", "-e", Tool.unblockAndExec, executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit { stop() }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Whether it has not exited yet.
    public var isRunning: Bool { process.isRunning }

    /// Closes its stdin and kills it: QEMU may ignore SIGTERM while starting up, so SIGKILL is
    /// the only reliable stop. Idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        try? input.fileHandleForWriting.close()
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Polls `condition` every 20 ms for up to `seconds`; returns its last answer.
public func eventually(seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return try condition()
}

/// `count` deterministic pseudo-random bytes for `seed` (a 64-bit LCG's top byte): the same
/// bytes in every run and every test that asks for the same seed.
public func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}
