import Foundation
import NBDServer
import Testing
import TestSupport

/// Whether the guest recipe (`Samples/build-guest.sh`, `make-disk.sh`) is in this checkout.
let guestRecipePresent =
    FileManager.default.fileExists(atPath: Locations.samples + "/build-guest.sh")
    && FileManager.default.fileExists(atPath: Locations.samples + "/make-disk.sh")

@Suite(
    .serialized, .timeLimit(.minutes(5)),
    .enabled(if: guestRecipePresent, "needs Samples/build-guest.sh and Samples/make-disk.sh (guest recipe)"))
struct BootOverNBDTests {
    @Test func guestBootsFromWritableExportAndItsWritesLand() async throws {
        let scratch = try Scratch(label: "nbd-boot")
        let raw = scratch.path("fs.raw")
        try Guest.makeDisk(raw, files: ["hello.txt": "hello from the image"])
        let image = scratch.path("disk.qcow2")
        try Qemu.convert(raw, to: image, format: "qcow2", sourceFormat: "raw")
        let running = try await RunningServer.start([.init(name: "disk", path: image)])
        let run = try Guest.boot(
            disk: running.url("disk"), format: "raw",
            actions: [.ls, .cat("hello.txt"), .write("nbd.txt", "written over nbd")])
        try await running.server.stop()
        #expect(run.succeeded, "\(run.errors) \(run.serial.suffix(2000))")
        #expect(run.files == ["hello.txt"])
        #expect(run.contents(of: "hello.txt") == "hello from the image")
        #expect(try Qemu.checkJSON(image).status == 0)
        let again = try Guest.boot(disk: image, actions: [.ls, .cat("nbd.txt")], readOnly: true)
        #expect(again.files == ["hello.txt", "nbd.txt"])
        #expect(again.contents(of: "nbd.txt") == "written over nbd")
    }

    @Test func guestBootsFromReadOnlySnapshotExport() async throws {
        let scratch = try Scratch(label: "nbd-boot-snap")
        let raw = scratch.path("fs.raw")
        try Guest.makeDisk(raw, files: ["v1.txt": "version one"])
        let image = scratch.path("disk.qcow2")
        try Qemu.convert(raw, to: image, format: "qcow2", sourceFormat: "raw")
        try Qemu.snapshot(image, .create, tag: "v1")
        try Guest.boot(disk: image, actions: [.write("v2.txt", "after the snapshot")]).result.checked()
        let running = try await RunningServer.start([.init(name: "v1", path: image, snapshot: "v1")])
        let run = try Guest.boot(
            disk: running.url("v1") + ",readonly=on", format: "raw", actions: [.ls], readOnly: true)
        try await running.server.stop()
        #expect(run.files == ["v1.txt"], "\(run.errors)")
    }
}
