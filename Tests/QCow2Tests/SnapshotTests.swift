import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format
import Testing

/// Fixtures and oracles shared by the snapshot tests.
enum SnapFixture {
    /// Creates `img.qcow2` in `dir` with qemu-img and writes `ops` with qemu-io.
    static func make(_ dir: String, options: String, size: String = "4M", ops: [String] = []) throws -> String {
        let path = dir + "/img.qcow2"
        let (code, _, err) = try run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", options, path, size])
        try #require(code == 0, "qemu-img create: \(err)")
        try io(path, ops)
        return path
    }

    static func io(_ path: String, _ ops: [String]) throws {
        guard !ops.isEmpty else { return }
        let (code, _, err) = try run("qemu-io", ops.flatMap { ["-c", $0] } + [path])
        try #require(code == 0, "qemu-io: \(err)")
    }

    /// `qemu-img check` exit code and output (0 = clean, 2 = corrupt, 3 = leaks).
    static func check(_ path: String) throws -> (Int32, String) {
        let (code, out, err) = try run("qemu-img", ["check", path])
        return (code, out + err)
    }

    /// Expects `qemu-img check` to find nothing (no errors, no leaks).
    static func expectClean(_ path: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let (code, out) = try check(path)
        #expect(code == 0, "\(context): \(out)", sourceLocation: sourceLocation)
    }

    /// The guest view (active layer, or a snapshot with `-l`) as qemu-img converts it.
    static func raw(_ path: String, snapshot: String? = nil) throws -> Data {
        let out = path + ".\(UUID().uuidString).raw"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var args = ["convert", "-U", "-O", "raw"]
        if let snapshot { args += ["-l", snapshot] }
        let (code, _, err) = try run("qemu-img", args + [path, out])
        try #require(code == 0, "qemu-img convert \(args): \(err)")
        return try #require(FileManager.default.contents(atPath: out))
    }

    /// `qemu-img snapshot -l` output.
    static func list(_ path: String) throws -> String {
        try run("qemu-img", ["snapshot", "-U", "-l", path]).1
    }

    static func open(_ path: String) throws -> QCow2Image { try QCow2Image(path: path, writable: true) }

    static func pattern(_ byte: UInt8, _ count: Int) -> [UInt8] { [UInt8](repeating: byte, count: count) }
}

struct SnapshotFormatCase: CustomStringConvertible, Sendable {
    var options: String
    var description: String { options }
}

let snapshotFormatCases: [SnapshotFormatCase] = [
    SnapshotFormatCase(options: "cluster_size=65536"),
    SnapshotFormatCase(options: "compat=0.10"),
    SnapshotFormatCase(options: "cluster_size=512,refcount_bits=16"),
    SnapshotFormatCase(options: "cluster_size=4096,refcount_bits=64"),
    SnapshotFormatCase(options: "cluster_size=512,refcount_bits=2"),
    SnapshotFormatCase(options: "extended_l2=on,cluster_size=16384"),
    SnapshotFormatCase(options: "cluster_size=2M,refcount_bits=8"),
]

@Suite struct SnapshotQemuParity {
    /// Snapshots taken by vmimg read back byte-exact through `qemu-img convert -l`, and `check`
    /// stays clean after every step.
    @Test(arguments: snapshotFormatCases)
    func vmimgSnapshotsReadBackInQemu(_ c: SnapshotFormatCase) throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(
            dir, options: c.options, ops: ["write -P 0x11 0 300k", "write -P 0x12 1M 64k", "write -z 2M 64k"])
        let v0 = try SnapFixture.raw(path)
        let image = try SnapFixture.open(path)
        let s1 = try image.createSnapshot(name: "s1", date: SnapshotDate(seconds: 1_700_000_000, nanoseconds: 5000))
        #expect(s1.id == "1" && s1.icount == 0 && s1.diskSize == 4 << 20)
        try SnapFixture.expectClean(path, "\(c) after create s1")
        let cs = image.geometry.clusterSize
        try image.write(SnapFixture.pattern(0x21, 100_000), range: 0..<100_000, at: 4096)
        try image.write(SnapFixture.pattern(0x22, 65536), range: 0..<65536, at: 3 << 20)
        try image.flush()
        let v1 = try SnapFixture.raw(path)
        #expect(v1 != v0)
        try image.createSnapshot(name: "s2", date: SnapshotDate(seconds: 1_700_000_100))
        try image.write(SnapFixture.pattern(0x31, 5000), range: 0..<5000, at: 1 << 20)
        try image.flush()
        let v2 = try SnapFixture.raw(path)
        let (code, out) = try SnapFixture.check(path)
        #expect(code == 0, "\(c): \(out)")
        #expect(try SnapFixture.raw(path, snapshot: "snapshot.name=s1") == v0, "\(c) s1")
        #expect(try SnapFixture.raw(path, snapshot: "2") == v1, "\(c) s2")
        // Our own reads of the snapshots agree.
        let e1 = try #require(image.findSnapshot(.name("s1")))
        var buffer = [UInt8](repeating: 0, count: v0.count)
        try image.read(into: &buffer, range: 0..<buffer.count, at: 0, snapshot: e1)
        #expect(Data(buffer) == v0)

        // Apply s1, then s2, then delete s1: content follows, check stays clean.
        try image.applySnapshot("s1")
        try SnapFixture.expectClean(path, "\(c) after apply s1")
        #expect(try SnapFixture.raw(path) == v0)
        try image.write(SnapFixture.pattern(0x41, cs), range: 0..<cs, at: 0)
        try image.applySnapshot("2")
        #expect(try SnapFixture.raw(path) == v1)
        try image.deleteSnapshot("s1")
        let (dcode, dout) = try SnapFixture.check(path)
        #expect(dcode == 0, "\(c) after delete: \(dout)")
        #expect(try SnapFixture.raw(path) == v1)
        #expect(try SnapFixture.raw(path, snapshot: "s2") == v1)
        try image.deleteSnapshot("s2")
        try SnapFixture.expectClean(path, "\(c) after deleting all")
        #expect(try SnapFixture.raw(path) == v1)
        // Exclusive again: writes go in place (COPIED set everywhere).
        try image.write(SnapFixture.pattern(0x51, 10), range: 0..<10, at: 0)
        try image.flush()
        #expect(try SnapFixture.check(path).0 == 0)
        _ = v2
    }

    /// Snapshots made by `qemu-img snapshot -c` apply and delete in vmimg exactly as in qemu-img:
    /// the same sequence on two copies gives the same content and the same `snapshot -l`.
    // refcount_bits=2 holds at most 3 references: qemu-img's third snapshot would fail there.
    @Test(arguments: snapshotFormatCases.filter { !$0.options.contains("refcount_bits=2") })
    func qemuSnapshotsApplyAndDeleteLikeQemu(_ c: SnapshotFormatCase) throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: c.options, ops: ["write -P 0x11 0 200k"])
        try run("qemu-img", ["snapshot", "-c", "s1", path])
        try SnapFixture.io(path, ["write -P 0x22 64k 64k", "write -P 0x23 3M 4k"])
        try run("qemu-img", ["snapshot", "-c", "s2", path])
        try run("qemu-img", ["snapshot", "-c", "s1", path])  // a duplicate name, ID 3
        try SnapFixture.io(path, ["write -P 0x33 0 8k", "discard 3M 64k"])
        let theirs = dir + "/theirs.qcow2"
        try FileManager.default.copyItem(atPath: path, toPath: theirs)
        let steps: [(String, String)] = [
            ("-a", "s1"), ("-a", "3"), ("-d", "s1"), ("-a", "s2"), ("-d", "s1"), ("-d", "s2"),
        ]
        let image = try SnapFixture.open(path)
        for (op, arg) in steps {
            try run("qemu-img", ["snapshot", op, arg, theirs])
            if op == "-a" { try image.applySnapshot(arg) } else { try image.deleteSnapshot(arg) }
            let (code, out) = try SnapFixture.check(path)
            #expect(code == 0, "\(c) \(op) \(arg): \(out)")
            #expect(try SnapFixture.raw(path) == SnapFixture.raw(theirs), "\(c) \(op) \(arg): content")
            #expect(try SnapFixture.list(path) == SnapFixture.list(theirs), "\(c) \(op) \(arg): list")
            for s in image.snapshots {
                #expect(
                    try SnapFixture.raw(path, snapshot: "snapshot.id=\(s.id)")
                        == SnapFixture.raw(theirs, snapshot: "snapshot.id=\(s.id)"))
            }
        }
    }

    /// `qemu-img snapshot -l` prints our entries exactly as it prints its own (IDs, names, VM size,
    /// dates, clock, icount).
    @Test func listingMatchesQemuMadeSnapshots() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let theirs = try SnapFixture.make(dir, options: "cluster_size=65536", ops: ["write -P 1 0 64k"])
        let ours = dir + "/ours.qcow2"
        try FileManager.default.copyItem(atPath: theirs, toPath: ours)
        for name in ["a", "b", "a"] { try run("qemu-img", ["snapshot", "-c", name, theirs]) }
        try run("qemu-img", ["snapshot", "-d", "b", theirs])
        try run("qemu-img", ["snapshot", "-c", "c", theirs])
        let reference = try QCow2Image(path: theirs).snapshots
        let image = try SnapFixture.open(ours)
        for (i, name) in ["a", "b", "a"].enumerated() {
            let date = reference.first { $0.id == "\(i + 1)" }.map {
                SnapshotDate(seconds: $0.dateSeconds, nanoseconds: $0.dateNanoseconds)
            }
            try image.createSnapshot(name: name, date: date ?? SnapshotDate(seconds: 1))
        }
        try image.deleteSnapshot("b")
        let c = try #require(reference.first { $0.name == "c" })
        let made = try image.createSnapshot(
            name: "c", date: SnapshotDate(seconds: c.dateSeconds, nanoseconds: c.dateNanoseconds))
        #expect(made.id == "4")
        #expect(image.snapshots.map(\.id) == reference.map(\.id))
        #expect(try SnapFixture.list(ours) == SnapFixture.list(theirs))
        #expect(try SnapFixture.check(ours).0 == 0)
    }

    /// QEMU's lookup rules: apply = ID first, then name; delete = name only.
    @Test func lookupRules() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: "cluster_size=65536", ops: ["write -P 1 0 64k"])
        let image = try SnapFixture.open(path)
        try image.createSnapshot(name: "2")  // ID 1, name "2"
        try SnapFixture.io(path, [])
        try image.write(SnapFixture.pattern(2, 512), range: 0..<512, at: 0)
        try image.createSnapshot(name: "x")  // ID 2
        #expect(image.findSnapshot(.idOrName("2"))?.name == "x")
        #expect(image.findSnapshot(.name("2"))?.id == "1")
        #expect(image.findSnapshot(.idAndName(id: "2", name: "2")) == nil)
        #expect(SnapshotSelector(convertArgument: "snapshot.id=1,snapshot.name=2") == .idAndName(id: "1", name: "2"))
        #expect(SnapshotSelector(convertArgument: "snapshot.name=x") == .name("x"))
        #expect(SnapshotSelector(convertArgument: "x") == .idOrName("x"))
        let missing = #expect(throws: SnapshotError.self) { try image.deleteSnapshot("nosuch") }
        #expect(missing == .notFound(operation: "delete", selector: "nosuch"))
        #expect(missing?.description == "Could not delete snapshot 'nosuch': snapshot not found")
        try image.deleteSnapshot("2")  // by name: removes ID 1
        #expect(image.snapshots.map(\.id) == ["2"])
        #expect(throws: SnapshotError.self) { try image.deleteSnapshot("2") }  // only the ID is 2
        let next = try image.createSnapshot(name: "y")
        #expect(next.id == "3")
        #expect(throws: SnapshotError.self) { try image.createSnapshot(name: String(repeating: "n", count: 256)) }
        #expect(try SnapFixture.check(path).0 == 0)
    }

    /// With 1-bit refcounts a snapshot cannot be taken (every shared cluster needs 2); QEMU fails
    /// with EINVAL and leaks its L1 copy, vmimg fails before writing anything.
    @Test func oneBitRefcountsFailCleanly() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(
            dir, options: "cluster_size=512,refcount_bits=1", size: "64M", ops: ["write -P 0xaa 0 4k"])
        let before = try #require(FileManager.default.contents(atPath: path))
        let image = try SnapFixture.open(path)
        let error = #expect(throws: SnapshotError.self) { try image.createSnapshot(name: "s1") }
        if case .refcountOverflow(_, let refcount, let limit) = error {
            #expect(refcount == 1 && limit == 1)
        } else {
            Issue.record("unexpected \(String(describing: error))")
        }
        #expect(FileManager.default.contents(atPath: path) == before)
        #expect(try SnapFixture.check(path).0 == 0)
        #expect(image.snapshots.isEmpty)
    }

    /// QEMU numbers a new snapshot 1 + the highest numeric ID in `unsigned long`: after an ID of
    /// 2^64 − 1 (or any longer number: strtoul saturates) that wraps to "0". QEMU 7.2 then stores a
    /// second "0" beside an existing one (seen with qemu-img snapshot -c);
    /// vmimg refuses with the ID named and writes nothing (found by FuzzHeader as a trap).
    @Test func wrappedSnapshotIDInUseIsRefused() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: "cluster_size=65536", ops: ["write -P 0xaa 0 64k"])
        _ = try run("qemu-img", ["snapshot", "-c", "a", path])
        _ = try run("qemu-img", ["snapshot", "-c", "b", path])
        // Renumber the two entries "0" and "18446744073709551615" in place (the table has room
        // in its cluster), the way a hand-edited or foreign image could carry them.
        let header = try QCow2Header(decoding: try #require(FileManager.default.contents(atPath: path)).map { $0 })
        let file = try #require(FileHandle(forUpdatingAtPath: path))
        try file.seek(toOffset: header.snapshotsOffset)
        let table = [UInt8](try file.read(upToCount: 65536) ?? Data())
        var (entries, _) = try SnapshotTable.decode(table, count: 2)
        entries[0].id = "0"
        entries[1].id = String(UInt64.max)
        try file.seek(toOffset: header.snapshotsOffset)
        try file.write(contentsOf: SnapshotTable.encode(entries))
        try file.close()
        #expect(SnapshotTable.nextID(entries) == "0")
        #expect(try SnapFixture.check(path).0 == 0)

        let before = try #require(FileManager.default.contents(atPath: path))
        let image = try SnapFixture.open(path)
        let error = #expect(throws: SnapshotError.self) { try image.createSnapshot(name: "c") }
        #expect(error == .idInUse(id: "0", name: "c"))
        #expect(FileManager.default.contents(atPath: path) == before)
        // Without the "0" entry the wrapped ID is free and used, as QEMU would.
        try image.deleteSnapshot(.id("0"))
        let created = try image.createSnapshot(name: "c")
        #expect(created.id == "0")
        try image.flush()
        #expect(try SnapFixture.check(path).0 == 0)
        #expect(try SnapFixture.list(path).contains("18446744073709551615"))
    }

    /// Applying a snapshot taken at another size resizes (both ways), as QEMU does.
    @Test func applyAcrossSizeChange() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(
            dir, options: "cluster_size=4096", size: "64M", ops: ["write -P 0x11 0 1M", "write -P 0x12 60M 1M"])
        let image = try SnapFixture.open(path)
        let v64 = try SnapFixture.raw(path)
        try image.createSnapshot(name: "big")
        try image.resize(to: 32 << 20)
        try image.write(SnapFixture.pattern(0x33, 8192), range: 0..<8192, at: 8192)
        try image.flush()
        let v32 = try SnapFixture.raw(path)
        try image.createSnapshot(name: "small")
        try image.resize(to: 3 << 30)
        try image.write(SnapFixture.pattern(0x44, 4096), range: 0..<4096, at: 2 << 30)
        try image.applySnapshot("small")
        #expect(image.virtualSize == 32 << 20)
        try SnapFixture.expectClean(path, "")
        #expect(try SnapFixture.raw(path) == v32)
        try image.applySnapshot("big")
        #expect(image.virtualSize == 64 << 20)
        try SnapFixture.expectClean(path, "")
        #expect(try SnapFixture.raw(path) == v64)
        let info = try run("qemu-img", ["info", path]).1
        #expect(info.contains("virtual size: 64 MiB (67108864 bytes)"))
    }

    /// v2 images: snapshots work, but one taken at another size cannot be applied.
    @Test func v2ImageWithSnapshotCannotChangeSize() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: "compat=0.10", size: "64M", ops: ["write -P 1 0 64k"])
        let image = try SnapFixture.open(path)
        try image.createSnapshot(name: "a")
        let error = #expect(throws: QCow2Error.self) { try image.resize(to: 128 << 20) }
        #expect(error == .unsupported("Can't resize a v2 image which has snapshots"))
        #expect(try SnapFixture.check(path).0 == 0)
    }

    /// Unknown extra data in an entry written by a newer QEMU survives our table rewrites.
    @Test func unknownExtraDataIsPreserved() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: "cluster_size=65536", ops: ["write -P 1 0 64k"])
        try run("qemu-img", ["snapshot", "-c", "s1", path])
        // Grow entry 0's extra data from 24 to 32 bytes in place (the table's cluster has room).
        let header = try QCow2Image(path: path).header
        let offset = header.snapshotsOffset
        let file = try BlockFile(path: path, writable: true)
        var entry = try file.read(count: 40 + 24 + 1 + 2, at: offset)
        entry.replaceSubrange(36..<40, with: [0, 0, 0, 32])
        entry.insert(contentsOf: [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4], at: 64)
        try file.write(entry, at: offset)
        let image = try SnapFixture.open(path)
        #expect(image.snapshots.first?.unknownExtraData == [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        try image.createSnapshot(name: "s2")
        try image.deleteSnapshot("s2")
        let reopened = try QCow2Image(path: path)
        #expect(reopened.snapshots.first?.unknownExtraData == [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])
        #expect(reopened.snapshots.first?.storedExtraDataSize == 32)
        #expect(try SnapFixture.check(path).0 == 0)
    }

    /// An image with an external data file refuses internal snapshots.
    @Test func externalDataFileRefused() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, _, err) = try run(
            "qemu-img", ["create", "-q", "-f", "qcow2", "-o", "data_file=\(dir)/d.raw", dir + "/img.qcow2", "1M"])
        try #require(code == 0, "\(err)")
        let device = try BlockFile(path: dir + "/img.qcow2", writable: true)
        let (h, e) = try QCow2Image.readHeader(from: device)
        let image = try QCow2Image(
            device: device, filename: "img.qcow2", header: h, extensions: e, writable: true,
            dataFile: BlockFile(path: dir + "/d.raw", writable: true))
        let error = #expect(throws: SnapshotError.self) { try image.createSnapshot(name: "s1") }
        #expect(error == .externalDataFile(operation: "create", name: "s1"))
        #expect(error?.description == "Could not create snapshot 's1': -95 (Operation not supported)")
    }
}

@Suite struct SnapshotCrashConsistency {
    enum Operation: String, CaseIterable, Sendable { case create, apply, delete }

    static func perform(_ op: Operation, on image: QCow2Image) throws {
        switch op {
        case .create: try image.createSnapshot(name: "s3", date: SnapshotDate(seconds: 1_800_000_000))
        case .apply: try image.applySnapshot("s1")
        case .delete: try image.deleteSnapshot("s2")
        }
    }

    static func open(_ device: any BlockDevice, _ path: String) throws -> QCow2Image {
        let (h, e) = try QCow2Image.readHeader(from: device)
        return try QCow2Image(device: device, filename: path, header: h, extensions: e, writable: true)
    }

    /// The operation is stopped at every one of its writes in turn (the process dies: completed
    /// writes stay; or power fails: only flushed writes stay). Each time `qemu-img check` finds
    /// nothing at all (not even leaks) and the image shows the old or the new state.
    @Test(arguments: Operation.allCases, [false, true])
    func stoppedAtEveryWriteLeavesOldOrNewState(_ op: Operation, powerLoss: Bool) throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try SnapFixture.make(
            dir, options: "cluster_size=512,refcount_bits=16", size: "2M",
            ops: ["write -P 0x11 0 200k", "write -P 0x12 1M 40k"])
        try run("qemu-img", ["snapshot", "-c", "s1", base])
        try SnapFixture.io(base, ["write -P 0x21 8k 30k", "write -P 0x22 1500k 2k"])
        try run("qemu-img", ["snapshot", "-c", "s2", base])
        try SnapFixture.io(base, ["write -P 0x31 0 4k", "discard 1M 8k"])
        let oldView = try SnapFixture.raw(base)
        let oldIDs = try QCow2Image(path: base).snapshots.map(\.id)

        let reference = dir + "/reference.qcow2"
        try FileManager.default.copyItem(atPath: base, toPath: reference)
        let counter = FaultInjectingDevice(wrapping: try BlockFile(path: reference, writable: true))
        try Self.perform(op, on: try Self.open(counter, reference))
        let total = counter.mutationCount
        let newView = try SnapFixture.raw(reference)
        let newIDs = try QCow2Image(path: reference).snapshots.map(\.id)
        try #require(total > 3 && newIDs != oldIDs || op == .apply)

        for n in 1...(total + 1) {
            let trial = dir + "/trial-\(n).qcow2"
            try FileManager.default.copyItem(atPath: base, toPath: trial)
            defer { try? FileManager.default.removeItem(atPath: trial) }
            do {
                let device = FaultInjectingDevice(wrapping: try BlockFile(path: trial, writable: true))
                device.inject(
                    powerLoss ? .powerLoss(beforeMutation: n, policy: .dropAll) : .failMutations(from: n, errno: 5))
                let image = try Self.open(device, trial)
                do { try Self.perform(op, on: image) } catch {}
            }
            let (code, out) = try SnapFixture.check(trial)
            #expect(code == 0, "\(op) powerLoss=\(powerLoss) stopped at write \(n)/\(total): \(out)")
            let view = try SnapFixture.raw(trial)
            let ids = try QCow2Image(path: trial).snapshots.map(\.id)
            let isOld = view == oldView && ids == oldIDs
            let isNew = view == newView && ids == newIDs
            #expect(isOld || isNew, "\(op) powerLoss=\(powerLoss) stopped at write \(n)/\(total): neither state")
            if n > total { #expect(isNew) }
        }
    }
}

@Suite struct SnapshotSpaceFigures {
    /// Hand-computed figures, in 64 KiB clusters. Each layer holds one L1 cluster and one L2 table
    /// (64 MiB guest): a snapshot keeps the active L1/L2, the active layer gets private copies.
    @Test func figuresFollowWritesAndSnapshots() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: "cluster_size=65536", size: "64M")
        let image = try SnapFixture.open(path)
        let cs = 65536
        let c = UInt64(cs)
        try image.write(SnapFixture.pattern(1, 10 * cs), range: 0..<(10 * cs), at: 0)  // N = 10
        try image.createSnapshot(name: "s1")
        var space = try image.snapshotSpace()
        #expect(space.snapshots.map(\.uniqueBytes) == [2 * c])  // its L1 and L2; data is shared
        #expect(space.snapshots.map(\.referencedBytes) == [12 * c])
        #expect(space.snapshots.map(\.sharedWithActiveBytes) == [10 * c])
        try image.write(SnapFixture.pattern(2, 4 * cs), range: 0..<(4 * cs), at: 0)  // M = 4 overwritten
        space = try image.snapshotSpace()
        #expect(space.snapshots[0].uniqueBytes == 6 * c)  // 4 old clusters + L1 + L2
        #expect(space.snapshots[0].sharedWithActiveBytes == 6 * c)
        #expect(space.snapshots[0].writtenBytes == 12 * c)
        #expect(space.activeOnlyBytes == 6 * c)  // 4 new clusters + L1 + L2
        try image.createSnapshot(name: "s2")
        space = try image.snapshotSpace()
        #expect(space.snapshots.map(\.uniqueBytes) == [6 * c, 2 * c])
        #expect(space.snapshots.map(\.writtenBytes) == [12 * c, 6 * c])  // s2: 4 new + L1 + L2
        #expect(space.snapshots.map(\.sharedWithActiveBytes) == [6 * c, 10 * c])
        #expect(space.allSnapshotsBytes == 8 * c)
        #expect(space.activeOnlyBytes == 2 * c)
        try image.write(SnapFixture.pattern(3, 3 * cs), range: 0..<(3 * cs), at: 20 * c)  // 3 new clusters
        space = try image.snapshotSpace()
        #expect(space.activeOnlyBytes == 5 * c)
        #expect(space.activeWrittenBytes == 5 * c)
        #expect(space.activeReferencedBytes == 15 * c)
        try image.deleteSnapshot("s1")
        space = try image.snapshotSpace()
        #expect(space.snapshots.map(\.uniqueBytes) == [2 * c])
        #expect(space.allSnapshotsBytes == 2 * c)
        #expect(try SnapFixture.check(path).0 == 0)
        // What deleting frees is what `check` then reports as allocated.
        let before = try run("qemu-img", ["check", path]).1
        try image.deleteSnapshot("s2")
        let after = try run("qemu-img", ["check", path]).1
        #expect(before != after)
    }
}

@Suite struct SnapshotImageKit {
    /// `convert -l snapshot.name=S` through `SnapshotView`, to raw and through qemu's own view.
    @Test func snapshotViewExportsLikeQemuConvert() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try SnapFixture.make(dir, options: "cluster_size=4096", ops: ["write -P 0x61 0 100k"])
        try run("qemu-img", ["snapshot", "-c", "s1", path])
        try SnapFixture.io(path, ["write -P 0x62 0 8k"])
        let image = try QCow2Image(path: path)
        let view = try SnapshotView(image: image, selector: SnapshotSelector(convertArgument: "snapshot.name=s1"))
        let out = try BlockFile(path: dir + "/s1.raw", writable: true, create: true)
        try view.exportRaw(to: out)
        #expect(FileManager.default.contents(atPath: dir + "/s1.raw") == (try SnapFixture.raw(path, snapshot: "s1")))
        #expect(throws: SnapshotError.self) { try SnapshotView(image: image, selector: .id("9")) }
    }

    /// `commit` into a qcow2 and a raw base: the base then reads as the overlay did; the overlay
    /// is emptied unless `-d`.
    @Test(arguments: ["qcow2", "raw"], [false, true])
    func commitWritesOverlayIntoBase(_ baseFormat: String, keep: Bool) throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run("qemu-img", ["create", "-q", "-f", baseFormat, dir + "/base.img", "4M"])
        try run("qemu-io", ["-f", baseFormat, "-c", "write -P 0x10 0 4M", dir + "/base.img"])
        try run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.img", "-F", baseFormat, dir + "/top.qcow2"])
        try SnapFixture.io(dir + "/top.qcow2", ["write -P 0x20 64k 100k", "write -z 1M 64k", "write -P 0x21 4000k 5k"])
        let expected = try SnapFixture.raw(dir + "/top.qcow2")
        try ImageCommit.commit(dir + "/top.qcow2", options: CommitOptions(keepOverlay: keep))
        let (code, _, _) = try run(
            "qemu-img", ["compare", "-f", baseFormat, "-F", "qcow2", dir + "/base.img", dir + "/top.qcow2"])
        #expect(code == 0)
        let baseView = try run(
            "qemu-img", ["convert", "-f", baseFormat, "-O", "raw", dir + "/base.img", dir + "/b.raw"])
        #expect(baseView.0 == 0)
        #expect(FileManager.default.contents(atPath: dir + "/b.raw") == expected)
        if baseFormat == "qcow2" { try SnapFixture.expectClean(dir + "/base.img", "base") }
        try SnapFixture.expectClean(dir + "/top.qcow2", "top")
        let map = try run("qemu-img", ["map", "--output=json", dir + "/top.qcow2"]).1
        #expect(map.contains("\"depth\": 0") == keep, "\(map)")
    }

    /// Safe rebase onto another backing keeps the guest view; unsafe only renames.
    @Test func rebaseSafeAndUnsafe() throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/old.qcow2", "2M"])
        try SnapFixture.io(dir + "/old.qcow2", ["write -P 0x01 0 1M"])
        try run("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/new.qcow2", "2M"])
        try SnapFixture.io(dir + "/new.qcow2", ["write -P 0x01 0 512k", "write -P 0x02 512k 1M"])
        try run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "old.qcow2", "-F", "qcow2", dir + "/top.qcow2"])
        try SnapFixture.io(dir + "/top.qcow2", ["write -P 0x03 0 4k"])
        let before = try SnapFixture.raw(dir + "/top.qcow2")
        try ImageRebase.rebase(dir + "/top.qcow2", backingFile: "new.qcow2", backingFormat: "qcow2", unsafe: false)
        let info = try run("qemu-img", ["info", dir + "/top.qcow2"]).1
        #expect(info.contains("backing file: new.qcow2"))
        #expect(info.contains("backing file format: qcow2"))
        #expect(try SnapFixture.raw(dir + "/top.qcow2") == before)
        try SnapFixture.expectClean(dir + "/top.qcow2", "after safe rebase")
        try ImageRebase.rebase(dir + "/top.qcow2", backingFile: "old.qcow2", backingFormat: "qcow2", unsafe: true)
        #expect(try run("qemu-img", ["info", dir + "/top.qcow2"]).1.contains("backing file: old.qcow2"))
        try ImageRebase.rebase(dir + "/top.qcow2", backingFile: "", backingFormat: nil, unsafe: true)
        #expect(!(try run("qemu-img", ["info", dir + "/top.qcow2"]).1.contains("backing file")))
        try SnapFixture.expectClean(dir + "/top.qcow2", "after unsafe rebase")
    }
}

/// Timings for Samples/bench-snapshots.sh (VMIMG_LONG=1): an image with ≥ 1M allocated 512-byte
/// clusters; qemu-img snapshot -c/-a/-d against ours on copies of the same file.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["VMIMG_LONG"] == "1"))
struct SnapshotBenchmark {
    @Test func snapshotOperationsAgainstQemu() throws {
        let dir = try ProcessInfo.processInfo.environment["VMIMG_BENCH_DIR"] ?? scratchDir()
        let base = dir + "/bench.qcow2"
        if !FileManager.default.fileExists(atPath: base) {
            try run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=512", base, "600M"])
            try SnapFixture.io(base, ["write -P 0x5a 0 520M"])
            try run("qemu-img", ["snapshot", "-c", "old", base])
            try SnapFixture.io(base, ["write -P 0x5b 0 100M"])
        }
        func time(_ body: () throws -> Void) rethrows -> Double {
            let start = ContinuousClock.now
            try body()
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let q = dir + "/q.qcow2"
        let v = dir + "/v.qcow2"
        for p in [q, v] {
            try? FileManager.default.removeItem(atPath: p)
            try FileManager.default.copyItem(atPath: base, toPath: p)
        }
        var lines: [String] = []
        for (op, arg) in [("-c", "s1"), ("-a", "old"), ("-d", "s1"), ("-d", "old")] {
            let tq = try time { _ = try run("qemu-img", ["snapshot", op, arg, q]) }
            let tv = try time {
                let image = try QCow2Image(path: v, writable: true)
                switch op {
                case "-c": try image.createSnapshot(name: arg)
                case "-a": try image.applySnapshot(arg)
                default: try image.deleteSnapshot(arg)
                }
            }
            lines.append(
                String(format: "snapshot %@ %@: qemu-img %.3fs vmimg %.3fs ratio %.1fx", op, arg, tq, tv, tq / tv))
            try SnapFixture.expectClean(v, "bench \(op) \(arg)")
        }
        print(lines.joined(separator: "\n"))
        #expect(try SnapFixture.raw(q) == SnapFixture.raw(v))
    }
}
