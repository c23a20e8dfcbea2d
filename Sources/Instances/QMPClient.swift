import BlockIO
import Foundation

/// A QMP connection (QEMU Machine Protocol: one JSON object per line over a Unix socket).
/// Connecting reads the greeting and negotiates with `qmp_capabilities`; events arriving
/// between commands are kept in ``events``.
final class QMPClient {
    let socketPath: String
    private let socket: UnixSocket
    private var buffer: [UInt8] = []
    private(set) var events: [String] = []

    /// Connects and leaves the greeting's capabilities negotiation done.
    init(socketPath: String, timeout: TimeInterval = 10) throws {
        self.socketPath = socketPath
        do {
            socket = try UnixSocket(path: socketPath)
        } catch {
            throw InstancesError.qmp(instance: socketPath, message: "cannot connect: \(error)")
        }
        let greeting = try readObject(timeout: timeout)
        guard greeting["QMP"] != nil else {
            throw InstancesError.qmp(instance: socketPath, message: "no QMP greeting")
        }
        _ = try execute("qmp_capabilities", timeout: timeout)
    }

    /// Sends a command and returns its `return` value.
    /// - Throws: ``InstancesError/qmp(instance:message:)`` with QEMU's `desc` on an error reply,
    ///   a timeout, or a closed connection.
    @discardableResult
    func execute(_ command: String, arguments: [String: Any]? = nil, timeout: TimeInterval = 30)
        throws -> Any
    {
        var message: [String: Any] = ["execute": command]
        if let arguments { message["arguments"] = arguments }
        let data = try JSONSerialization.data(withJSONObject: message)
        do {
            try socket.send(Array(data) + [0x0A])
        } catch {
            throw InstancesError.qmp(instance: socketPath, message: "\(command): \(error)")
        }
        while true {
            let reply = try readObject(timeout: timeout)
            if let event = reply["event"] as? String {
                events.append(event)
                continue
            }
            if let error = reply["error"] as? [String: Any] {
                let desc = error["desc"] as? String ?? "\(error)"
                throw InstancesError.qmp(instance: socketPath, message: "\(command): \(desc)")
            }
            if let value = reply["return"] { return value }
        }
    }

    /// Waits until an event named `name` arrives (or was already seen), up to `timeout`.
    func waitForEvent(_ name: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !events.contains(name) {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let object = try? readObject(timeout: left) else {
                return events.contains(name)
            }
            if let event = object["event"] as? String { events.append(event) }
        }
        return true
    }

    private func readObject(timeout: TimeInterval) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                guard !line.allSatisfy({ $0 == 0x0D || $0 == 0x20 }) else { continue }
                guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
                else {
                    throw InstancesError.qmp(instance: socketPath, message: "malformed reply")
                }
                return object
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw InstancesError.qmp(instance: socketPath, message: "timed out") }
            let chunk: [UInt8]
            do {
                chunk = try socket.receive(timeoutMilliseconds: Int32(min(left * 1000, 1_000_000)))
            } catch {
                throw InstancesError.qmp(instance: socketPath, message: "\(error)")
            }
            guard !chunk.isEmpty else {
                throw InstancesError.qmp(instance: socketPath, message: "connection closed")
            }
            buffer += chunk
        }
    }
}

extension QMPClient {
    /// `query-status`'s `status` (`running`, `paused`, `prelaunch`, `shutdown`…).
    func status() throws -> String {
        let value = try execute("query-status")
        return (value as? [String: Any])?["status"] as? String ?? "unknown"
    }

    /// The internal snapshots QEMU sees on `device` (`query-block` → `inserted.image.snapshots`).
    func snapshots(device: String) throws -> [DriveSnapshot] {
        guard let devices = try execute("query-block") as? [[String: Any]] else { return [] }
        guard let entry = devices.first(where: { $0["device"] as? String == device }),
            let inserted = entry["inserted"] as? [String: Any],
            let image = inserted["image"] as? [String: Any]
        else {
            throw InstancesError.qmp(instance: socketPath, message: "query-block: no device '\(device)'")
        }
        let list = image["snapshots"] as? [[String: Any]] ?? []
        return list.map { s in
            let seconds = (s["date-sec"] as? NSNumber)?.doubleValue ?? 0
            let nanos = (s["date-nsec"] as? NSNumber)?.doubleValue ?? 0
            return DriveSnapshot(
                id: s["id"] as? String ?? "", name: s["name"] as? String ?? "",
                date: Date(timeIntervalSince1970: seconds + nanos / 1e9))
        }
    }

    /// `blockdev-snapshot-internal-sync`: an internal snapshot taken by the QEMU that owns the drive.
    func createSnapshot(device: String, name: String) throws {
        try execute(
            "blockdev-snapshot-internal-sync", arguments: ["device": device, "name": name], timeout: 3600)
    }

    /// `blockdev-snapshot-delete-internal-sync` by ID and name.
    func deleteSnapshot(device: String, id: String, name: String) throws {
        try execute(
            "blockdev-snapshot-delete-internal-sync",
            arguments: ["device": device, "id": id, "name": name],
            timeout: 3600)
    }
}
