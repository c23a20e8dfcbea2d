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
        name: String, drive: String, qmpSocket: String, pidFile: String, consoleLog: String, options: StartOptions
    ) -> [String] {
        var args = [
            "-name", "vmimg-\(name)", "-machine", options.machine, "-accel", options.accel, "-m", "\(options.memory)",
            "-display", "none", "-monitor", "none", "-serial", "file:\(consoleLog)",
            "-qmp", "unix:\(qmpSocket),server=on,wait=off",
            "-drive", "file=\(drive),if=virtio,format=qcow2,id=\(driveDevice),node-name=fmt0",
            "-daemonize", "-pidfile", pidFile,
        ]
        if let kernel = options.kernel {
            // A direct-kernel guest powers off or panics (panic=-1) to end; never reboot it.
            args += ["-kernel", kernel, "-no-reboot"]
            if let initrd = options.initrd { args += ["-initrd", initrd] }
            if let append = options.append { args += ["-append", append] }
        }
        return args + options.extraArguments
    }

    static func launch(_ arguments: [String], pidFile: String, instance: String, binary: String) throws -> Launch {
        let output = try ProcessRunner.run(binary, arguments)
        guard output.status == 0 else { throw InstancesError.qemu(instance: instance, message: output.message) }
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw InstancesError.qemu(instance: instance, message: "no pid file \(pidFile)")
        }
        return Launch(pid: pid, processStart: startTime(of: pid) ?? 0)
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
