import Foundation
import Instances
import Testing

@Suite struct SnapshotRuleTests {
    @Test func sixthSnapshotDeletesTheOldestUnpinned() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "web", source: .empty(size: 32 * MiB)))
        for i in 1...5 { _ = try m.createSnapshot(instance: "web", name: "s\(i)") }
        // R12: six creates keep five, the first one gone, and say so.
        let sixth = try m.createSnapshot(instance: "web", name: "s6")
        #expect(sixth.deleted == ["s1"])
        #expect(try m.listSnapshots(instance: "web").map(\.name) == ["s2", "s3", "s4", "s5", "s6"])
        #expect(try qemuSnapshotNames(m.disk("web")) == ["s2", "s3", "s4", "s5", "s6"])
        // R20: a pinned snapshot is skipped.
        try m.pinSnapshot(instance: "web", name: "s2")
        let seventh = try m.createSnapshot(instance: "web", name: "s7")
        #expect(seventh.deleted == ["s3"])
        #expect(try m.listSnapshots(instance: "web").map(\.name) == ["s2", "s4", "s5", "s6", "s7"])
        try qemuImgCheck(m.disk("web"))
    }

    @Test func dryRunShowsVictimAndFreedSpaceAndChangesNothing() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(
            CreateInstanceRequest(name: "db", source: .empty(size: 32 * MiB), maxSnapshots: 2))
        let drive = try m.disk("db")
        try writePattern(drive, 0x11, length: 4 * MiB)
        _ = try m.createSnapshot(instance: "db", name: "a")
        try writePattern(drive, 0x22, length: 4 * MiB)
        _ = try m.createSnapshot(instance: "db", name: "b")
        let plan = try m.createSnapshot(instance: "db", name: "c", dryRun: true)
        #expect(plan.dryRun && plan.deleted == ["a"])
        #expect(plan.freedBytes == 4 * MiB)  // "a" alone holds the 0x11 clusters
        #expect(try m.listSnapshots(instance: "db").map(\.name) == ["a", "b"])
        #expect(try qemuSnapshotNames(drive) == ["a", "b"])
        let deleteDry = try m.deleteSnapshot(instance: "db", name: "a", dryRun: true)
        #expect(deleteDry.freedBytes == 4 * MiB)
        #expect(try qemuSnapshotNames(drive) == ["a", "b"])
    }

    @Test func allPinnedRefusesAndPinnedCannotBeDeleted() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(
            CreateInstanceRequest(name: "p", source: .empty(size: 8 * MiB), maxSnapshots: 2))
        for name in ["a", "b"] {
            _ = try m.createSnapshot(instance: "p", name: name)
            try m.pinSnapshot(instance: "p", name: name)
        }
        let error = #expect(throws: InstancesError.self) {
            try m.createSnapshot(instance: "p", name: "c")
        }
        #expect(error == .allSnapshotsPinned(instance: "p", maxSnapshots: 2))
        let del = #expect(throws: InstancesError.self) {
            try m.deleteSnapshot(instance: "p", name: "a")
        }
        #expect(del?.kind == .refused)
        try m.unpinSnapshot(instance: "p", name: "a")
        #expect(try m.createSnapshot(instance: "p", name: "c").deleted == ["a"])
        #expect(
            throws: InstancesError.invalidName(
                "12", reason: "a snapshot name needs a non-digit (digits alone are qcow2 IDs)")
        ) {
            try m.createSnapshot(instance: "p", name: "12")
        }
    }

    @Test func snapshotsChangedOutsideVmimgAreNoticed() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "x", source: .empty(size: 8 * MiB)))
        _ = try m.createSnapshot(instance: "x", name: "mine")
        let drive = try m.disk("x")
        try tool("qemu-img", ["snapshot", "-d", "mine", drive])
        try tool("qemu-img", ["snapshot", "-c", "theirs", drive])
        let details = try m.show("x")
        #expect(details.snapshots.map(\.name) == ["theirs"])
        #expect(details.notices.contains { $0.contains("'mine'") && $0.contains("deleted outside") })
        #expect(details.notices.contains { $0.contains("'theirs'") && $0.contains("adopted") })
        // The adopted one is managed like any other.
        _ = try m.deleteSnapshot(instance: "x", name: "theirs")
        #expect(try qemuSnapshotNames(drive).isEmpty)
    }

    @Test func budgetRefusesASnapshotThatCouldExceedIt() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "b", source: .empty(size: 64 * MiB)))
        try writePattern(m.disk("b"), 0x33, length: 8 * MiB)
        let inUse = try m.budgetStatus().inUse
        try m.setBudget(inUse + 4 * MiB)
        let error = #expect(throws: InstancesError.self) {
            try m.createSnapshot(instance: "b", name: "s")
        }
        guard case .budgetExceeded(_, _, let needed) = error else {
            Issue.record("expected budgetExceeded, got \(String(describing: error))")
            return
        }
        #expect(needed == Int64(8 * MiB))
        #expect(try m.listSnapshots(instance: "b").isEmpty)
        try m.setBudget(inUse + 64 * MiB)
        _ = try m.createSnapshot(instance: "b", name: "s")
        try m.setBudget(nil)
        #expect(try m.budgetStatus().budget == nil)
    }
}
