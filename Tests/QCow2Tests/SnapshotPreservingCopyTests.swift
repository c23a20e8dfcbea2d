import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format
import TestSupport
import Testing

/// Images with ≥ 5 snapshots and different data between them, made by qemu-img/qemu-io or by vmimg.
enum CopyFixture {
    /// qemu-io steps between snapshots: plain, compressed, zero and discarded clusters.
    static func qemuSteps(_ cs: Int) -> [[String]] {
        let c = cs
        return [
            ["write -P 0x11 0 \(4 * c)", "write -c -P 0x21 \(8 * c) \(c)", "write -P 0x31 \(20 * c) 4k"],
            ["write -P 0x12 \(c) \(c)", "write -z \(2 * c) \(c)", "write -c -P 0x22 \(9 * c) \(c)"],
            ["discard 0 \(c)", "write -P 0x13 \(30 * c) \(2 * c)", "write -z \(8 * c) \(c)"],
            ["write -P 0x14 \(3 * c) 512", "write -c -P 0x24 \(40 * c) \(c)", "write -P 0x34 \(50 * c) \(3 * c)"],
            ["write -P 0x15 \(51 * c) \(c)", "discard \(30 * c) \(c)", "write -z \(3 * c) \(c)"],
            ["write -P 0x16 \(60 * c) \(c)", "write -P 0x26 \(2 * c) 1k"],
        ]
    }

    /// qemu-img create + qemu-io writes + qemu-img snapshot -c between steps.
    static func qemuMade(_ dir: String, options: String, backing: String? = nil) throws -> String {
        let path = dir + "/src.qcow2"
        var args = ["create", "-q", "-f", "qcow2", "-o", options]
        if let backing { args += ["-b", backing, "-F", "qcow2"] }
        let cs = clusterSize(options)
        let (code, _, err) = try run("qemu-img", args + [path, "\(64 * cs + 4096)"])
        try #require(code == 0, "qemu-img create: \(err)")
        for (k, step) in qemuSteps(cs).enumerated() {
            try SnapFixture.io(path, step)
            if k < 5 {
                let (c, _, e) = try run("qemu-img", ["snapshot", "-c", "s\(k + 1)", path])
                try #require(c == 0, "snapshot: \(e)")
            }
        }
        return path
    }

    /// vmimg's engine writes the same kind of history, with its own snapshot code.
    static func vmimgMade(_ dir: String, clusterBits: UInt32) throws -> String {
        let path = dir + "/src.qcow2"
        let device = try BlockFile(path: path, writable: true, create: true, truncate: true)
        var options = QCow2CreateOptions(size: UInt64(64 << clusterBits) + 4096)
        options.clusterBits = clusterBits
        try QCow2Image.create(on: device, filename: path, options: options)
        let image = try QCow2Image(path: path, writable: true)
        let cs = 1 << Int(clusterBits)
        let compressor = try image.makeCompressor()
        for k in 0..<6 {
            let fill = [UInt8](repeating: UInt8(0x40 + k), count: cs)
            try image.write(fill, range: 0..<cs, at: UInt64((k % 3) * cs))
            try image.write(fill, range: 0..<(cs / 2), at: UInt64((10 + k) * cs))
            if let stream = try compressor.compress(fill, range: 0..<cs) {
                try image.writeCompressedCluster(stream, at: UInt64((20 + k) * cs))
            }
            try image.writeZeroes(at: UInt64(((k + 1) % 3) * cs), count: UInt64(cs))
            if k > 0 { try image.discard(at: UInt64((10 + k - 1) * cs), count: UInt64(cs)) }
            if k < 5 { _ = try image.createSnapshot(name: "v\(k + 1)", vmClockNanoseconds: UInt64(k) * 1_000_000) }
        }
        try image.close()
        return path
    }

    static func clusterSize(_ options: String) -> Int {
        for part in options.split(separator: ",") where part.hasPrefix("cluster_size=") {
            let v = part.dropFirst("cluster_size=".count)
            if v.hasSuffix("M") { return Int(v.dropLast())! << 20 }
            if v.hasSuffix("k") { return Int(v.dropLast())! << 10 }
            return Int(v)!
        }
        return 65536
    }

    /// Writes a snapshot-preserving copy of `source` to `output`.
    static func copy(_ source: String, to output: String, options: SnapshotCopyOptions? = nil) throws
        -> SnapshotCopyReport
    {
        let disk = try ImageOpener.open(source)
        let image = try #require(disk as? QCow2Image)
        return try Compactor.convertKeepingSnapshots(
            image, to: output, options: options ?? SnapshotCopyOptions(matching: image))
    }

    /// Every snapshot (by ID, via qemu-img convert -l) and the active layer read the same in both.
    static func expectSameContent(_ a: String, _ b: String, _ context: String) throws {
        let ids = try QCow2Image(path: a).snapshots.map(\.id)
        #expect(try QCow2Image(path: b).snapshots.map(\.id) == ids, "\(context)")
        for id in ids {
            #expect(
                try SnapFixture.raw(a, snapshot: "snapshot.id=\(id)")
                    == SnapFixture.raw(b, snapshot: "snapshot.id=\(id)"),
                "\(context): snapshot \(id)")
        }
        #expect(try SnapFixture.raw(a) == SnapFixture.raw(b), "\(context): active layer")
    }

    /// Snapshot entries equal but for where their L1 tables are.
    static func expectSameEntries(_ a: String, _ b: String, _ context: String) throws {
        func strip(_ e: SnapshotEntry) -> SnapshotEntry {
            var e = e
            e.l1TableOffset = 0
            e.l1Size = 0
            e.storedExtraDataSize = 0
            return e
        }
        #expect(try QCow2Image(path: a).snapshots.map(strip) == QCow2Image(path: b).snapshots.map(strip), "\(context)")
    }

    /// Walks every layer's L1/L2 in the output: each host data cluster (or compressed stream start)
    /// is reached from one guest offset only, over all layers — a cluster several layers share is
    /// stored once, and nothing is stored twice for one guest cluster.
    static func expectNoDuplicateData(_ path: String, _ context: String) throws {
        let image = try QCow2Image(path: path)
        let g = image.geometry
        let file = try BlockFile(path: path, writable: false)
        var owner: [UInt64: UInt64] = [:]  // host → guest offset
        var layerHosts: [[UInt64: UInt64]] = []  // per layer guest → host
        let l1s =
            try image.snapshots.map { try image.snapshotL1($0) } + [
                file.readTable(at: image.header.l1TableOffset, count: Int(image.header.l1Size))
            ]
        for l1 in l1s {
            var map: [UInt64: UInt64] = [:]
            for (i, l1e) in l1.enumerated() where L1Entry(raw: l1e).l2Offset != 0 {
                let l2 = try file.readTable(at: L1Entry(raw: l1e).l2Offset, count: g.l2Entries)
                for (j, raw) in l2.enumerated() {
                    let e = L2Entry(raw: raw)
                    let host: UInt64 =
                        e.isCompressed
                        ? CompressedDescriptor(entry: raw, clusterBits: UInt32(g.clusterBits)).hostOffset
                        : e.hostOffset
                    guard host != 0 else { continue }
                    let guest = (UInt64(i) << UInt64(g.clusterBits + g.l2Bits)) | (UInt64(j) << UInt64(g.clusterBits))
                    map[guest] = host
                    if let previous = owner[host] {
                        #expect(previous == guest, "\(context): host 0x\(hex(host)) used at two guest offsets")
                    }
                    owner[host] = guest
                }
            }
            layerHosts.append(map)
        }
        // Sharing: if two layers have the same guest cluster with identical content from one source
        // cluster, they point at one host; checked through the source comparison in the callers.
        #expect(!owner.isEmpty, "\(context): no data at all")
    }

    static func expectClean(_ path: String, _ context: String) throws {
        let (code, out, err) = try run("qemu-img", ["check", path])
        #expect(code == 0, "\(context): \(out) \(err)")
        #expect(out.contains("No errors were found"), "\(context): \(out)")
    }

    /// Host data clusters referenced by any layer, counted once each.
    static func distinctDataClusters(_ path: String) throws -> Int {
        let image = try QCow2Image(path: path)
        let g = image.geometry
        let file = try BlockFile(path: path, writable: false)
        var hosts: Set<UInt64> = []
        let l1s =
            try image.snapshots.map { try image.snapshotL1($0) } + [
                file.readTable(at: image.header.l1TableOffset, count: Int(image.header.l1Size))
            ]
        for l1 in l1s {
            for l1e in l1 where L1Entry(raw: l1e).l2Offset != 0 {
                for raw in try file.readTable(at: L1Entry(raw: l1e).l2Offset, count: g.l2Entries) {
                    let e = L2Entry(raw: raw)
                    if e.isCompressed {
                        hosts.insert(CompressedDescriptor(entry: raw, clusterBits: UInt32(g.clusterBits)).hostOffset)
                    } else if e.hostOffset != 0 {
                        hosts.insert(e.hostOffset)
                    }
                }
            }
        }
        return hosts.count
    }
}

@Suite struct SnapshotPreservingCopyTests {
    static let qemuCases = [
        "cluster_size=65536", "cluster_size=512,refcount_bits=16", "cluster_size=4096,refcount_bits=64",
        "compat=0.10", "cluster_size=2M,refcount_bits=8", "extended_l2=on,cluster_size=16384",
        "cluster_size=65536,compression_type=zstd",
    ]

    /// qemu-made images: the copy keeps every snapshot byte for byte, checks clean, and stores no
    /// more data clusters than the source (each shared cluster once).
    @Test(arguments: qemuCases)
    func qemuImagesKeepSnapshots(_ options: String) throws {
        let dir = try scratchDir()
        let src = try CopyFixture.qemuMade(dir, options: options)
        let out = dir + "/out.qcow2"
        let report = try CopyFixture.copy(src, to: out)
        try CopyFixture.expectClean(out, options)
        try CopyFixture.expectSameContent(src, out, options)
        try CopyFixture.expectSameEntries(src, out, options)
        try CopyFixture.expectNoDuplicateData(out, options)
        if !options.contains("extended_l2") {
            #expect(try CopyFixture.distinctDataClusters(out) <= CopyFixture.distinctDataClusters(src), "\(options)")
        }
        #expect(report.snapshots == 5)
        // A second pass over the copy changes nothing in content and no more is stored.
        let again = dir + "/again.qcow2"
        _ = try CopyFixture.copy(out, to: again)
        try CopyFixture.expectSameContent(out, again, options + " (second pass)")
        #expect(try CopyFixture.distinctDataClusters(again) == CopyFixture.distinctDataClusters(out), "\(options)")
    }

    @Test(arguments: [UInt32(9), 12, 16])
    func vmimgImagesKeepSnapshots(_ clusterBits: UInt32) throws {
        let dir = try scratchDir()
        let src = try CopyFixture.vmimgMade(dir, clusterBits: clusterBits)
        let out = dir + "/out.qcow2"
        _ = try CopyFixture.copy(src, to: out)
        try CopyFixture.expectClean(out, "bits \(clusterBits)")
        try CopyFixture.expectSameContent(src, out, "bits \(clusterBits)")
        try CopyFixture.expectSameEntries(src, out, "bits \(clusterBits)")
        try CopyFixture.expectNoDuplicateData(out, "bits \(clusterBits)")
        #expect(try CopyFixture.distinctDataClusters(out) <= CopyFixture.distinctDataClusters(src))
    }

    /// A backing file: kept (compact) or flattened (convert without -B); both read the same.
    @Test func backingFileKeptOrFlattened() throws {
        let dir = try scratchDir()
        let base = dir + "/base.qcow2"
        _ = try run("qemu-img", ["create", "-q", "-f", "qcow2", base, "\(64 * 65536 + 4096)"])
        try SnapFixture.io(base, ["write -P 0xb1 0 1M", "write -P 0xb2 3M 512k"])
        let src = try CopyFixture.qemuMade(dir, options: "cluster_size=65536", backing: "base.qcow2")
        let kept = dir + "/kept.qcow2"
        _ = try CopyFixture.copy(src, to: kept)
        #expect(try QCow2Image(path: kept).extensions.backingFile == "base.qcow2")
        try CopyFixture.expectClean(kept, "kept")
        try CopyFixture.expectSameContent(src, kept, "kept")
        let flat = dir + "/flat.qcow2"
        let image = try #require(try ImageOpener.open(src) as? QCow2Image)
        _ = try Compactor.convertKeepingSnapshots(
            image, to: flat, options: SnapshotCopyOptions(create: QCow2CreateOptions(size: 0), compress: false))
        #expect(try QCow2Image(path: flat).extensions.backingFile == nil)
        try CopyFixture.expectClean(flat, "flat")
        try CopyFixture.expectSameContent(src, flat, "flat")
        try CopyFixture.expectNoDuplicateData(flat, "flat")
    }

    /// `-o cluster_size=…,refcount_bits=…,compat=…` and `-c` apply to the copy.
    @Test(arguments: [
        ("cluster_size=4096", false), ("cluster_size=2M,refcount_bits=8", false), ("compat=0.10", false),
        ("cluster_size=65536,refcount_bits=8", true), ("cluster_size=16384,compression_type=zstd", true),
    ])
    func creationOptionsApply(_ options: String, _ compress: Bool) throws {
        let dir = try scratchDir()
        let src = try CopyFixture.qemuMade(dir, options: "cluster_size=65536")
        let out = dir + "/out.qcow2"
        let vmimg = try Tool.vmimgBinary()
        let args =
            ["convert", "--keep-snapshots", "-O", "qcow2", "-o", options] + (compress ? ["-c"] : []) + [src, out]
        let (code, _, err) = try run(vmimg, args)
        try #require(code == 0, "vmimg \(args): \(err)")
        let made = try QCow2Image(path: out)
        #expect(made.geometry.clusterSize == CopyFixture.clusterSize(options), "\(options)")
        #expect((made.header.version == 2) == options.contains("compat=0.10"))
        try CopyFixture.expectClean(out, options)
        try CopyFixture.expectSameContent(src, out, options)
        try CopyFixture.expectNoDuplicateData(out, options)
    }
}

@Suite struct CompactTests {
    /// Random 4 KiB writes and discards between snapshots fragment the file; compact shrinks it,
    /// keeps every snapshot, leaves the active layer unfragmented, and checks clean.
    @Test func fragmentedImageShrinks() throws {
        let dir = try scratchDir()
        let path = dir + "/frag.qcow2"
        _ = try run("qemu-img", ["create", "-q", "-f", "qcow2", path, "64M"])
        var rng = SplitMix64.fromEnvironment()
        let seed = rng.seed
        func next() -> UInt64 { rng.next() }
        // Random 4 KiB writes and cluster-aligned discards, a snapshot after each of 5 rounds; the
        // last round's clusters are discarded again, leaving free holes inside the file.
        for round in 0..<6 {
            var ops: [String] = []
            for _ in 0..<150 {
                let at = (next() % 16383) * 4096
                ops.append(
                    next() % 4 == 0 ? "discard \(at / 65536 * 65536) 64k" : "write -P \(next() % 255 + 1) \(at) 4k")
            }
            if round == 5 {
                // Free holes, then active data landing in them: the active layer is fragmented.
                ops.append("discard 0 64M")
                ops += (0..<40).map { _ in "write -P \(next() % 255 + 1) \((next() % 1023) * 65536) 64k" }
            }
            try SnapFixture.io(path, ops)
            if round < 5 { _ = try run("qemu-img", ["snapshot", "-c", "f\(round)", path]) }
        }
        let reference = dir + "/reference.qcow2"
        try FileManager.default.copyItem(atPath: path, toPath: reference)
        let result = try Compactor.compact(path: path)
        #expect(result.after.fileLength < result.before.fileLength, "seed=\(seed)")
        #expect(result.after.snapshots.count == 5, "seed=\(seed)")
        #expect(result.before.fragmentedClusters > 0, "seed=\(seed)")
        // The active layer is laid out first, in guest order: nothing left fragmented, as qemu-img sees it.
        #expect(result.after.fragmentedClusters == 0, "seed=\(seed)")
        let (_, qemuCheck, _) = try run("qemu-img", ["check", "--output=json", path])
        // (qemu-img leaves the key out when the count is 0.)
        #expect(!qemuCheck.contains("fragmented-clusters"), "seed=\(seed): \(qemuCheck)")
        try CopyFixture.expectClean(path, "seed=\(seed)")
        try CopyFixture.expectSameContent(reference, path, "seed=\(seed)")
        try CopyFixture.expectSameEntries(reference, path, "seed=\(seed)")
        #expect(!FileManager.default.fileExists(atPath: path + Compactor.temporarySuffix))
    }

    /// A QEMU (or any) read-write lock on the image refuses compact and leaves it alone.
    @Test func refusedWhileLocked() throws {
        let dir = try scratchDir()
        let src = try CopyFixture.qemuMade(dir, options: "cluster_size=65536")
        let holder = try BlockFile(path: src, writable: true)
        try holder.lock(.readWrite, format: .qcow2)
        let before = try Data(contentsOf: URL(fileURLWithPath: src))
        #expect(throws: (any Error).self) { try Compactor.compact(path: src) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: src)) == before)
        withExtendedLifetime(holder) {}
    }

    /// `vmimg compact` killed with SIGKILL at random moments: the image is always the old or the
    /// new file, whole (same content, clean check).
    @Test(.timeLimit(.minutes(10))) func survivesSigkill() throws {
        let dir = try scratchDir()
        let path = dir + "/kill.qcow2"
        _ = try run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "8M"])
        for k in 0..<5 {
            try SnapFixture.io(
                path, (0..<8).map { "write -P \(k * 16 + $0 + 1) \((($0 * 7 + k * 3) % 16) << 19) 256k" })
            _ = try run("qemu-img", ["snapshot", "-c", "k\(k)", path])
        }
        let reference = dir + "/reference.qcow2"
        try FileManager.default.copyItem(atPath: path, toPath: reference)
        let referenceRaw = try SnapFixture.raw(reference)
        let snapshotRaw = try SnapFixture.raw(reference, snapshot: "snapshot.id=3")
        let vmimg = try Tool.vmimgBinary()
        var rng = SplitMix64.fromEnvironment()
        let seed = rng.seed
        // Kill times spread over one whole run (measured on a copy) and a little past it.
        let probe = dir + "/probe.qcow2"
        try FileManager.default.copyItem(atPath: path, toPath: probe)
        let started = Date()
        _ = try run(vmimg, ["compact", "-q", probe])
        let window = UInt32(min(20, Date().timeIntervalSince(started) * 1.3) * 1_000_000)
        var replaced = 0
        for round in 0..<32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: vmimg)
            p.arguments = ["compact", "-q", path]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            try p.run()
            usleep(UInt32.random(in: 0...window, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let after = try Data(contentsOf: URL(fileURLWithPath: path))
            if after != before { replaced += 1 }
            let context = "round \(round) seed=\(seed)"
            try CopyFixture.expectClean(path, context)
            #expect(try SnapFixture.raw(path) == referenceRaw, "\(context)")
            #expect(try SnapFixture.raw(path, snapshot: "snapshot.id=3") == snapshotRaw, "\(context)")
        }
        print("compact SIGKILL: \(replaced) of 32 rounds replaced the file, seed=\(seed)")
    }
}
