import Catalog
import Foundation

extension InstanceManager {
    /// `snapshot create INSTANCE NAME [--dry-run]`: an internal qcow2 snapshot, through QMP when the
    /// instance runs (never by writing the locked file).
    ///
    /// Retention (R12, R20): with `maxSnapshots` already taken, the oldest unpinned snapshots are
    /// deleted to make room, and the result names them and the space freed. The budget (if set)
    /// refuses a snapshot that could push vmimg's files past it: in-use bytes plus the active-layer
    /// bytes the snapshot pins (all of which a guest may overwrite), minus what retention frees.
    /// The snapshot row, the pruning and the audit line commit in one transaction.
    /// - Throws: `allSnapshotsPinned`, `budgetExceeded`, `alreadyExists`, `invalidName`, engine/QMP errors.
    public func createSnapshot(instance: String, name: String, dryRun: Bool = false) throws
        -> SnapshotCreateResult
    {
        try Core.validateSnapshotName(name)
        return try core.locked {
            let (record, notices) = try core.reconcile(core.instance(named: instance))
            let rows = try core.store.read { try $0.snapshots(instanceID: record.id) }
            if rows.contains(where: { $0.name == name }) {
                throw InstancesError.alreadyExists(what: "snapshot", name: "\(instance)@\(name)")
            }
            let excess = rows.count + 1 - record.maxSnapshots
            let victims = Array(rows.filter { !$0.pinned }.prefix(max(0, excess)))
            if victims.count < excess {
                throw InstancesError.allSnapshotsPinned(
                    instance: instance, maxSnapshots: record.maxSnapshots)
            }
            let space = try core.space(record)
            let freed = victims.reduce(UInt64(0)) {
                $0 + ($1.qcowID.flatMap { space.snapshots[$0]?.unique } ?? 0)
            }
            if let budget = try core.budget() {
                let inUse = try core.bytesInUse()
                let needed = space.activeBytes > freed ? space.activeBytes - freed : 0
                if inUse + needed > budget {
                    throw InstancesError.budgetExceeded(
                        budget: Int64(budget), inUse: Int64(inUse), needed: Int64(needed))
                }
            }
            let live = core.isRunning(record)
            let mode = core.auditMode(record.audit)
            var result = SnapshotCreateResult(
                instance: instance, snapshot: name, dryRun: dryRun, deleted: victims.map(\.name),
                freedBytes: freed,
                live: live, audit: mode, notices: notices)
            if dryRun { return result }

            let refs = victims.map { JournalSnapshot(id: $0.qcowID ?? $0.name, name: $0.name) }
            let op = try core.store.write {
                try $0.journal(
                    .snapshotCreate, instanceID: record.id,
                    JournalPayload(snapshot: name, victims: refs, audit: record.audit))
            }
            // Make the new snapshot before pruning: a crash in between leaves one too many, which
            // recovery prunes, never one too few.
            try core.createDriveSnapshot(record, name: name)
            core.step("snapshot.made")
            for victim in refs { try core.deleteDriveSnapshot(record, id: victim.id, name: victim.name) }
            core.step("snapshot.pruned")
            guard let made = try core.driveSnapshots(record).last(where: { $0.name == name }) else {
                throw InstancesError.engine(
                    operation: "snapshot \(instance)", message: "snapshot '\(name)' not found after creation")
            }
            try core.store.write { s in
                for victim in victims { try s.deleteSnapshot(instanceID: record.id, name: victim.name) }
                let next = (try s.snapshots(instanceID: record.id).map(\.sequence).max() ?? 0) + 1
                try s.save(
                    SnapshotRecord(
                        instanceID: record.id, name: name, qcowID: made.id, createdAt: made.date,
                        audit: record.audit,
                        sequence: next))
                let pruned =
                    victims.isEmpty
                    ? "" : "; retention deleted " + victims.map(\.name).joined(separator: ", ")
                try core.audit(
                    s, mode: mode, .snapshot, instanceID: record.id, subject: instance,
                    detail: "snapshot '\(name)'\(live ? " (live, QMP)" : "")\(pruned)")
                try s.removeOperation(id: op)
            }
            result.notices = notices
            return result
        }
    }

    /// `snapshot list INSTANCE`: oldest first, with space figures (R17).
    public func listSnapshots(instance: String) throws -> [SnapshotDetails] {
        try core.reading { _ in
            let (record, _) = try core.reconcile(core.instance(named: instance))
            return try snapshotDetails(record, space: try? core.space(record))
        }
    }

    /// `snapshot delete INSTANCE NAME [--dry-run]`. Pinned snapshots are refused (like `zfs hold`).
    public func deleteSnapshot(instance: String, name: String, dryRun: Bool = false) throws
        -> SnapshotDeleteResult
    {
        try core.locked {
            let (record, _) = try core.reconcile(core.instance(named: instance))
            guard
                let row = try core.store.read({ try $0.snapshots(instanceID: record.id) }).first(where: {
                    $0.name == name
                })
            else { throw InstancesError.snapshotNotFound(instance: instance, snapshot: name) }
            if row.pinned {
                throw InstancesError.snapshotsPinned(
                    instance: instance, names: [name], operation: "delete a snapshot of")
            }
            let freed = try row.qcowID.flatMap { try core.space(record).snapshots[$0]?.unique } ?? 0
            let result = SnapshotDeleteResult(
                instance: instance, snapshot: name, dryRun: dryRun, freedBytes: freed)
            if dryRun { return result }
            let ref = JournalSnapshot(id: row.qcowID ?? name, name: name)
            let op = try core.store.write {
                try $0.journal(.snapshotDelete, instanceID: record.id, JournalPayload(victims: [ref]))
            }
            try core.deleteDriveSnapshot(record, id: ref.id, name: name)
            core.step("snapshot-delete.deleted")
            try core.store.write { s in
                try s.deleteSnapshot(instanceID: record.id, name: name)
                try core.audit(
                    s, mode: core.auditMode(record.audit), .snapshotDelete, instanceID: record.id,
                    subject: instance,
                    detail: "snapshot '\(name)' deleted")
                try s.removeOperation(id: op)
            }
            return result
        }
    }

    /// `snapshot pin INSTANCE NAME`: retention skips it and delete refuses it (R20).
    public func pinSnapshot(instance: String, name: String) throws {
        try setPinned(instance, name, true)
    }

    /// `snapshot unpin INSTANCE NAME`.
    public func unpinSnapshot(instance: String, name: String) throws {
        try setPinned(instance, name, false)
    }

    private func setPinned(_ instance: String, _ name: String, _ pinned: Bool) throws {
        try core.locked {
            let (record, _) = try core.reconcile(core.instance(named: instance))
            try core.store.write { s in
                guard var row = try s.snapshots(instanceID: record.id).first(where: { $0.name == name })
                else {
                    throw InstancesError.snapshotNotFound(instance: instance, snapshot: name)
                }
                row.pinned = pinned
                try s.save(row)
                try core.audit(
                    s, mode: core.auditMode(record.audit), pinned ? .pin : .unpin, instanceID: record.id,
                    subject: instance, detail: "snapshot '\(name)'")
            }
        }
    }
}
