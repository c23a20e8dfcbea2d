import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Launching and finding instance QEMUs. QEMU daemonizes itself (`-daemonize -pidfile`), so it
/// outlives the vmimg process that started it; vmimg finds it again from the pid and QMP socket
/// it recorded, checking the pid's start time so a reused pid is never taken for it.
enum QemuProcess {
    /// The QMP device name of every instance drive.
    static let driveDevice = "disk0"

    struct Launch {
        var pid: Int64
        var processStart: Int64
    }

    static func arguments(
        name: String, drive: String, qmpSocket: String, pidFile: String, consoleLog: String,
        options: StartOptions
    ) -> [String] {
        var args = [
            "-name", "vmimg-\(name)", "-machine", options.machine, "-accel", options.accel, "-m",
            "\(options.memory)",
            "-display", "none", "-monitor", "none", "-serial", "file:\(consoleLog)",
            "-qmp", "unix:\(qmpSocket),server=on,wait=off",
            "-drive", "file=\(drive),if=virtio,format=qcow2,id=\(driveDevice),node-name=fmt0",
            "-pidfile", pidFile,
        ]
        if let kernel = options.kernel {
            // A direct-kernel guest powers off or panics (panic=-1) to end; never reboot it.
            args += ["-kernel", kernel, "-no-reboot"]
            if let initrd = options.initrd { args += ["-initrd", initrd] }
            if let append = options.append { args += ["-append", append] }
        }
        return args + options.extraArguments
    }

    /// Starts QEMU as a child that outlives this vmimg process and waits for its QMP socket. Not `-daemonize`: the daemon would inherit Foundation's
    /// child-watch descriptor and `waitUntilExit` on its parent would never return.
    static func launch(
        _ arguments: [String], qmpSocket: String, pidFile: String, logFile: String, instance: String,
        binary: String
    ) throws -> Launch {
        let process = Process()
        let qemu = try ProcessRunner.resolve(binary)
        // Foundation starts the child in a process group of its own, so a terminal's ^C does not
        // reach it and it outlives this process.
        process.executableURL = URL(fileURLWithPath: qemu)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logFile) else {
            throw InstancesError.io(path: logFile, message: "cannot create")
        }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw InstancesError.qemu(instance: instance, message: "cannot run \(qemu): \(error)")
        }
        try? log.close()
        let pid = Int64(process.processIdentifier)
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: qmpSocket) {
            guard process.isRunning, Date() < deadline else {
                if process.isRunning { kill(pid: pid) }
                let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
                let line =
                    text.split(separator: "\n").last.map(String.init)
                    ?? "exited before its QMP socket appeared"
                throw InstancesError.qemu(instance: instance, message: line)
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let written = (try? String(contentsOfFile: pidFile, encoding: .utf8))
            .flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let qemuPid = written ?? pid
        return Launch(pid: qemuPid, processStart: startTime(of: qemuPid) ?? 0)
    }

    /// Field 22 of /proc/PID/stat (start time in clock ticks), nil when there is no such process.
    static func startTime(of pid: Int64) -> Int64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return Int64(fields[19])
    }

    /// Whether `pid` is the QEMU recorded (alive, not a zombie, same start time).
    static func isAlive(pid: Int64, processStart: Int64?) -> Bool {
        guard let start = startTime(of: pid) else { return false }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"),
            stat[stat.index(after: close)...].split(separator: " ").first == "Z"
        {
            return false
        }
        return processStart == nil || processStart == 0 || processStart == start
    }

    /// Waits up to `timeout` for the process to go away.
    static func waitForExit(pid: Int64, processStart: Int64?, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isAlive(pid: pid, processStart: processStart) {
            if Date() > deadline { return false }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return true
    }

    static func kill(pid: Int64) {
        _ = Glibc.kill(pid_t(pid), SIGKILL)
    }
}
