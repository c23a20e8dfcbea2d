import BlockIO
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The seeds' rules (managers.md §1) through the built `vmimg` binary on real files: each test has
/// its own home in a scratch directory; QEMU's tools write guest data and check the results.
@Suite(.timeLimit(.minutes(5)))
struct InstanceCLITests {
    let scratch: TestSupport.Scratch
    let home: String

    init() throws {
        scratch = try TestSupport.Scratch(label: "icli")
        home = scratch.path("home")
    }

    /// Runs `vmimg ARGS --home HOME` and expects `status`.
    @discardableResult
    func vmimg(_ args: String..., status: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> ToolResult
    {
        let result = try Tool.vmimg(args + ["--home", home], timeout: .seconds(120))
        #expect(result.status == status, "\(result)\nstdout:\n\(result.stdoutText)", sourceLocation: sourceLocation)
        return result
    }

    func json(_ args: String...) throws -> JSON {
        let result = try Tool.vmimg(args + ["--output", "json", "--home", home]).checked()
        return try JSON(parsing: result.stdoutText)
    }

    func snapshotNames(_ instance: String) throws -> [String] {
        try #require(try json("instance", "snapshot", "list", instance).array).compactMap { $0["name"]?.string }
    }

    func disk(_ instance: String) throws -> String {
        try vmimg("instance", "disk", instance).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - R12, R20: retention and pins

    @Test func sixthSnapshotDeletesTheOldestUnpinned() throws {
        try vmimg("instance", "create", "vm", "--size", "16M")
        for n in 1...5 { try vmimg("instance", "snapshot", "create", "vm", "s\(n)") }
        #expect(try snapshotNames("vm") == ["s1", "s2", "s3", "s4", "s5"])

        let sixth = try vmimg("instance", "snapshot", "create", "vm", "s6")
        #expect(sixth.stdoutText.contains("deleted the oldest unpinned snapshot 's1'"), "\(sixth.stdoutText)")
        #expect(try snapshotNames("vm") == ["s2", "s3", "s4", "s5", "s6"])
        #expect(try Qemu.snapshotNames(disk("vm")) == ["s2", "s3", "s4", "s5", "s6"])

        // A pinned snapshot survives retention: the next oldest goes instead.
        try vmimg("instance", "snapshot", "pin", "vm", "s2")
        let dry = try vmimg("instance", "snapshot", "create", "vm", "s7", "--dry-run")
        #expect(dry.stdoutText.contains("would delete the oldest unpinned snapshot 's3'"), "\(dry.stdoutText)")
        #expect(try snapshotNames("vm") == ["s2", "s3", "s4", "s5", "s6"])
        let seventh = try vmimg("instance", "snapshot", "create", "vm", "s7")
        #expect(seventh.stdoutText.contains("'s3'"), "\(seventh.stdoutText)")
        #expect(try snapshotNames("vm") == ["s2", "s4", "s5", "s6", "s7"])
        let pinned = try json("instance", "snapshot", "list", "vm").array?.first
        #expect(pinned?["name"]?.string == "s2" && pinned?["pinned"]?.bool == true)

        // A pinned snapshot cannot be deleted; with all pinned, one more snapshot is refused.
        let refused = try vmimg("instance", "snapshot", "delete", "vm", "s2", status: 1)
        #expect(refused.stderrText.hasPrefix("vmimg: ") && refused.stderrText.contains("pinned"))
        for name in ["s4", "s5", "s6", "s7"] { try vmimg("instance", "snapshot", "pin", "vm", name) }
        let full = try vmimg("instance", "snapshot", "create", "vm", "s8", status: 1)
        #expect(full.stderrText.contains("all pinned"), "\(full.stderrText)")
        #expect(full.stderrText.split(separator: "\n").count == 1)
        #expect(try snapshotNames("vm") == ["s2", "s4", "s5", "s6", "s7"])
    }

    // MARK: - R7, R13, R14: rebuild

    @Test func rebuildDeletesNewerSnapshotsAndNeedsYesWithoutATerminal() throws {
        try vmimg("instance", "create", "vm", "--size", "16M")
        let drive = try disk("vm")
        try Qemu.io(drive, commands: ["write -P 0x11 0 64k"])
        try vmimg("instance", "snapshot", "create", "vm", "a")
        try Qemu.io(drive, commands: ["write -P 0x22 0 64k"])
        try vmimg("instance", "snapshot", "create", "vm", "b")
        try vmimg("instance", "snapshot", "create", "vm", "c")
        try Qemu.io(drive, commands: ["write -P 0x33 0 64k"])

        // No terminal (stdin is a file here) and no --yes: the plan is printed, nothing changes.
        let refused = try vmimg("instance", "rebuild", "vm", "--snapshot", "a", status: 1)
        #expect(refused.stdoutText.contains("snapshots deleted: b, c"), "\(refused.stdoutText)")
        #expect(refused.stderrText.contains("--yes"), "\(refused.stderrText)")
        #expect(refused.stderrText.split(separator: "\n").count == 1)
        #expect(try snapshotNames("vm") == ["a", "b", "c"])
        try Qemu.io(drive, commands: ["read -P 0x33 0 64k"])

        let dry = try vmimg("instance", "rebuild", "vm", "--snapshot", "a", "--dry-run")
        #expect(dry.stdoutText.contains("b, c") && dry.stdoutText.contains("nothing changed"))
        #expect(try snapshotNames("vm") == ["a", "b", "c"])

        let done = try vmimg("instance", "rebuild", "vm", "--snapshot", "a", "--yes")
        #expect(done.stdoutText.contains("Rebuilt 'vm' from snapshot 'a'; deleted snapshots 'b', 'c'"))
        #expect(try snapshotNames("vm") == ["a"])
        try Qemu.io(try disk("vm"), commands: ["read -P 0x11 0 64k"])
        #expect(try Qemu.img(["check", try disk("vm")]).status == 0)
        // R10: the snapshot survives the rollback and can be used again.
        try vmimg("instance", "rebuild", "vm", "--snapshot", "a", "--yes")
        #expect(try snapshotNames("vm") == ["a"])
    }

    // MARK: - R15: a QEMU holding the drive

    @Test func rebuildRefusedWhileQemuHoldsTheDrive() throws {
        try vmimg("instance", "create", "vm", "--size", "16M")
        let drive = try disk("vm")
        try Qemu.io(drive, commands: ["write -P 0x11 0 64k"])
        try vmimg("instance", "snapshot", "create", "vm", "a")
        try Qemu.io(drive, commands: ["write -P 0x22 0 64k"])

        let holder = try Qemu.holdOpen(drive)

        let refused = try vmimg("instance", "rebuild", "vm", "--snapshot", "a", "--yes", status: 1)
        #expect(refused.stderrText.contains("locked by a QEMU process"), "\(refused.stderrText)")
        let snapshot = try vmimg("instance", "snapshot", "create", "vm", "b", status: 1)
        #expect(snapshot.stderrText.contains("locked"), "\(snapshot.stderrText)")
        #expect(try snapshotNames("vm") == ["a"])

        holder.stop()
        try Qemu.io(drive, commands: ["read -P 0x22 0 64k"])
        try vmimg("instance", "rebuild", "vm", "--snapshot", "a", "--yes")
        try Qemu.io(drive, commands: ["read -P 0x11 0 64k"])
    }

    // MARK: - R4: quota

    @Test func quotaCountsTheActiveLayerOnly() throws {
        try vmimg("instance", "create", "vm", "--size", "64M", "--quota", "4M")
        let drive = try disk("vm")
        try Qemu.io(drive, commands: ["write -P 0x01 0 3M"])
        try vmimg("instance", "snapshot", "create", "vm", "s1")
        try Qemu.io(drive, commands: ["write -P 0x02 0 3M"])  // copy-on-write: the snapshot keeps 3 MiB

        let show = try json("instance", "show", "vm")
        let mib: Int64 = 1 << 20
        #expect(show["quota"]?.int == 4 * mib)
        #expect(show["active-bytes"]?.int == 3 * mib)
        #expect(show["snapshot-only-bytes"]?.int == 3 * mib)
        #expect(show["over-quota"]?.bool == false)
        #expect((show["file-bytes"]?.int ?? 0) > 6 * mib)
        let human = try vmimg("instance", "show", "vm").stdoutText
        #expect(human.contains("active layer uses 3.0 MiB of 4.0 MiB"), "\(human)")
        #expect(human.contains("not counted against the quota"))

        try Qemu.io(drive, commands: ["write -P 0x03 8M 2M"])
        let over = try json("instance", "show", "vm")
        #expect(over["active-bytes"]?.int == 5 * mib)
        #expect(over["over-quota"]?.bool == true)
        let start = try vmimg("instance", "start", "vm", status: 1)
        #expect(start.stderrText.contains("over its quota"), "\(start.stderrText)")
        #expect(try json("instance", "show", "vm")["state"]?.string == "stopped")
    }

    // MARK: - R5: audit

    @Test func auditModeIsInheritedBySnapshotDuplicateAndExportedImage() throws {
        try vmimg("instance", "create", "vm", "--size", "16M", "--audit", "all", "--quota", "8M")
        try vmimg("instance", "snapshot", "create", "vm", "s1")
        #expect(try json("instance", "snapshot", "list", "vm")[0]?["audit"]?.string == "all")

        let dup = try vmimg("instance", "duplicate", "vm", "copy", "--snapshot", "s1")
        #expect(dup.stdoutText.contains("exported image"), "\(dup.stdoutText)")
        let copy = try json("instance", "show", "copy")
        #expect(copy["audit"]?.string == "all")
        #expect(copy["quota"]?.int == 8 << 20)
        let base = try #require(copy["base-image"]?.string)

        let images = try #require(try json("images", "list").array)
        let exported = try #require(images.first { $0["name"]?.string == base })
        #expect(exported["audit"]?.string == "all")
        #expect(exported["origin"]?.string == "snapshot")
        #expect(images.first { $0["name"]?.string == "vm@s1" }?["audit"]?.string == "all")
        let refused = try vmimg("images", "delete", base, status: 1)
        #expect(refused.stderrText.contains("in use"), "\(refused.stderrText)")

        let log = try #require(try json("instance", "audit", "vm").array)
        let operations = log.compactMap { $0["operation"]?.string }
        #expect(operations.starts(with: ["create", "snapshot-create"]), "\(operations)")
        #expect(log.allSatisfy { $0["mode"]?.string == "all" })

        try vmimg("instance", "create", "quiet", "--size", "16M")
        try vmimg("instance", "snapshot", "create", "quiet", "s1")
        #expect(try json("instance", "audit", "quiet").array?.isEmpty == true)
        #expect(try json("instance", "snapshot", "list", "quiet")[0]?["audit"]?.string == "off")
    }

    // MARK: - Import policy

    @Test func importRefusesBackingFileDataFileAndUnknownFeaturesUnlessTrusted() throws {
        let base = scratch.path("base.qcow2")
        try Qemu.create(base, size: "16M")
        try Qemu.io(base, commands: ["write -P 0x5a 0 64k"])
        let overlay = scratch.path("overlay.qcow2")
        try Qemu.img(["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay]).checked()
        let dataFile = scratch.path("external.qcow2")
        try Qemu.img([
            "create", "-q", "-f", "qcow2", "-o", "data_file=\(scratch.path("external.raw"))", dataFile, "16M",
        ])
        .checked()
        let unknown = scratch.path("unknown.qcow2")
        try Qemu.create(unknown, size: "16M")
        try TestSupport.poke(unknown, at: 72, bigEndian: UInt64(1) << 20)  // incompatible_features bit 20

        for (file, reason) in [(overlay, "backing file"), (dataFile, "data file"), (unknown, "incompatible feature")] {
            let refused = try vmimg("images", "import", "img", file, status: 1)
            #expect(refused.stderrText.hasPrefix("vmimg: refusing to import"), "\(refused.stderrText)")
            #expect(refused.stderrText.contains(reason))
            #expect(refused.stderrText.split(separator: "\n").count == 1)
        }
        let mismatch = try vmimg("images", "import", "img", base, "-f", "raw", status: 1)
        #expect(mismatch.stderrText.contains("declared format 'raw'"), "\(mismatch.stderrText)")
        #expect(try json("images", "list").array?.isEmpty == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: home + "/images").isEmpty)

        // --trust imports a backing-file or data-file image, flattened into a standalone qcow2.
        try vmimg("images", "import", "trusted-overlay", overlay, "--trust")
        try vmimg("images", "import", "trusted-data", dataFile, "-f", "qcow2", "--trust")
        // Unknown incompatible features stay unreadable: no engine can import them, trusted or not.
        try vmimg("images", "import", "trusted-unknown", unknown, "--trust", status: 1)
        let images = try #require(try json("images", "list").array)
        #expect(images.compactMap { $0["name"]?.string } == ["trusted-data", "trusted-overlay"])
        let stored = try #require(images.first { $0["name"]?.string == "trusted-overlay" }?["path"]?.string)
        #expect(try Qemu.infoJSON(stored)["backing-filename"] == nil)
        try Qemu.io(stored, commands: ["read -P 0x5a 0 64k"])
    }

    // MARK: - R16: NBD

    @Test func serveExportsTheDriveAndSnapshotsReadOnly() throws {
        try vmimg("instance", "create", "vm", "--size", "16M")
        let drive = try disk("vm")
        try Qemu.io(drive, commands: ["write -P 0x11 0 64k"])
        try vmimg("instance", "snapshot", "create", "vm", "s1")
        try Qemu.io(drive, commands: ["write -P 0x22 0 64k"])

        let port = Int.random(in: 20000...40000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: try Tool.vmimgBinary())
        server.arguments = ["instance", "serve", "vm", "--port", String(port), "--home", home]
        server.standardInput = FileHandle.nullDevice
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        let url = "nbd://127.0.0.1:\(port)/vm"
        let deadline = Date().addingTimeInterval(30)
        while try Qemu.img(["info", url]).status != 0 {
            try #require(Date() < deadline && server.isRunning, "vmimg instance serve never listened on \(port)")
            Thread.sleep(forTimeInterval: 0.2)
        }
        try Qemu.io(url, format: "raw", commands: ["read -P 0x22 0 64k", "write -P 0x33 64k 64k"])
        let snapshot = try Qemu.io(["-r", "-f", "raw", "-c", "read -P 0x11 0 64k", url + "@s1"]).checked()
        #expect(!snapshot.stdoutText.contains("Pattern verification failed"), "\(snapshot.stdoutText)")
        let write = try Qemu.io(["-f", "raw", "-c", "write -P 0x44 0 4k", url + "@s1"])
        #expect((write.stdoutText + write.stderrText).contains("read-only") || write.status != 0, "\(write)")
    }

    // MARK: - Listing and errors

    @Test func listsShowAndErrorsAreOneLine() throws {
        try vmimg("instance", "create", "vm", "--size", "16M", "--max-snapshots", "3")
        try vmimg("instance", "snapshot", "create", "vm", "s1")
        let table = try vmimg("instance", "list").stdoutText
        #expect(table.hasPrefix("+------+"), "\(table)")
        #expect(table.contains("| vm   | stopped | 16.0 MiB"), "\(table)")
        let list = try #require(try json("instance", "list").array)
        #expect(list.count == 1 && list[0]["name"]?.string == "vm" && list[0]["snapshots"]?.int == 1)
        let show = try json("instance", "show", "vm")
        #expect(show["max-snapshots"]?.int == 3)
        #expect(show["drive"]?.string == (try disk("vm")))
        #expect(show["snapshots"]?[0]?["unique"] != nil)

        let missing = try vmimg("instance", "show", "nope", status: 1)
        #expect(missing.stderrText == "vmimg: no instance named 'nope'\n")
        let twice = try vmimg("instance", "create", "vm", "--size", "16M", status: 1)
        #expect(twice.stderrText == "vmimg: instance 'vm' already exists\n")
        try vmimg("instance", "create", "x", status: 1)  // neither --image nor --size

        try vmimg("config", "set", "budget", "1G")
        #expect(try json("config", "show")["budget"]?.int == 1 << 30)
        try vmimg("instance", "delete", "vm")
        #expect(try json("instance", "list").array?.isEmpty == true)
    }
}

/// R9: a duplicate starts equal to the snapshot and boots; nothing leaks between the two.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct InstanceBootTests {
    @Test func duplicateFromSnapshotBootsWithTheSnapshotFiles() throws {
        let scratch = try TestSupport.Scratch(label: "icli-boot")
        let home = scratch.path("home")
        @discardableResult func vmimg(_ args: String...) throws -> ToolResult {
            try Tool.vmimg(args + ["--home", home], timeout: .seconds(120)).checked()
        }
        let raw = scratch.path("base.raw")
        try Guest.makeDisk(raw, files: ["file1.txt": "hello"])
        try vmimg("images", "import", "base", raw, "-f", "raw")
        try vmimg("instance", "create", "vm", "--image", "base")
        try vmimg("instance", "snapshot", "create", "vm", "s1")
        try vmimg("instance", "duplicate", "vm", "copy", "--snapshot", "s1")
        let copyDisk = try vmimg("instance", "disk", "copy").stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let vmDisk = try vmimg("instance", "disk", "vm").stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)

        let copy = try Guest.boot(disk: copyDisk, actions: [.write("copy.txt", "only in the copy"), .ls])
        #expect(copy.succeeded, "\(copy.serial)")
        #expect(copy.files == ["copy.txt", "file1.txt"])
        let original = try Guest.boot(disk: vmDisk, actions: [.ls])
        #expect(original.succeeded, "\(original.serial)")
        #expect(original.files == ["file1.txt"])
        // R10: the snapshot is still listed and usable after the duplicate.
        let names = try vmimg("instance", "snapshot", "list", "vm").stdoutText
        #expect(names.contains("| s1 "))
    }
}
