import BlockIO
import Foundation

/// Runs the real QEMU tools, the oracle vmimg is checked against.
///
/// Every call finds its program with ``Tool/require(_:)``: a missing QEMU fails the test with an
/// install hint, or cancels it under `VMIMG_ALLOW_SKIP=1`. Raw runners return the ``ToolResult``
/// whatever the exit status; the conveniences throw ``ToolError`` unless qemu succeeded.
public enum Qemu {
    /// Runs `qemu-img ARGS`.
    /// - Parameters:
    ///   - args: the arguments after `qemu-img`.
    ///   - cwd: the working directory (backing-file names are relative to the image, not to it).
    ///   - timeout: the time limit.
    /// - Returns: the result.
    /// - Throws: ``ToolError/missing(program:hint:)`` or a launch error.
    public static func img(_ args: [String], cwd: String? = nil, timeout: Duration = .seconds(120)) throws
        -> ToolResult
    {
        try Tool.run("qemu-img", args, cwd: cwd, timeout: timeout)
    }

    /// Runs `qemu-io ARGS`, e.g. `["-f", "qcow2", "-c", "write -P 0xab 0 64k", path]`.
    /// - Parameters:
    ///   - args: the arguments after `qemu-io`.
    ///   - cwd: the working directory.
    ///   - timeout: the time limit.
    /// - Returns: the result. qemu-io exits 0 even when a command fails; check stdout too.
    /// - Throws: ``ToolError/missing(program:hint:)`` or a launch error.
    public static func io(_ args: [String], cwd: String? = nil, timeout: Duration = .seconds(120)) throws
        -> ToolResult
    {
        try Tool.run("qemu-io", args, cwd: cwd, timeout: timeout)
    }

    /// Runs `qemu-io -f FORMAT -c CMD… PATH` and fails unless every command succeeded.
    /// - Parameters:
    ///   - path: the image.
    ///   - format: its format (default `qcow2`).
    ///   - commands: qemu-io commands such as `write -P 0xab 0 64k`, `discard 0 64k`, `read -P 0 0 4k`.
    /// - Returns: the result.
    /// - Throws: ``ToolError/failed(_:)`` on a nonzero exit or when qemu-io printed a failure
    ///   (`failed:`, `Pattern verification failed`).
    @discardableResult
    public static func io(_ path: String, format: String = "qcow2", commands: [String]) throws -> ToolResult {
        var args = ["-f", format]
        for command in commands { args += ["-c", command] }
        let result = try io(args + [path]).checked()
        let out = result.stdoutText + result.stderrText
        if out.contains("failed") || out.contains("Pattern verification") { throw ToolError.failed(result) }
        return result
    }

    /// Runs `qemu-system-x86_64 ARGS`.
    /// - Parameters:
    ///   - args: the arguments.
    ///   - timeout: the time limit; the guest is killed when it expires.
    /// - Returns: the result; the serial console is stdout with `-nographic`.
    /// - Throws: ``ToolError/missing(program:hint:)`` or a launch error.
    public static func system(_ args: [String], timeout: Duration = .seconds(120)) throws -> ToolResult {
        try Tool.run("qemu-system-x86_64", args, timeout: timeout)
    }

    /// Starts a paused `qemu-system-x86_64` (no machine, no guest) with `drive` attached, and
    /// returns once it holds QEMU's write lock on the file: a foreign QEMU "using" the image.
    ///
    /// Readiness is seen by probing the lock bytes without taking any: a `qemu-img info` here
    /// would itself lock the image and could make QEMU fail to start.
    /// - Parameters:
    ///   - drive: the image.
    ///   - format: its format.
    ///   - timeout: how long to wait for the lock.
    /// - Returns: the running QEMU; ``BackgroundProcess/stop()`` (or dropping it) kills it.
    /// - Throws: ``ToolError/unexpectedOutput(program:reason:)`` when QEMU exits or never locks.
    public static func holdOpen(_ drive: String, format: String = "qcow2", timeout: Double = 30) throws
        -> BackgroundProcess
    {
        let qemu = try BackgroundProcess(
            "qemu-system-x86_64",
            [
                "-machine", "none", "-S", "-display", "none", "-monitor", "none", "-serial", "none", "-nodefaults",
                "-drive", "file=\(drive),if=none,format=\(format)",
            ])
        let locked = try eventually(seconds: timeout) { try !qemu.isRunning || LockProbe(path: drive).hasWriter }
        guard locked, qemu.isRunning else {
            qemu.stop()
            throw ToolError.unexpectedOutput(program: "qemu-system-x86_64", reason: "never locked \(drive)")
        }
        return qemu
    }

    /// `qemu-img create -f FORMAT [-o OPT,…] [-b BACKING -F BACKINGFORMAT] PATH SIZE`.
    /// - Parameters:
    ///   - path: the new image.
    ///   - format: the format (default `qcow2`).
    ///   - size: a qemu-img size such as `64M`; nil to take the backing file's.
    ///   - options: `-o` options such as `cluster_size=4096`, `refcount_bits=1`, `compat=0.10`.
    ///   - backing: a backing file, as written into the header.
    ///   - backingFormat: the backing file's format (default `qcow2` when `backing` is set).
    /// - Throws: ``ToolError`` unless qemu-img exits 0.
    public static func create(
        _ path: String, format: String = "qcow2", size: String?, options: [String] = [], backing: String? = nil,
        backingFormat: String? = nil
    ) throws {
        var args = ["create", "-q", "-f", format]
        if !options.isEmpty { args += ["-o", options.joined(separator: ",")] }
        if let backing { args += ["-b", backing, "-F", backingFormat ?? "qcow2"] }
        args.append(path)
        if let size { args.append(size) }
        try img(args).checked()
    }

    /// `qemu-img convert -O FORMAT [-o OPT,…] [-c] SRC DST`.
    /// - Parameters:
    ///   - source: the input image (format probed unless `sourceFormat` is set).
    ///   - destination: the output path.
    ///   - format: the output format.
    ///   - sourceFormat: `-f` for the input; probing a raw file is refused by qemu for writes, so set it.
    ///   - options: `-o` options for the output.
    ///   - compress: whether to pass `-c`.
    /// - Throws: ``ToolError`` unless qemu-img exits 0.
    public static func convert(
        _ source: String, to destination: String, format: String, sourceFormat: String? = nil,
        options: [String] = [], compress: Bool = false
    ) throws {
        var args = ["convert", "-q"]
        if let sourceFormat { args += ["-f", sourceFormat] }
        args += ["-O", format]
        if !options.isEmpty { args += ["-o", options.joined(separator: ",")] }
        if compress { args.append("-c") }
        try img(args + [source, destination], timeout: .seconds(600)).checked()
    }

    /// `qemu-img convert -O raw SRC DST`: the guest-visible bytes of any image, for byte comparison.
    /// - Parameters:
    ///   - source: the input image.
    ///   - destination: the raw output.
    /// - Throws: ``ToolError`` unless qemu-img exits 0.
    public static func convertToRaw(_ source: String, _ destination: String) throws {
        try convert(source, to: destination, format: "raw")
    }

    /// `qemu-img check --output=json [-r MODE] PATH`, parsed.
    ///
    /// qemu-img check exits 0 clean, 1 not completed, 2 corrupt, 3 leaks only; all of them print JSON
    /// (except some status-1 cases), so the status is returned beside it.
    /// - Parameters:
    ///   - path: the image.
    ///   - format: its format.
    ///   - repair: `leaks` or `all` to pass `-r`.
    /// - Returns: the exit status and the parsed report.
    /// - Throws: ``ToolError/unexpectedOutput(program:reason:)`` when stdout is not JSON.
    public static func checkJSON(_ path: String, format: String = "qcow2", repair: String? = nil) throws
        -> (status: Int32, report: JSON)
    {
        var args = ["check", "--output=json", "-f", format]
        if let repair { args += ["-r", repair] }
        let result = try img(args + [path])
        if result.timedOut { throw ToolError.timedOut(result) }
        do {
            return (result.status, try JSON(parsing: result.stdoutText))
        } catch {
            throw ToolError.unexpectedOutput(program: "qemu-img check", reason: "\(error); \(result)")
        }
    }

    /// `qemu-img info --output=json [--backing-chain] PATH`, parsed.
    /// - Parameters:
    ///   - path: the image.
    ///   - format: `-f`, or nil to probe.
    ///   - backingChain: whether to pass `--backing-chain` (the JSON is then an array).
    /// - Returns: the parsed output.
    /// - Throws: ``ToolError`` unless qemu-img exits 0 with JSON.
    public static func infoJSON(_ path: String, format: String? = nil, backingChain: Bool = false) throws -> JSON {
        var args = ["info", "--output=json"]
        if let format { args += ["-f", format] }
        if backingChain { args.append("--backing-chain") }
        let result = try img(args + [path]).checked()
        do {
            return try JSON(parsing: result.stdoutText)
        } catch {
            throw ToolError.unexpectedOutput(program: "qemu-img info", reason: "\(error); \(result)")
        }
    }

    /// `qemu-img compare [-s] A B`: 0 identical, 1 different, 2+ error.
    /// - Parameters:
    ///   - a: the first image (format probed).
    ///   - b: the second image.
    ///   - strict: `-s`, which also fails on allocation differences.
    /// - Returns: qemu-img's exit status (0 or 1).
    /// - Throws: ``ToolError/failed(_:)`` for statuses above 1.
    public static func compare(_ a: String, _ b: String, strict: Bool = false) throws -> Int32 {
        let result = try img(["compare"] + (strict ? ["-s"] : []) + [a, b])
        if result.timedOut { throw ToolError.timedOut(result) }
        guard result.status <= 1 else { throw ToolError.failed(result) }
        return result.status
    }

    /// `qemu-img snapshot -l` names, in table order (parsed from the human table).
    /// - Parameter path: the image.
    /// - Returns: the snapshot tags.
    /// - Throws: ``ToolError`` unless qemu-img exits 0.
    public static func snapshotNames(_ path: String) throws -> [String] {
        let text = try img(["snapshot", "-l", path]).checked().stdoutText
        // Table rows start with the numeric ID; the tag is the second column.
        return text.split(separator: "\n").compactMap { line in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            guard columns.count >= 2, let first = columns.first, Int(first) != nil else { return nil }
            return String(columns[1])
        }
    }

    /// `qemu-img snapshot -c|-a|-d TAG PATH`.
    /// - Parameters:
    ///   - path: the image.
    ///   - operation: `-c` create, `-a` apply (revert), `-d` delete.
    ///   - tag: the snapshot tag.
    /// - Throws: ``ToolError`` unless qemu-img exits 0.
    public static func snapshot(_ path: String, _ operation: SnapshotOperation, tag: String) throws {
        try img(["snapshot", operation.rawValue, tag, path]).checked()
    }

    /// The `qemu-img snapshot` operations.
    public enum SnapshotOperation: String, Sendable {
        /// `-c`: create.
        case create = "-c"
        /// `-a`: apply (revert the active state to the snapshot).
        case apply = "-a"
        /// `-d`: delete.
        case delete = "-d"
    }
}
