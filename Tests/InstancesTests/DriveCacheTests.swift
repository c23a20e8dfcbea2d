import Foundation
import Instances
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The default engine, counting the drive reads `list` and `show` are meant to spare.
final class CountingEngine: DriveEngine, @unchecked Sendable {  // counters behind `lock`
    let base = EngineAdapter()
    private let lock = NSLock()
    private var reads = 0
    private var spaces = 0

    /// (snapshot table reads, space computations) so far.
    var counts: (reads: Int, spaces: Int) { lock.withLock { (reads, spaces) } }

    func createDrive(at path: String, virtualSize: UInt64, backing: String?, backingFormat: String?) throws {
        try base.createDrive(at: path, virtualSize: virtualSize, backing: backing, backingFormat: backingFormat)
    }
    func importImage(from source: String, format: String?, to path: String) throws -> UInt64 {
        try base.importImage(from: source, format: format, to: path)
    }
    func copyFlattened(from source: String, to path: String) throws { try base.copyFlattened(from: source, to: path) }
    func exportSnapshot(drive: String, snapshotID: String, to path: String) throws {
        try base.exportSnapshot(drive: drive, snapshotID: snapshotID, to: path)
    }
    func virtualSize(of path: String) throws -> UInt64 { try base.virtualSize(of: path) }
    func snapshots(of drive: String) throws -> [DriveSnapshot] {
        lock.withLock { reads += 1 }
        return try base.snapshots(of: drive)
    }
    func createSnapshot(drive: String, name: String) throws { try base.createSnapshot(drive: drive, name: name) }
    func applySnapshot(drive: String, snapshotID: String) throws {
        try base.applySnapshot(drive: drive, snapshotID: snapshotID)
    }
    func deleteSnapshot(drive: String, id: String, name: String) throws {
        try base.deleteSnapshot(drive: drive, id: id, name: name)
    }
    func space(of drive: String) throws -> DriveSpace {
        lock.withLock { spaces += 1 }
        return try base.space(of: drive)
    }
    func isLocked(_ path: String) throws -> Bool { try base.isLocked(path) }
    func allocatedBytes(of path: String) throws -> UInt64 { try base.allocatedBytes(of: path) }
}

@Suite struct DriveCacheTests {
    /// Past the racy window: a stamp younger than a second is never trusted.
    func settle() { Thread.sleep(forTimeInterval: 1.2) }

    @Test func unchangedDrivesAreNotReopenedAndOutsideChangesAreSeen() throws {
        let t = try TestHome()
        let engine = CountingEngine()
        let m = try InstanceManager(home: t.home, engine: engine)
        _ = try m.create(CreateInstanceRequest(name: "c", source: .empty(size: 16 * MiB)))
        let drive = try m.disk("c")
        try writePattern(drive, 0x11, length: 2 * MiB)
        _ = try m.createSnapshot(instance: "c", name: "s1")
        settle()
        let first = try m.list()
        let shown = try m.show("c")
        let before = engine.counts
        // Unchanged drive: the same figures without reading it again, here and in a new process's manager.
        #expect(try m.list() == first)
        #expect(try m.show("c") == shown)
        #expect(try InstanceManager(home: t.home, engine: engine).list() == first)
        #expect(engine.counts == before)
        #expect(first.map(\.snapshotCount) == [1])
        #expect(shown.activeBytes == 2 * MiB)

        // Changed outside vmimg: a snapshot and more data. The next list and show read the drive again.
        try tool("qemu-img", ["snapshot", "-c", "theirs", drive])
        try writePattern(drive, 0x22, at: 4 * MiB, length: 1 * MiB)
        #expect(try m.list().map(\.snapshotCount) == [2])
        let after = try m.show("c")
        #expect(after.snapshots.map(\.name) == ["s1", "theirs"])
        let fresh = try EngineAdapter().space(of: drive)
        #expect(after.activeBytes == fresh.activeBytes)
        #expect(after.activeBytes == 3 * MiB)
        #expect(after.fileBytes == fresh.fileBytes)
        #expect(after.snapshots.map(\.space) == after.snapshots.map { $0.qcowID.flatMap { fresh.snapshots[$0] } })
        #expect(engine.counts.reads > before.reads)
        #expect(engine.counts.spaces > before.spaces)
    }

    @Test func listingRunsBesideAnotherReaderButNotBesideAMutation() throws {
        let t = try TestHome()
        let m = try t.manager()
        _ = try m.create(CreateInstanceRequest(name: "r", source: .empty(size: 8 * MiB)))
        let fd = open(t.home.path("lock"), O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }

        // Another reader holds the shared lock: the list still runs.
        #expect(flock(fd, LOCK_SH) == 0)
        #expect(try finishes(within: 10) { _ = try m.list() })
        #expect(flock(fd, LOCK_UN) == 0)

        // A mutation holds the exclusive lock: the list waits for it.
        #expect(flock(fd, LOCK_EX) == 0)
        let waiting = DispatchSemaphore(value: 0)
        let names = NamesBox()
        Thread.detachNewThread {
            names.set((try? m.list().map(\.name)) ?? [])
            waiting.signal()
        }
        #expect(waiting.wait(timeout: .now() + 0.5) == .timedOut)
        #expect(flock(fd, LOCK_UN) == 0)
        #expect(waiting.wait(timeout: .now() + 10) == .success)
        #expect(names.get() == ["r"])
    }

    /// Whether `body` returns within `seconds` (it runs on its own thread).
    func finishes(within seconds: Double, _ body: @escaping @Sendable () throws -> Void) throws -> Bool {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? body()
            done.signal()
        }
        return done.wait(timeout: .now() + seconds) == .success
    }
}

final class NamesBox: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var names: [String] = []
    func set(_ value: [String]) { lock.withLock { names = value } }
    func get() -> [String] { lock.withLock { names } }
}
