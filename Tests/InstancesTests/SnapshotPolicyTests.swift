import Foundation
import Instances
import Testing

/// Snapshot policies with an injected clock: the pure planner, then `tick` on a real home.
@Suite struct SnapshotPolicyPlannerTests {
    static let t0 = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z, a Thursday

    static func at(hours: Double) -> Date { t0.addingTimeInterval(hours * 3600) }

    /// Runs the planner every `step` hours for `hours` hours, applying each plan to a model drive.
    static func simulate(
        _ policy: SnapshotPolicy, hours: Double, step: Double = 1, max: Int = 1000,
        extra: [PolicySnapshot] = []
    ) -> [PolicySnapshot] {
        var drive = extra
        var h = 0.0
        while h <= hours {
            let plan = SnapshotPolicyPlanner.plan(
                policy: policy, snapshots: drive, maxSnapshots: max, now: at(hours: h))
            drive.removeAll { plan.expire.contains($0.name) }
            if let name = plan.create {
                drive.append(
                    PolicySnapshot(name: name, takenAt: SnapshotPolicyPlanner.slotTime(of: name) ?? at(hours: h)))
            }
            #expect(drive.count <= max, "max \(max) exceeded at hour \(h)")
            h += step
        }
        return drive
    }

    @Test func namesEncodeTheSlot() throws {
        let name = SnapshotPolicyPlanner.name(slot: Self.at(hours: 3))
        #expect(name == "auto-20260101T030000Z")
        #expect(SnapshotPolicyPlanner.slotTime(of: name) == Self.at(hours: 3))
        #expect(SnapshotPolicyPlanner.slotTime(of: "manual") == nil)
        #expect(try SnapshotPolicy.parseInterval("1h") == 3600)
        #expect(try SnapshotPolicy.parseInterval("30m") == 1800)
        #expect(try SnapshotPolicy.parseInterval("2d") == 172_800)
        #expect(throws: (any Error).self) { try SnapshotPolicy.parseInterval("soon") }
        #expect(throws: (any Error).self) { try SnapshotPolicy(every: 3600) }
    }

    @Test func dueOncePerSlotAndIdempotent() throws {
        let policy = try SnapshotPolicy(every: 3600, keepHourly: 24)
        let first = SnapshotPolicyPlanner.plan(policy: policy, snapshots: [], maxSnapshots: 5, now: Self.at(hours: 1.5))
        #expect(first.create == "auto-20260101T010000Z")
        let drive = [PolicySnapshot(name: "auto-20260101T010000Z", takenAt: Self.at(hours: 1))]
        let again = SnapshotPolicyPlanner.plan(
            policy: policy, snapshots: drive, maxSnapshots: 5, now: Self.at(hours: 1.9))
        #expect(again == PolicyPlan())
        let next = SnapshotPolicyPlanner.plan(policy: policy, snapshots: drive, maxSnapshots: 5, now: Self.at(hours: 2))
        #expect(next.create == "auto-20260101T020000Z")
    }

    @Test func hourlyKeepsTheLastNHours() throws {
        let drive = Self.simulate(try SnapshotPolicy(every: 3600, keepHourly: 24), hours: 72)
        #expect(drive.count == 24)
        #expect(drive.map(\.takenAt).min() == Self.at(hours: 49))
    }

    @Test func dailyAndWeeklyKeepTheNewestOfEachBucket() throws {
        // Every hour for 5 weeks: 24 hourly, 7 daily, 4 weekly (overlapping) survive.
        let policy = try SnapshotPolicy(every: 3600, keepHourly: 24, keepDaily: 7, keepWeekly: 4)
        let drive = Self.simulate(policy, hours: 35 * 24, step: 1)
        let times = Set(drive.map(\.takenAt))
        let end = Self.at(hours: 35 * 24)
        // Each of the last 7 days has its last hour (23:00) kept, except today (its newest).
        for d in 1..<7 {
            let dayEnd = Calendar(identifier: .iso8601).startOfDay(for: end).addingTimeInterval(
                Double(-d) * 86400 + 23 * 3600)
            #expect(times.contains(dayEnd), "day -\(d)")
        }
        // 4 weekly buckets: the newest snapshot of each ISO week (Sunday 23:00) for earlier weeks.
        let weekly = drive.filter { snapshot in
            let c = Calendar(identifier: .iso8601).dateComponents(
                in: TimeZone(identifier: "UTC")!, from: snapshot.takenAt)
            return c.weekday == 1 && c.hour == 23
        }
        #expect(weekly.count >= 3)
        #expect(drive.count <= 24 + 7 + 4)
        #expect(drive.map(\.takenAt).min()! >= end.addingTimeInterval(-5 * 7 * 86400))
    }

    @Test func pinsAndDependantsAreNeverExpired() throws {
        let policy = try SnapshotPolicy(every: 3600, keepHourly: 2)
        let pinned = PolicySnapshot(name: "auto-20260101T000000Z", takenAt: Self.t0, pinned: true)
        let used = PolicySnapshot(name: "auto-20260101T010000Z", takenAt: Self.at(hours: 1), hasDependants: true)
        let manual = PolicySnapshot(name: "before-upgrade", takenAt: Self.at(hours: 1.5))
        let drive = Self.simulate(policy, hours: 10, extra: [pinned, used, manual])
        #expect(drive.contains(pinned))
        #expect(drive.contains(used))
        #expect(drive.contains(manual))
        #expect(drive.filter { $0.isScheduled && !$0.pinned && !$0.hasDependants }.count == 2)
    }

    @Test func theMaximumHolds() throws {
        let policy = try SnapshotPolicy(every: 3600, keepHourly: 24)
        let drive = Self.simulate(policy, hours: 30, max: 5)
        #expect(drive.count == 5)
        #expect(drive.map(\.takenAt).max() == Self.at(hours: 30))
        // When everything else is protected, the due snapshot is skipped instead.
        let full =
            (0..<4).map {
                PolicySnapshot(name: "auto-2026010\(1)T0\($0)0000Z", takenAt: Self.at(hours: Double($0)), pinned: true)
            } + [PolicySnapshot(name: "manual", takenAt: Self.t0)]
        let plan = SnapshotPolicyPlanner.plan(policy: policy, snapshots: full, maxSnapshots: 5, now: Self.at(hours: 9))
        #expect(plan.create == nil)
        #expect(plan.expire.isEmpty)
        #expect(plan.skipped != nil)
    }
}

@Suite struct SnapshotPolicyTickTests {
    /// `tick` on a real home: creates the due snapshot, is idempotent within a slot, expires what
    /// the policy no longer keeps, never a pinned snapshot, and audits every action.
    @Test func tickCreatesExpiresAndAudits() throws {
        let home = NSTemporaryDirectory() + "vmimg-policy-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let manager = try InstanceManager(home: VMImgHome(root: home))
        _ = try manager.create(
            CreateInstanceRequest(name: "web", source: .empty(size: 1 << 20), maxSnapshots: 4, audit: .changes))
        try manager.setPolicy(instance: "web", try SnapshotPolicy(every: 3600, keepHourly: 2))
        #expect(try manager.policy(instance: "web")?.keepHourly == 2)
        let t0 = SnapshotPolicyPlannerTests.t0
        var created: [String] = []
        for h in 0..<4 {
            let r = try manager.tick(now: t0.addingTimeInterval(Double(h) * 3600 + 60))
            #expect(r.first?.errors == [])
            created += r.compactMap(\.created)
            let again = try manager.tick(now: t0.addingTimeInterval(Double(h) * 3600 + 120))
            #expect(again.first?.created == nil)
            #expect(again.first?.expired == [])
            if h == 1 { try manager.pinSnapshot(instance: "web", name: "auto-20260101T000000Z") }
        }
        #expect(created.count == 4)
        let names = try manager.listSnapshots(instance: "web").map(\.name)
        #expect(names == ["auto-20260101T000000Z", "auto-20260101T020000Z", "auto-20260101T030000Z"])
        let audit = try manager.auditLog(instance: "web")
        #expect(audit.filter { $0.operation == "snapshot-create" }.count == 4)
        #expect(audit.filter { $0.operation == "snapshot-delete" }.count == 1)
        #expect(audit.contains { $0.operation == "policy" })
        try manager.clearPolicy(instance: "web")
        #expect(try manager.policy(instance: "web") == nil)
        #expect(try manager.tick(now: t0.addingTimeInterval(10 * 3600)).isEmpty)
    }
}
