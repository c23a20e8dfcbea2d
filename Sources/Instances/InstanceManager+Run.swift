import Catalog
import Foundation

extension InstanceManager {
    /// `start NAME [--kernel F --initrd F --append S] [--memory M] [-- extra qemu args]`: runs
    /// qemu-system-x86_64 (TCG unless `accel` says otherwise) daemonized, with a QMP socket, and
    /// records pid and socket so later vmimg processes find it.
    /// - Throws: `instanceRunning`, `driveLocked`, `quotaExceeded` (active layer over quota), `qemu`.
    public func start(_ name: String, options: StartOptions = StartOptions()) throws -> StartResult {
        try core.locked {
            var (record, _) = try core.reconcile(core.instance(named: name))
            if core.isRunning(record) {
                throw InstancesError.instanceRunning(instance: name, operation: "start")
            }
            let drive = try core.drivePath(record)
            try core.refuseIfLocked(record, path: drive)
            try checkQuota(name: name, quota: record.quota.map { UInt64($0) }, drive: record.drivePath)
            let run = core.home.runDirectory
            var socket = "\(run)/\(record.id).qmp"
            if socket.utf8.count > 100 {
                // sun_path holds 108 bytes; a deep home falls back to the temp directory.
                socket =
                    FileManager.default.temporaryDirectory.appendingPathComponent("vmimg-\(record.id).qmp")
                    .path
            }
            let pidFile = "\(run)/\(record.id).pid"
            let console = "\(run)/\(record.id).console.log"
            for path in [socket, pidFile] { try? FileManager.default.removeItem(atPath: path) }
            let args = QemuProcess.arguments(
                name: name, drive: drive, qmpSocket: socket, pidFile: pidFile, consoleLog: console,
                options: options)
            let launch = try QemuProcess.launch(
                args, qmpSocket: socket, pidFile: pidFile, logFile: "\(run)/\(record.id).qemu.log",
                instance: name, binary: core.qemuSystem)
            record.runState = RunState.running.rawValue
            record.pid = launch.pid
            record.processStart = launch.processStart
            record.qmpSocket = socket
            // The socket file appears at bind(), a moment before listen(): retry refusals briefly.
            var status = ""
            var attempts = 0
            while status.isEmpty {
                do {
                    status = try core.qmp(record).status()
                } catch {
                    attempts += 1
                    guard attempts < 200, QemuProcess.isAlive(pid: launch.pid, processStart: nil) else {
                        QemuProcess.kill(pid: launch.pid)
                        throw error
                    }
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
            let updated = record
            try core.store.write { s in
                try s.save(updated)
                try core.audit(
                    s, mode: core.auditMode(updated.audit), .start, instanceID: updated.id, subject: name,
                    detail: "pid \(launch.pid), accel \(options.accel)")
            }
            return StartResult(
                instance: name, pid: launch.pid, qmpSocket: socket, consoleLog: console, status: status)
        }
    }

    /// `stop NAME`: ACPI `system_powerdown`, then `quit` after `timeout`, then SIGKILL.
    public func stop(_ name: String, timeout: TimeInterval = 30) throws -> StopResult {
        try core.locked {
            var (record, _) = try core.reconcile(core.instance(named: name))
            guard core.isRunning(record), let pid = record.pid else {
                throw InstancesError.instanceNotRunning(name)
            }
            var graceful = false
            if let client = try? core.qmp(record) {
                _ = try? client.execute("system_powerdown")
                graceful = QemuProcess.waitForExit(
                    pid: pid, processStart: record.processStart, timeout: timeout)
                if !graceful { _ = try? client.execute("quit", timeout: 5) }
            }
            if !QemuProcess.waitForExit(pid: pid, processStart: record.processStart, timeout: 10) {
                QemuProcess.kill(pid: pid)
                _ = QemuProcess.waitForExit(pid: pid, processStart: record.processStart, timeout: 10)
            }
            if let socket = record.qmpSocket { try? FileManager.default.removeItem(atPath: socket) }
            record.runState = RunState.stopped.rawValue
            record.pid = nil
            record.qmpSocket = nil
            record.processStart = nil
            let updated = record
            try core.store.write { s in
                try s.save(updated)
                try core.audit(
                    s, mode: core.auditMode(updated.audit), .stop, instanceID: updated.id, subject: name,
                    detail: graceful ? "powered off" : "forced (quit)")
            }
            return StopResult(instance: name, graceful: graceful)
        }
    }
}
