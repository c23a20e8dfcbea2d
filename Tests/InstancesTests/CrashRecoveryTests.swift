import Catalog
import Foundation
import Instances
import Testing

/// kill -9 mid-operation: the operation runs in a child process (this test binary in helper mode,
/// selected by VMIMG_CRASH_HELPER), which stops at a named step; the parent kills it there, then a
/// new InstanceManager must recover and leave the catalog matching the drives.
@Suite(.serialized) struct CrashRecoveryTests {
    struct Case: Sendable, CustomStringConvertible {
        var operation: String
        var step: String
        var description: String { "\(operation)@\(step)" }
    }

    static let cases: [Case] = [
        Case(operation: "create", step: "create.drive-made"),
        Case(operation: "duplicate", step: "export.image-made"),
        Case(operation: "duplicate", step: "create.drive-made"),
        Case(operation: "snapshot", step: "snapshot.made"),
        Case(operation: "revert", step: "revert.applied"),
        Case(operation: "rebuild-image", step: "rebuild.drive-made"),
        Case(operation: "rebuild-image", step: "rebuild.committed"),
        Case(operation: "delete", step: "delete.row-deleted"),
        Case(operation: "import", step: "import.image-made"),
    ]

    @Test(arguments: cases)
    func catalogSurvivesKillDashNine(_ c: Case) throws {
        let t = try TestHome()
        try Self.prepare(t)
        let marker = t.file("reached")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["--testing-library", "swift-testing", "--filter", "crashHelper"]
        var env = ProcessInfo.processInfo.environment
        env["VMIMG_CRASH_HELPER"] = "1"
        env["VMIMG_CRASH_ROOT"] = t.root
        env["VMIMG_CRASH_OP"] = c.operation
        env["VMIMG_CRASH_STEP"] = c.step
        env["VMIMG_CRASH_MARKER"] = marker
        child.environment = env
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: marker), child.isRunning, Date() < deadline {
            usleep(20_000)
        }
        #expect(FileManager.default.fileExists(atPath: marker), "child never reached \(c.step)")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)

        let m = try t.manager()
        #expect(!m.recoveryReport.recovered.isEmpty, "\(c): nothing recovered")
        let names = try m.list().map(\.name)
        let src = try m.show("src")
        switch c.description {
        case "create@create.drive-made": #expect(!names.contains("new"))
        case "duplicate@export.image-made", "duplicate@create.drive-made":
            #expect(!names.contains("dup"))
            #expect(try m.library.list().filter { $0.kind == .image }.map(\.name) == ["base"])
        case "snapshot@snapshot.made":
            #expect(src.snapshots.map(\.name) == ["s2", "s3", "s4", "s5", "s6"])
        case "revert@revert.applied":
            #expect(src.snapshots.map(\.name) == ["s1", "s2"])
            #expect(try hasPattern(m.disk("src"), 0xB0, length: 1 * MiB))
        case "rebuild-image@rebuild.drive-made":
            #expect(src.snapshots.count == 5 && src.summary.baseImage == nil)
        case "rebuild-image@rebuild.committed":
            #expect(src.snapshots.isEmpty && src.summary.baseImage == "base")
        case "delete@delete.row-deleted": #expect(!names.contains("other"))
        case "import@import.image-made":
            #expect(try m.library.list().filter { $0.kind == .image }.map(\.name) == ["base"])
        default: Issue.record("unchecked case \(c)")
        }
        try Self.checkConsistent(t, m)
    }

    /// The child side: runs one operation and parks at the step until killed.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VMIMG_CRASH_HELPER"] == "1"))
    func crashHelper() throws {
        let env = ProcessInfo.processInfo.environment
        let root = try #require(env["VMIMG_CRASH_ROOT"])
        let step = env["VMIMG_CRASH_STEP"] ?? ""
        let marker = env["VMIMG_CRASH_MARKER"] ?? ""
        let hooks = InstanceHooks { reached in
            guard reached == step else { return }
            _ = FileManager.default.createFile(atPath: marker, contents: Data())
            sleep(600)
        }
        let m = try InstanceManager(home: VMImgHome(root: root + "/home"), hooks: hooks)
        switch env["VMIMG_CRASH_OP"] {
        case "create":
            _ = try m.create(CreateInstanceRequest(name: "new", source: .empty(size: 8 * MiB)))
        case "duplicate": _ = try m.duplicate("src", as: "dup", snapshot: "s1")
        case "snapshot": _ = try m.createSnapshot(instance: "src", name: "s6")
        case "revert": _ = try m.rebuild("src", from: .snapshot("s2"), confirm: true)
        case "rebuild-image":
            _ = try m.rebuild("src", from: .image("base", fullCopy: false), confirm: true)
        case "delete": try m.delete("other")
        case "import":
            _ = try m.library.importImage(name: "imp", file: root + "/base.raw", format: "raw")
        default: Issue.record("unknown operation")
        }
    }

    static func prepare(_ t: TestHome) throws {
        let m = try t.manager()
        _ = FileManager.default.createFile(
            atPath: t.file("base.raw"), contents: Data(repeating: 0x5A, count: Int(2 * MiB)))
        _ = try m.library.importImage(name: "base", file: t.file("base.raw"), format: "raw")
        _ = try m.create(CreateInstanceRequest(name: "src", source: .empty(size: 8 * MiB)))
        _ = try m.create(CreateInstanceRequest(name: "other", source: .empty(size: 8 * MiB)))
        let drive = try m.disk("src")
        for i in 1...5 {
            try writePattern(drive, i < 2 ? 0xA0 : 0xB0, length: 1 * MiB)
            _ = try m.createSnapshot(instance: "src", name: "s\(i)")
        }
        try writePattern(drive, 0xC0, length: 1 * MiB)
    }

    /// No half-made instance or image: files on disk are exactly the catalog's, every drive's
    /// snapshot table matches its rows, and the journal is empty.
    static func checkConsistent(_ t: TestHome, _ m: InstanceManager) throws {
        let home = t.home
        let instances = try m.list()
        let dirs = try FileManager.default.contentsOfDirectory(atPath: home.instancesDirectory).sorted()
        #expect(dirs == instances.map(\.id).sorted())
        for summary in instances {
            let files = try FileManager.default.contentsOfDirectory(
                atPath: home.instancesDirectory + "/" + summary.id)
            #expect(
                files.map { home.instancesDirectory + "/" + summary.id + "/" + $0 } == [summary.drivePath])
            #expect(
                try qemuSnapshotNames(summary.drivePath)
                    == m.listSnapshots(instance: summary.name).map(\.name))
            try qemuImgCheck(summary.drivePath)
        }
        let imageFiles = try FileManager.default.contentsOfDirectory(atPath: home.imagesDirectory)
            .map { home.imagesDirectory + "/" + $0 }.sorted()
        #expect(try imageFiles == m.library.list().compactMap(\.path).sorted())
        let catalog = try SQLiteCatalog(path: home.catalogPath)
        #expect(try catalog.read { try $0.operations() }.isEmpty)
    }
}
