import Foundation
import Instances
import Testing

@Suite struct LibraryDuplicateTests {
    @Test func duplicateStartsEqualToTheSnapshotNeverLeaksAndBoots() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "orig", source: .empty(size: 16 * MiB)))
        let drive = try m.disk("orig")
        try writePattern(drive, 0x44, length: 2 * MiB)
        _ = try m.createSnapshot(instance: "orig", name: "gold")
        try writePattern(drive, 0x55, length: 2 * MiB)
        let thin = try m.duplicate("orig", as: "thin", snapshot: "gold")
        let full = try m.duplicate("orig", as: "full", snapshot: "gold", full: true)
        #expect(thin.exportedImage != nil && full.exportedImage == nil)
        let thinDrive = try m.disk("thin")
        #expect(try hasPattern(thinDrive, 0x44, length: 2 * MiB))
        #expect(try hasPattern(m.disk("full"), 0x44, length: 2 * MiB))
        // R9: writes to the copy do not reach the original, nor the other way.
        try writePattern(thinDrive, 0x66, length: 1 * MiB)
        #expect(try hasPattern(drive, 0x55, length: 2 * MiB))
        try writePattern(drive, 0x77, length: 2 * MiB)
        #expect(try hasPattern(thinDrive, 0x44, at: 1 * MiB, length: 1 * MiB))
        // R19: the thin copy stands on the exported image, so the snapshot may go.
        _ = try m.deleteSnapshot(instance: "orig", name: "gold")
        #expect(try hasPattern(thinDrive, 0x44, at: 1 * MiB, length: 1 * MiB))
        // The image it stands on cannot be deleted from under it.
        let base = try #require(thin.exportedImage)
        let inUse = #expect(throws: InstancesError.self) { try m.library.delete(name: base) }
        #expect(inUse == .imageInUse(image: base, dependants: ["instance 'thin'"]))
        // The duplicate boots (QEMU up, QMP answering) and powers off.
        let started = try m.start("thin", options: StartOptions(memory: 64))
        #expect(["running", "prelaunch"].contains(started.status))
        _ = try m.stop("thin", timeout: 1)
        try m.delete("thin")
        try m.library.delete(name: base)
        #expect(try m.library.list().allSatisfy { $0.name != base })
    }

    @Test func importChecksTheFileAndListsSnapshotsToo() throws {
        let t = try TestHome()
        let m = try t.manager()
        let qcow = t.file("in.qcow2")
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", qcow, "4M"])
        try writePattern(qcow, 0x12, length: 1 * MiB)
        let entry = try m.library.importImage(name: "in", file: qcow, format: "qcow2")
        #expect(entry.virtualSize == 4 * MiB && entry.kind == .image)
        #expect(try hasPattern(try #require(entry.path), 0x12, length: 1 * MiB))
        // Declared format must match; backing files are refused.
        let wrong = #expect(throws: InstancesError.self) {
            try m.library.importImage(name: "w", file: qcow, format: "raw")
        }
        #expect(wrong?.kind == .refused)
        let overlay = t.file("overlay.qcow2")
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", "-b", qcow, "-F", "qcow2", overlay])
        let backed = #expect(throws: InstancesError.self) {
            try m.library.importImage(name: "o", file: overlay)
        }
        #expect(backed == .unsafeImage(path: overlay, reason: "it names a backing file"))
        #expect(throws: InstancesError.alreadyExists(what: "image", name: "in")) {
            try m.library.importImage(name: "in", file: qcow)
        }
        // An instance over the image, with a snapshot: both show up in "my images" (R6).
        _ = try m.create(CreateInstanceRequest(name: "vm", source: .image("in")))
        _ = try m.createSnapshot(instance: "vm", name: "s")
        #expect(try m.library.list().map(\.name) == ["in", "vm@s"])
        #expect(try hasPattern(m.disk("vm"), 0x12, length: 1 * MiB))
        // And the snapshot is a boot source for a new instance.
        _ = try m.create(CreateInstanceRequest(name: "vm2", source: .image("vm@s"), fullCopy: true))
        #expect(try hasPattern(m.disk("vm2"), 0x12, length: 1 * MiB))
        #expect(throws: InstancesError.self) { try m.library.delete(name: "in") }
        try m.delete("vm")
        try m.library.delete(name: "in")
        #expect(try m.library.list().isEmpty)
    }
}
