import Foundation
import Instances
import TestSupport
import Testing

@Suite struct RebuildQuotaAuditTests {
    @Test func rebuildFromSnapshotRevertsAndDeletesNewerOnlyWhenConfirmed() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "r", source: .empty(size: 16 * MiB)))
        let drive = try m.disk("r")
        try writePattern(drive, 0xA1, length: 1 * MiB)  // file1
        _ = try m.createSnapshot(instance: "r", name: "s1")
        try writePattern(drive, 0xB2, length: 1 * MiB)  // file2
        _ = try m.createSnapshot(instance: "r", name: "s2")
        _ = try m.createSnapshot(instance: "r", name: "s3")
        // R14: without confirmation only the plan comes back; nothing changes.
        let outcome = try m.rebuild("r", from: .snapshot("s1"), confirm: false)
        guard case .planned(let plan) = outcome else {
            Issue.record("expected a plan")
            return
        }
        #expect(plan.snapshotsDestroyed == ["s2", "s3"])
        #expect(plan.summary.contains("s2, s3"))
        #expect(try hasPattern(drive, 0xB2, length: 1 * MiB))
        #expect(try qemuSnapshotNames(drive) == ["s1", "s2", "s3"])
        // R7 + R13: confirmed, the drive equals s1 and newer snapshots are gone; s1 stays (R10).
        #expect(try m.rebuild("r", from: .snapshot("s1"), confirm: true) == .rebuilt(plan))
        #expect(try hasPattern(drive, 0xA1, length: 1 * MiB))
        #expect(try qemuSnapshotNames(drive) == ["s1"])
        #expect(try m.listSnapshots(instance: "r").map(\.name) == ["s1"])
        try qemuImgCheck(drive)
    }

    @Test func rebuildRefusesPinnedVictimsAndRebuildFromImageReplacesDrive() throws {
        let t = try TestHome()
        let m = try t.manager()
        let raw = t.file("base.raw")
        _ = FileManager.default.createFile(
            atPath: raw, contents: Data(repeating: 0x5A, count: Int(2 * MiB)))
        _ = try m.library.importImage(name: "base", file: raw, format: "raw")
        _ = try m.create(CreateInstanceRequest(name: "r", source: .empty(size: 2 * MiB)))
        _ = try m.createSnapshot(instance: "r", name: "keep")
        try m.pinSnapshot(instance: "r", name: "keep")
        let refused = #expect(throws: InstancesError.self) {
            try m.rebuild("r", from: .image("base", fullCopy: false), confirm: true)
        }
        #expect(refused == .snapshotsPinned(instance: "r", names: ["keep"], operation: "rebuild"))
        try m.unpinSnapshot(instance: "r", name: "keep")
        let old = try m.disk("r")
        _ = try m.rebuild("r", from: .image("base", fullCopy: false), confirm: true)
        let new = try m.disk("r")
        #expect(old != new && !FileManager.default.fileExists(atPath: old))
        #expect(try hasPattern(new, 0x5A, length: 2 * MiB))
        #expect(try m.list().first?.baseImage == "base")
        #expect(try m.listSnapshots(instance: "r").isEmpty)
    }

    @Test func rebuildIsRefusedWhileAnyQemuHoldsTheDrive() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "q", source: .empty(size: 8 * MiB)))
        _ = try m.createSnapshot(instance: "q", name: "s1")
        let drive = try m.disk("q")
        let foreign = try Qemu.holdOpen(drive)
        let error = #expect(throws: InstancesError.self) {
            try m.rebuild("q", from: .snapshot("s1"), confirm: true)
        }
        #expect(error == .driveLocked(instance: "q", path: drive))
        foreign.stop()
        // Our own running instance: R15 names the power state.
        _ = try m.start("q", options: StartOptions(memory: 64))
        defer { _ = try? m.stop("q", timeout: 1) }
        let running = #expect(throws: InstancesError.self) {
            try m.rebuild("q", from: .snapshot("s1"), confirm: true)
        }
        #expect(running == .instanceRunning(instance: "q", operation: "rebuild"))
        // A snapshot of the running instance goes through QMP.
        let live = try m.createSnapshot(instance: "q", name: "live")
        #expect(live.live)
        #expect(try m.listSnapshots(instance: "q").map(\.name) == ["s1", "live"])
        // State survives a new manager (a later vmimg process).
        let later = try t.manager()
        #expect(try later.list().first?.state == .running)
        let stopped = try later.stop("q", timeout: 2)
        #expect(stopped.instance == "q")
        #expect(try m.list().first?.state == .stopped)
        #expect(try qemuSnapshotNames(drive) == ["s1", "live"])
        try qemuImgCheck(drive)
    }

    @Test func quotaCountsOnlyTheActiveLayer() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(
            CreateInstanceRequest(name: "qa", source: .empty(size: 64 * MiB), quota: 8 * MiB))
        let drive = try m.disk("qa")
        try writePattern(drive, 0x01, length: 8 * MiB)
        _ = try m.createSnapshot(instance: "qa", name: "s")
        try writePattern(drive, 0x02, length: 8 * MiB)  // snapshot now pins 8 MiB on its own
        // R4: filled to the quota with snapshots holding as much again, still within quota.
        let details = try m.show("qa")
        #expect(details.activeBytes == 8 * MiB)
        #expect(details.snapshotOnlyBytes == 8 * MiB)
        #expect(!details.overQuota)
        #expect(details.snapshots.first?.space?.unique == 8 * MiB)
        #expect(details.fileBytes >= 16 * MiB)
        try writePattern(drive, 0x03, at: 8 * MiB, length: 1 * MiB)
        #expect(try m.show("qa").overQuota)
        let error = #expect(throws: InstancesError.self) { try m.start("qa") }
        #expect(error?.kind == .refused)
    }

    @Test func auditIsInheritedBySnapshotDuplicateAndExportedImage() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(
            CreateInstanceRequest(name: "src", source: .empty(size: 8 * MiB), audit: .changes))
        _ = try m.create(CreateInstanceRequest(name: "quiet", source: .empty(size: 8 * MiB)))
        _ = try m.createSnapshot(instance: "src", name: "s1")
        _ = try m.createSnapshot(instance: "quiet", name: "q1")
        #expect(try m.listSnapshots(instance: "src").first?.audit == .changes)
        #expect(try m.listSnapshots(instance: "quiet").first?.audit == .off)
        let dup = try m.duplicate("src", as: "copy", snapshot: "s1")
        #expect(dup.newInstance.audit == .changes)
        let exported = try #require(dup.exportedImage)
        #expect(try m.library.show(name: exported).audit == .changes)
        let entries = try m.library.list()
        #expect(entries.first { $0.name == "src@s1" }?.audit == .changes)
        #expect(entries.first { $0.name == "quiet@q1" }?.audit == .off)
        _ = try m.createSnapshot(instance: "copy", name: "c1")
        #expect(try m.listSnapshots(instance: "copy").first?.audit == .changes)
        #expect(try m.auditLog(instance: "src").map(\.operation) == ["create", "snapshot-create"])
        #expect(try m.auditLog(instance: "copy").map(\.operation) == ["create", "snapshot-create"])
        #expect(try m.auditLog(instance: "quiet").isEmpty)
    }
}
