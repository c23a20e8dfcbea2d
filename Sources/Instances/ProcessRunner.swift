import Foundation

/// Runs a tool to completion and captures its output; stderr goes through a temp file so a
/// chatty tool cannot fill a pipe and deadlock.
struct ProcessRunner {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        /// stderr's last non-empty line, or stdout's, for one-line messages.
        var message: String {
            let lines = (stderr + "\n" + stdout).split(separator: "\n").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            return lines.first { !$0.isEmpty } ?? "exit status \(status)"
        }
    }

    /// Runs `executable` (looked up in PATH when not absolute) with `arguments`. Output goes to
    /// temp files, not pipes: a daemonizing child (QEMU `-daemonize`) keeps its descriptors open
    /// after its parent exits, and reading a pipe to its end would then never return.
    static func run(_ executable: String, _ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try resolve(executable))
        process.arguments = arguments
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vmimg-run-\(UUID().uuidString)"
        ).path
        let outPath = base + ".out"
        let errPath = base + ".err"
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        for path in [outPath, errPath] {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let outHandle = FileHandle(forWritingAtPath: outPath),
            let errHandle = FileHandle(forWritingAtPath: errPath)
        else {
            throw InstancesError.io(path: base, message: "cannot create output files")
        }
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw InstancesError.engine(operation: executable, message: "cannot run: \(error)")
        }
        process.waitUntilExit()
        try? outHandle.close()
        try? errHandle.close()
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Output(status: process.terminationStatus, stdout: out, stderr: err)
    }

    /// Runs and throws ``InstancesError/engine(operation:message:)`` on a non-zero exit.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String], operation: String) throws -> Output {
        let output = try run(executable, arguments)
        guard output.status == 0 else {
            throw InstancesError.engine(operation: operation, message: output.message)
        }
        return output
    }

    static func resolve(_ executable: String) throws -> String {
        if executable.hasPrefix("/") { return executable }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw InstancesError.engine(
            operation: executable, message: "not found in PATH (install qemu-utils / qemu-system-x86)")
    }
}
