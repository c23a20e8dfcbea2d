import Catalog
import Foundation

extension Core {
    /// Finishes or undoes every journal row (the caller holds the home lock).
    func recover() throws -> RecoveryReport {
        var report = RecoveryReport()
        for operation in try store.read({ try $0.operations() }) {
            guard let id = operation.id else { continue }
            let payload = JournalPayload.decode(operation.payload)
            switch JournalKind(rawValue: operation.kind) {
            case .rollback:
                rollBack(operation: id, payload)
                report.recovered.append(
                    "rolled back an unfinished operation (removed \(payload.created.joined(separator: ", ")))"
                )
            case .cleanup:
                collectGarbage(operation: id, payload.garbage)
                report.recovered.append("removed \(payload.garbage.joined(separator: ", "))")
            case .snapshotCreate, .snapshotDelete, .revert:
                report.recovered.append(try recoverSnapshotStep(id: id, operation, payload))
            case nil:
                _ = try store.write { try $0.removeOperation(id: id) }
                report.recovered.append("dropped unknown journal entry '\(operation.kind)'")
            }
        }
        return report
    }

    private func recoverSnapshotStep(
        id: Int64, _ operation: OperationRecord, _ payload: JournalPayload
    ) throws
        -> String
    {
        guard let instanceID = operation.instanceID,
            let record = try store.read({ try $0.instance(id: instanceID) })
        else {
            _ = try store.write { try $0.removeOperation(id: id) }
            return "dropped a journal entry of a deleted instance"
        }
        let inDrive = try driveSnapshots(record)
        let kind = JournalKind(rawValue: operation.kind)
        if kind == .snapshotCreate, let name = payload.snapshot,
            !inDrive.contains(where: { $0.name == name })
        {
            _ = try store.write { try $0.removeOperation(id: id) }
            return "snapshot '\(name)' of '\(record.name)' was never made; nothing to undo"
        }
        if kind == .revert, let target = payload.target {
            guard inDrive.contains(where: { $0.id == target.id && $0.name == target.name }) else {
                _ = try store.write { try $0.removeOperation(id: id) }
                return "revert of '\(record.name)' abandoned: snapshot '\(target.name)' is gone"
            }
            try engine.applySnapshot(drive: drivePath(record), snapshotID: target.id)
        }
        for victim in payload.victims
        where inDrive.contains(where: { $0.id == victim.id && $0.name == victim.name }) {
            try deleteDriveSnapshot(record, id: victim.id, name: victim.name)
        }
        let after = try driveSnapshots(record)
        try store.write { session in
            for victim in payload.victims {
                try session.deleteSnapshot(instanceID: instanceID, name: victim.name)
            }
            if kind == .snapshotCreate, let name = payload.snapshot,
                let made = after.first(where: { $0.name == name }),
                try !session.snapshots(instanceID: instanceID).contains(where: { $0.name == name })
            {
                let next = (try session.snapshots(instanceID: instanceID).map(\.sequence).max() ?? 0) + 1
                try session.save(
                    SnapshotRecord(
                        instanceID: instanceID, name: name, qcowID: made.id, createdAt: made.date,
                        audit: payload.audit ?? record.audit, sequence: next))
            }
            try session.removeOperation(id: id)
        }
        return "finished \(operation.kind) of '\(record.name)' after an interruption"
    }

    /// Brings the catalog in line with reality for one instance: a vanished QEMU is marked
    /// stopped; snapshots deleted outside vmimg lose their rows, ones added outside are adopted.
    /// A stopped drive whose stamp and rows are as the last reconciliation left them is not read
    /// again (``reconciledBefore(_:stamp:)``). Returns what it noticed.
    func reconcile(_ initial: InstanceRecord) throws -> (InstanceRecord, [String]) {
        var record = initial
        var notices: [String] = []
        if record.runState == RunState.running.rawValue, !isRunning(record) {
            notices.append("QEMU of '\(record.name)' (pid \(record.pid ?? 0)) is gone; marked stopped")
            if let socket = record.qmpSocket { try? FileManager.default.removeItem(atPath: socket) }
            record.runState = RunState.stopped.rawValue
            record.pid = nil
            record.qmpSocket = nil
            record.processStart = nil
            let updated = record
            try store.write { try $0.save(updated) }
        }
        guard FileManager.default.fileExists(atPath: absolute(record.drivePath)) else {
            return (
                record, notices + ["drive of '\(record.name)' is missing: \(absolute(record.drivePath))"]
            )
        }
        let stamp = driveStamp(record)
        if let stamp, try reconciledBefore(record, stamp: stamp) { return (record, notices) }
        let inDrive: [DriveSnapshot]
        do {
            inDrive = try driveSnapshots(record)
        } catch {
            return (record, notices + ["snapshots of '\(record.name)' unreadable: \(error)"])
        }
        let current = record
        let more = try store.write { session -> [String] in
            var found: [String] = []
            var rows = try session.snapshots(instanceID: current.id)
            for row in rows where !inDrive.contains(where: { Self.matches(row, $0) }) {
                try session.deleteSnapshot(instanceID: current.id, name: row.name)
                found.append(
                    "snapshot '\(row.name)' of '\(current.name)' was deleted outside vmimg; forgotten")
            }
            rows = try session.snapshots(instanceID: current.id)
            var next = (rows.map(\.sequence).max() ?? 0) + 1
            for snap in inDrive.sorted(by: { $0.date < $1.date })
            where !rows.contains(where: { Self.matches($0, snap) }) {
                let taken = try session.snapshots(instanceID: current.id).contains { $0.name == snap.name }
                let name = taken ? "\(snap.name)~\(snap.id)" : snap.name
                try session.save(
                    SnapshotRecord(
                        instanceID: current.id, name: name, qcowID: snap.id, createdAt: snap.date,
                        audit: current.audit, sequence: next))
                next += 1
                found.append("snapshot '\(name)' of '\(current.name)' was made outside vmimg; adopted")
            }
            if let stamp { try markReconciled(session, instanceID: current.id, stamp: stamp) }
            return found
        }
        return (record, notices + more)
    }

    /// A row names a drive snapshot when the qcow2 ID (if recorded) and the name (or the
    /// `name~id` given to an adopted duplicate) agree.
    static func matches(_ row: SnapshotRecord, _ snap: DriveSnapshot) -> Bool {
        (row.qcowID == nil || row.qcowID == snap.id)
            && (row.name == snap.name || row.name == "\(snap.name)~\(snap.id)")
    }
}
