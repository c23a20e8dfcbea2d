import Catalog
import Foundation

extension InstanceManager {
    /// `rebuild INSTANCE (--snapshot NAME | --image IMAGE [--full]) [--yes] [--dry-run]`.
    ///
    /// From its own snapshot (R7, R13): reverts the drive, then deletes every newer snapshot. From
    /// another image (R18): replaces the drive with an overlay on the image (or a full copy); the
    /// old drive's snapshots go with it. Without `confirm` nothing changes and the plan comes back
    /// (R14): the CLI prints it and asks, or needs `--yes` without a terminal. Pinned snapshots are
    /// never destroyed: the rebuild is refused until they are unpinned.
    /// - Throws: `instanceRunning` (R15), `driveLocked`, `snapshotNotFound`, `imageNotFound`,
    ///   `snapshotsPinned`, `quotaExceeded`, engine errors.
    public func rebuild(_ instance: String, from source: RebuildSource, confirm: Bool) throws
        -> RebuildOutcome
    {
        try core.locked {
            var (record, _) = try core.reconcile(core.instance(named: instance))
            try core.requireStopped(record, operation: "rebuild")
            var source = source
            if case .image(let reference, _) = source, reference.hasPrefix(record.name + "@") {
                source = .snapshot(String(reference.dropFirst(record.name.count + 1)))
            }
            let rows = try core.store.read { try $0.snapshots(instanceID: record.id) }
            let space = try core.space(record)
            let destroyed: [SnapshotRecord]
            var target: SnapshotRecord?
            switch source {
            case .snapshot(let name):
                guard let row = rows.first(where: { $0.name == name }), row.qcowID != nil else {
                    throw InstancesError.snapshotNotFound(instance: instance, snapshot: name)
                }
                target = row
                destroyed = rows.filter { $0.sequence > row.sequence }
            case .image:
                destroyed = rows
            }
            let plan = RebuildPlan(
                instance: instance, source: source, snapshotsDestroyed: destroyed.map(\.name),
                freedBytes: destroyed.reduce(0) {
                    $0 + ($1.qcowID.flatMap { space.snapshots[$0]?.unique } ?? 0)
                },
                discardedActiveBytes: space.activeBytes)
            let pinned = destroyed.filter(\.pinned).map(\.name)
            guard pinned.isEmpty else {
                throw InstancesError.snapshotsPinned(
                    instance: instance, names: pinned, operation: "rebuild")
            }
            guard confirm else { return .planned(plan) }
            let mode = core.auditMode(record.audit)
            if let target, let targetID = target.qcowID {
                let victims = destroyed.map { JournalSnapshot(id: $0.qcowID ?? $0.name, name: $0.name) }
                let op = try core.store.write {
                    try $0.journal(
                        .revert, instanceID: record.id,
                        JournalPayload(
                            target: JournalSnapshot(id: targetID, name: target.name), victims: victims))
                }
                let drive = try core.drivePath(record)
                try core.engine.applySnapshot(drive: drive, snapshotID: targetID)
                core.step("revert.applied")
                // R13: only after a successful revert are the newer snapshots deleted.
                for victim in victims {
                    try core.engine.deleteSnapshot(drive: drive, id: victim.id, name: victim.name)
                }
                try core.store.write { s in
                    for victim in victims { try s.deleteSnapshot(instanceID: record.id, name: victim.name) }
                    try core.audit(
                        s, mode: mode, .rebuild, instanceID: record.id, subject: instance, detail: plan.summary)
                    try s.removeOperation(id: op)
                }
                return .rebuilt(plan)
            }
            guard case .image(let reference, let fullCopy) = source else { return .planned(plan) }
            let plannedSource = try resolveSource(.image(reference))
            let drive = Core.newDrivePath(instanceID: record.id)
            let export =
                plannedSource.needsExport(fullCopy: fullCopy) ? "images/\(Core.newID()).qcow2" : nil
            let oldDrive = record.drivePath
            try core.withRollback(instanceID: record.id, created: [drive] + (export.map { [$0] } ?? [])) {
                op in
                let made = try makeDrive(drive, from: plannedSource, fullCopy: fullCopy, export: export)
                core.step("rebuild.drive-made")
                try checkQuota(name: instance, quota: record.quota.map { UInt64($0) }, drive: drive)
                record.drivePath = drive
                record.baseImageID = made.base?.id
                record.virtualSize = Int64(made.virtualSize)
                let updated = record
                let cleanup = try core.store.write { s in
                    if let image = made.exported { try s.save(image) }
                    try s.save(updated)
                    for row in rows { try s.deleteSnapshot(instanceID: updated.id, name: row.name) }
                    try core.audit(
                        s, mode: mode, .rebuild, instanceID: updated.id, subject: instance, detail: plan.summary
                    )
                    try s.removeOperation(id: op)
                    return try s.journal(
                        .cleanup, instanceID: updated.id, JournalPayload(garbage: [oldDrive]))
                }
                core.step("rebuild.committed")
                core.collectGarbage(operation: cleanup, [oldDrive])
            }
            return .rebuilt(plan)
        }
    }

    /// `duplicate INSTANCE NEW --snapshot NAME [--full]` (R9): a new instance starting equal to the
    /// snapshot. Thin: the snapshot is exported as a read-only base image in "my images" and the
    /// new drive is an overlay on it, so retention may later delete the snapshot (R19). Full: a
    /// standalone copy. The new instance inherits the source's quota, snapshot limit and audit
    /// mode; the exported image inherits the snapshot's audit mode (R5).
    public func duplicate(
        _ instance: String, as newName: String, snapshot: String, full: Bool = false
    ) throws
        -> DuplicateResult
    {
        let source = try core.instance(named: instance)
        let summary = try create(
            CreateInstanceRequest(
                name: newName, source: .image("\(instance)@\(snapshot)"), fullCopy: full,
                quota: source.quota.map { UInt64($0) }, maxSnapshots: source.maxSnapshots,
                audit: core.auditMode(source.audit)))
        return DuplicateResult(
            source: instance, snapshot: snapshot, newInstance: summary, exportedImage: summary.baseImage)
    }
}
