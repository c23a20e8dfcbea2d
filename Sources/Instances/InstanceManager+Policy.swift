import Catalog
import Foundation

/// What `tick` did to one instance.
public struct TickResult: Sendable, Equatable {
    public var instance: String
    public var created: String?
    public var expired: [String] = []
    public var skipped: String?
    /// Errors met (the tick goes on with the other instances).
    public var errors: [String] = []
}

extension InstanceManager {
    /// `instance policy set INSTANCE --every … --keep-…`: replaces the drive's policy (audited).
    public func setPolicy(instance: String, _ policy: SnapshotPolicy, now: Date = Date()) throws {
        try core.locked {
            let record = try core.instance(named: instance)
            try core.store.write { s in
                try Self.policies(s).save(
                    SnapshotPolicyRecord(
                        instanceID: record.id, everySeconds: policy.every, keepHourly: policy.keepHourly,
                        keepDaily: policy.keepDaily, keepWeekly: policy.keepWeekly, createdAt: now))
                try core.audit(
                    s, mode: core.auditMode(record.audit), .policy, instanceID: record.id, subject: instance,
                    detail: "policy set: every \(policy.every)s, keep hourly \(policy.keepHourly), daily "
                        + "\(policy.keepDaily), weekly \(policy.keepWeekly)")
            }
        }
    }

    /// `instance policy show INSTANCE`: nil when the drive has none.
    public func policy(instance: String) throws -> SnapshotPolicy? {
        let record = try core.instance(named: instance)
        guard let row = try core.store.read({ try Self.policies($0).policy(instanceID: record.id) }) else { return nil }
        return try SnapshotPolicy(
            every: row.everySeconds, keepHourly: row.keepHourly, keepDaily: row.keepDaily, keepWeekly: row.keepWeekly)
    }

    /// `instance policy clear INSTANCE`: scheduled snapshots already taken stay.
    public func clearPolicy(instance: String) throws {
        try core.locked {
            let record = try core.instance(named: instance)
            try core.store.write { s in
                try Self.policies(s).deletePolicy(instanceID: record.id)
                try core.audit(
                    s, mode: core.auditMode(record.audit), .policy, instanceID: record.id, subject: instance,
                    detail: "policy cleared")
            }
        }
    }

    /// `vmimg tick`: for every drive with a policy, expires the scheduled snapshots the policy no
    /// longer keeps, then takes the one that is due. Idempotent: a second tick in the same slot
    /// finds the slot's snapshot and does nothing; two racing ticks choose the same name, so the
    /// loser's create fails as a duplicate and is ignored. Pinned snapshots and snapshots with
    /// dependants (images exported from them, instances on those images) are never expired.
    /// - Parameter now: the clock (tests inject one).
    public func tick(now: Date = Date()) throws -> [TickResult] {
        let work = try core.store.read { s in
            try Self.policies(s).policies().compactMap { p in try s.instance(id: p.instanceID).map { ($0, p) } }
        }
        var results: [TickResult] = []
        for (record, row) in work {
            var result = TickResult(instance: record.name)
            do {
                let policy = try SnapshotPolicy(
                    every: row.everySeconds, keepHourly: row.keepHourly, keepDaily: row.keepDaily,
                    keepWeekly: row.keepWeekly)
                let snapshots = try policySnapshots(record)
                let plan = SnapshotPolicyPlanner.plan(
                    policy: policy, snapshots: snapshots, maxSnapshots: record.maxSnapshots, now: now)
                for name in plan.expire {
                    do {
                        _ = try deleteSnapshot(instance: record.name, name: name)
                        result.expired.append(name)
                    } catch InstancesError.snapshotNotFound {
                        // Another tick expired it first.
                    } catch {
                        result.errors.append("expire '\(name)': \(error)")
                    }
                }
                if let name = plan.create {
                    do {
                        _ = try createSnapshot(instance: record.name, name: name)
                        result.created = name
                    } catch InstancesError.alreadyExists {
                        // Another tick took this slot's snapshot.
                    }
                }
                if let reason = plan.skipped {
                    result.skipped = reason
                    try auditPolicy(record, "scheduled snapshot skipped: \(reason)")
                }
            } catch {
                result.errors.append("\(error)")
                try? auditPolicy(record, "tick failed: \(error)")
            }
            results.append(result)
        }
        return results
    }

    /// The drive's snapshots for the planner: scheduled ones dated by their slot, pins and
    /// dependants from the catalog.
    func policySnapshots(_ record: InstanceRecord) throws -> [PolicySnapshot] {
        try core.store.read { s in
            let images = try s.images().filter { $0.sourceInstanceID == record.id }
            let instances = try s.instances()
            return try s.snapshots(instanceID: record.id).map { row in
                let made = images.filter { $0.sourceSnapshot == row.name }
                let used = !made.isEmpty || instances.contains { i in made.contains { $0.id == i.baseImageID } }
                return PolicySnapshot(
                    name: row.name, takenAt: SnapshotPolicyPlanner.slotTime(of: row.name) ?? row.createdAt,
                    pinned: row.pinned, hasDependants: used)
            }
        }
    }

    func auditPolicy(_ record: InstanceRecord, _ detail: String) throws {
        try core.locked {
            try core.store.write { s in
                try core.audit(
                    s, mode: core.auditMode(record.audit), .policy, instanceID: record.id, subject: record.name,
                    detail: detail)
            }
        }
    }

    static func policies(_ session: any CatalogSession) throws -> any PolicyCatalogSession {
        guard let p = session as? any PolicyCatalogSession else {
            throw InstancesError.invalidArgument("this catalog does not store snapshot policies")
        }
        return p
    }
}
