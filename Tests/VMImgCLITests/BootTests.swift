import Foundation
import TestSupport
import Testing

struct BootCase: CustomStringConvertible, Sendable {
    var name: String
    var convertFlags: [String]
    var description: String { name }
}

/// A real guest on images vmimg wrote: an ext4 disk converted by `vmimg convert`, booted under TCG,
/// written by the guest kernel (through QEMU's qcow2 driver), then checked by both tools and booted again.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BootTests {
    static let files = [
        "hello.txt": "hello from vmimg", "docs/readme.md": "# readme", "a/b/c.txt": "deep",
    ]

    @Test(arguments: [
        BootCase(name: "qcow2", convertFlags: []),
        BootCase(name: "compressed", convertFlags: ["-c"]),
        BootCase(name: "512-byte clusters", convertFlags: ["-o", "cluster_size=512"]),
    ])
    func convertedDiskBootsAndKeepsGuestWrites(_ c: BootCase) throws {
        let scratch = try TestSupport.Scratch(label: "boot")
        let raw = scratch.path("disk.raw")
        let disk = scratch.path("disk.qcow2")
        try Guest.makeDisk(raw, size: "32M", files: Self.files)
        try Tool.vmimg(["convert", "-f", "raw", "-O", "qcow2"] + c.convertFlags + [raw, disk]).checked()
        try Qemu.img(["check", disk]).checked()
        try Qemu.img(["compare", "-f", "raw", "-F", "qcow2", raw, disk]).checked()

        let first = try Guest.boot(disk: disk, actions: [.ls])
        #expect(first.succeeded, "\(c): \(first.serial)")
        #expect(first.files == Self.files.keys.sorted(), "\(c): \(first.serial)")

        let second = try Guest.boot(disk: disk, actions: [.write("file2.txt", "hello")])
        #expect(second.succeeded, "\(c): \(second.serial)")
        let vmimgCheck = try Tool.vmimg(["check", disk])
        #expect(vmimgCheck.status == 0, "\(c): \(vmimgCheck.stdoutText)\(vmimgCheck.stderrText)")
        let qemuCheck = try Qemu.img(["check", disk])
        #expect(qemuCheck.status == 0, "\(c): \(qemuCheck.stdoutText)")

        let third = try Guest.boot(disk: disk, actions: [.ls, .cat("file2.txt")])
        #expect(third.succeeded, "\(c): \(third.serial)")
        #expect(third.files == (Self.files.keys + ["file2.txt"]).sorted(), "\(c): \(third.serial)")
        #expect(third.contents(of: "file2.txt") == "hello", "\(c): \(third.serial)")
    }
}
