import BlockIO
import Foundation
import QCow2
import QCow2Format
import Testing

// MARK: - qemu-img as the oracle

/// What `qemu-img check --output=json [-r …]` reported.
struct QemuCheck {
    var exitCode: Int32
    var json: [String: Any]
    var messages: [String]

    func number(_ key: String) -> Int { (json[key] as? NSNumber)?.intValue ?? 0 }
}

func qemuCheck(_ path: String, repair: String? = nil) throws -> QemuCheck {
    var args = ["check", "--output=json"]
    if let repair { args += ["-r", repair] }
    let (code, out, err) = try run("qemu-img", args + [path])
    let json = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
    let lines = err.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        .filter { !$0.isEmpty && !$0.hasPrefix("qemu-img:") }
    return QemuCheck(exitCode: code, json: json, messages: lines)
}

func vmimgCheck(_ path: String, repair: QCow2RepairMode = []) throws -> QCow2CheckResult {
    let image = try QCow2Image(path: path, writable: !repair.isEmpty)
    return try image.check(repair: repair)
}

/// Every figure, the exit code and the stderr lines must match qemu-img's.
func expectSame(_ ours: QCow2CheckResult, _ qemu: QemuCheck, _ label: String) {
    #expect(ours.exitCode == qemu.exitCode, "exit code \(label)")
    #expect(ours.messages == qemu.messages, "stderr lines \(label)")
    guard ours.failure == nil else {
        #expect(qemu.json.isEmpty, "qemu-img produced a report but we failed \(label)")
        return
    }
    let pairs: [(String, Int)] = [
        ("image-end-offset", Int(ours.imageEndOffset)), ("total-clusters", Int(ours.totalClusters)),
        ("check-errors", ours.checkErrors), ("allocated-clusters", Int(ours.allocatedClusters)),
        ("fragmented-clusters", Int(ours.fragmentedClusters)),
        ("compressed-clusters", Int(ours.compressedClusters)),
        ("corruptions", ours.corruptions), ("leaks", ours.leaks), ("leaks-fixed", ours.leaksFixed),
        ("corruptions-fixed", ours.corruptionsFixed),
    ]
    for (key, value) in pairs {
        #expect(value == qemu.number(key), "\(key) \(label)")
    }
}

// MARK: - Byte poking at spec offsets

func readBytes(_ path: String, _ offset: UInt64, _ count: Int) throws -> [UInt8] {
    let f = try BlockFile(path: path, writable: false)
    return try f.read(count: count, at: offset)
}

func readBE64(_ path: String, _ offset: UInt64) throws -> UInt64 {
    try readBytes(path, offset, 8).reduce(0) { $0 << 8 | UInt64($1) }
}

func poke(_ path: String, _ offset: UInt64, _ bytes: [UInt8]) throws {
    let f = try BlockFile(path: path, writable: true)
    try f.write(bytes, at: offset)
}

func pokeBE64(_ path: String, _ offset: UInt64, _ value: UInt64) throws {
    try poke(path, offset, (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) })
}

/// Layout facts of an image needed to damage it.
struct Layout {
    var header: QCow2Header
    var geometry: QCow2Geometry
    var fileLength: UInt64
    var l1Offset: UInt64 { header.l1TableOffset }
    var cs: UInt64 { UInt64(geometry.clusterSize) }

    init(_ path: String) throws {
        let f = try BlockFile(path: path, writable: false)
        header = try QCow2Image.readHeader(from: f).0
        geometry = QCow2Geometry(header: header)
        fileLength = try f.length()
    }

    func l2Offset(_ path: String, l1Index: Int = 0) throws -> UInt64 {
        try readBE64(path, l1Offset + UInt64(l1Index) * 8) & L1Entry.offsetMask
    }

    /// Byte offset of L2 entry `index` (word 0) in the first L2 table.
    func l2EntryOffset(_ path: String, index: Int = 0) throws -> UInt64 {
        try l2Offset(path) + UInt64(index * geometry.l2EntrySize)
    }

    func refcountBlock(_ path: String, cluster: UInt64) throws -> (offset: UInt64, index: Int) {
        let (tableIndex, blockIndex) = geometry.refcountLocation(clusterIndex: cluster)
        let block =
            try readBE64(path, header.refcountTableOffset + tableIndex * 8) & 0xffff_ffff_ffff_fe00
        return (block, blockIndex)
    }

    func refcount(_ path: String, cluster: UInt64) throws -> UInt64 {
        let (block, index) = try refcountBlock(path, cluster: cluster)
        let bytes = try readBytes(path, block, geometry.clusterSize)
        return RefcountBlockCodec.get(bytes, index: index, order: geometry.refcountOrder)
    }

    func setRefcount(_ path: String, cluster: UInt64, _ value: UInt64) throws {
        let (block, index) = try refcountBlock(path, cluster: cluster)
        var bytes = try readBytes(path, block, geometry.clusterSize)
        RefcountBlockCodec.set(&bytes, index: index, order: geometry.refcountOrder, value: value)
        try poke(path, block, bytes)
    }
}

// MARK: - Fixtures

struct CheckImage: CustomStringConvertible, Sendable {
    var options: String
    var snapshot = false
    var compressed = false
    var backing = false
    var description: String { "\(options) snap=\(snapshot) comp=\(compressed) back=\(backing)" }
}

/// Writes a qcow2 image with real qemu tools into `dir`/img.qcow2.
func makeCheckImage(_ c: CheckImage, in dir: String) throws -> String {
    var create = ["create", "-q", "-f", "qcow2", "-o", c.options]
    if c.backing {
        try run("qemu-img", ["create", "-q", "-f", "qcow2", "base.qcow2", "8M"], cwd: dir)
        try run("qemu-io", ["-c", "write -P 0x5a 0 4M", "base.qcow2"], cwd: dir)
        create += ["-b", "base.qcow2", "-F", "qcow2"]
    }
    let target = c.compressed ? "src.qcow2" : "img.qcow2"
    let (code, _, err) = try run("qemu-img", create + [target, "8M"], cwd: dir)
    try #require(code == 0, "qemu-img create \(c): \(err)")
    let (wcode, _, werr) = try run(
        "qemu-io",
        [
            "-c", "write -P 0xaa 0 128k", "-c", "write -P 0x55 1M 64k", "-c", "write -z 2M 64k",
            "-c", "write -P 0x11 3000k 4k", "-c", "discard 1M 4k", target,
        ], cwd: dir)
    try #require(wcode == 0, "qemu-io \(c): \(werr)")
    if c.compressed {
        let (ccode, _, cerr) = try run(
            "qemu-img", ["convert", "-c", "-O", "qcow2", "-o", c.options, "src.qcow2", "img.qcow2"],
            cwd: dir)
        try #require(ccode == 0, "qemu-img convert -c: \(cerr)")
        try run("qemu-io", ["-c", "write -P 0x33 64k 4k", "img.qcow2"], cwd: dir)
    }
    if c.snapshot {
        let (scode, _, serr) = try run("qemu-img", ["snapshot", "-c", "s1", "img.qcow2"], cwd: dir)
        try #require(scode == 0, "qemu-img snapshot: \(serr)")
        try run(
            "qemu-io", ["-c", "write -P 0x66 0 64k", "-c", "write -P 0x77 4M 64k", "img.qcow2"], cwd: dir)
    }
    return dir + "/img.qcow2"
}

func copyFile(_ from: String, _ to: String) throws {
    if FileManager.default.fileExists(atPath: to) { try FileManager.default.removeItem(atPath: to) }
    try FileManager.default.copyItem(atPath: from, toPath: to)
}

let checkImages: [CheckImage] = [
    CheckImage(options: "cluster_size=65536"),
    CheckImage(options: "compat=0.10"),
    CheckImage(options: "cluster_size=512,refcount_bits=1"),
    CheckImage(options: "cluster_size=4096,refcount_bits=64"),
    CheckImage(options: "cluster_size=2M,refcount_bits=8"),
    CheckImage(options: "extended_l2=on,cluster_size=65536"),
    CheckImage(options: "extended_l2=on,cluster_size=16384,refcount_bits=2"),
    CheckImage(options: "lazy_refcounts=on"),
    CheckImage(options: "preallocation=metadata,cluster_size=8192"),
    CheckImage(options: "cluster_size=65536", snapshot: true),
    CheckImage(options: "cluster_size=4096,refcount_bits=4", snapshot: true),
    CheckImage(options: "compat=0.10,cluster_size=1024", snapshot: true),
    CheckImage(options: "cluster_size=65536", compressed: true),
    CheckImage(options: "cluster_size=4096", compressed: true),
    CheckImage(options: "cluster_size=2M,compression_type=zstd", compressed: true),
    CheckImage(options: "extended_l2=on,cluster_size=32768", snapshot: true, compressed: true),
    CheckImage(options: "cluster_size=65536", backing: true),
]

/// All check tests, so `swift test --filter CheckTests` selects them.
@Suite enum CheckTests {}

extension CheckTests {
    @Suite struct CleanImages {
        @Test(arguments: checkImages)
        func cleanImageFiguresMatch(_ c: CheckImage) throws {
            let dir = try scratchDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = try makeCheckImage(c, in: dir)
            let qemu = try qemuCheck(path)
            #expect(qemu.exitCode == 0, "qemu-img sees \(c) as damaged: \(qemu.messages)")
            expectSame(try vmimgCheck(path), qemu, "\(c)")
        }
    }
}

// MARK: - Damaged images, verdicts and repairs

enum Damage: String, CaseIterable, CustomStringConvertible, Sendable {
    case leakExtraCluster, leakRaised, corruptZeroed, corruptLowered, copiedCleared, copiedSetOnShared
    case reservedBit, unalignedL2, refblockPastEOF, l1CopiedCleared, compressedCopied

    var description: String { rawValue }

    /// Whether `-r all` must leave a clean image with the original guest content (qemu-img repairs
    /// neither reserved bits, unaligned L2 offsets nor COPIED on compressed entries).
    var fullyRepairable: Bool {
        switch self {
        case .reservedBit, .unalignedL2, .compressedCopied: return false
        default: return true
        }
    }

    func applies(to c: CheckImage) -> Bool {
        switch self {
        case .leakRaised: return !c.options.contains("refcount_bits=1")
        case .corruptLowered, .copiedSetOnShared: return c.snapshot
        case .compressedCopied: return c.compressed
        case .unalignedL2: return !c.options.contains("cluster_size=512")
        default: return true
        }
    }

    /// Damages the image at spec offsets.
    func apply(_ path: String) throws {
        let layout = try Layout(path)
        let cs = layout.cs
        let entryOffset = try layout.l2EntryOffset(path)
        let entry = try readBE64(path, entryOffset)
        let host: UInt64 =
            entry & L2Entry.compressedFlag != 0
            ? CompressedDescriptor(entry: entry, clusterBits: layout.header.clusterBits).hostOffset
            : entry & L2Entry.offsetMask
        let hostCluster = host / cs
        switch self {
        case .leakExtraCluster:
            let cluster = (layout.fileLength + cs - 1) / cs
            let f = try BlockFile(path: path, writable: true)
            try f.setLength((cluster + 1) * cs)
            try layout.setRefcount(path, cluster: cluster, 1)
        case .leakRaised:
            try layout.setRefcount(
                path, cluster: hostCluster, try layout.refcount(path, cluster: hostCluster) + 1)
        case .corruptZeroed:
            try layout.setRefcount(path, cluster: hostCluster, 0)
        case .corruptLowered, .copiedSetOnShared:
            let shared = try firstSharedEntry(path, layout)
            let sharedHost = try readBE64(path, shared) & L2Entry.offsetMask
            if self == .corruptLowered {
                let cluster = sharedHost / cs
                try layout.setRefcount(
                    path, cluster: cluster, try layout.refcount(path, cluster: cluster) - 1)
            } else {
                try pokeBE64(path, shared, try readBE64(path, shared) | L2Entry.copiedFlag)
            }
        case .copiedCleared:
            let at = try firstStandardEntry(path, layout)
            try pokeBE64(path, at, try readBE64(path, at) & ~L2Entry.copiedFlag)
        case .reservedBit:
            let at = try firstStandardEntry(path, layout)
            try pokeBE64(path, at, try readBE64(path, at) | (1 << 57))
        case .compressedCopied:
            try pokeBE64(path, entryOffset, entry | L2Entry.copiedFlag)
        case .unalignedL2:
            let l1Entry = try readBE64(path, layout.l1Offset)
            try pokeBE64(path, layout.l1Offset, l1Entry + 0x200)
        case .refblockPastEOF:
            let far = ((layout.fileLength + cs - 1) / cs + 5) * cs
            try pokeBE64(path, layout.header.refcountTableOffset + 8, far)
        case .l1CopiedCleared:
            let l1Entry = try readBE64(path, layout.l1Offset)
            try pokeBE64(path, layout.l1Offset, l1Entry & ~L1Entry.copiedFlag)
        }
    }

    /// The first allocated standard (not compressed) entry of the first L2 table.
    private func firstStandardEntry(_ path: String, _ layout: Layout) throws -> UInt64 {
        let l2 = try layout.l2Offset(path)
        for i in 0..<layout.geometry.l2Entries {
            let at = l2 + UInt64(i * layout.geometry.l2EntrySize)
            let e = try readBE64(path, at)
            if e & L2Entry.compressedFlag == 0 && e & L2Entry.offsetMask != 0 { return at }
        }
        throw QCow2Error.invalid(field: "fixture", reason: "no standard cluster in the first L2 table")
    }

    /// The first standard L2 entry of the active table whose cluster is shared with a snapshot.
    private func firstSharedEntry(_ path: String, _ layout: Layout) throws -> UInt64 {
        let l2 = try layout.l2Offset(path)
        for i in 0..<layout.geometry.l2Entries {
            let at = l2 + UInt64(i * layout.geometry.l2EntrySize)
            let e = try readBE64(path, at)
            guard e & L2Entry.compressedFlag == 0, e & L2Entry.offsetMask != 0 else { continue }
            if try layout.refcount(path, cluster: (e & L2Entry.offsetMask) / layout.cs) >= 2 { return at }
        }
        throw QCow2Error.invalid(field: "fixture", reason: "no shared cluster in the first L2 table")
    }
}

struct DamageCase: CustomStringConvertible, Sendable {
    var image: CheckImage
    var damage: Damage
    var description: String { "\(damage) on \(image)" }
}

let damageImages: [CheckImage] = [
    CheckImage(options: "cluster_size=65536"),
    CheckImage(options: "compat=0.10"),
    CheckImage(options: "cluster_size=512,refcount_bits=1"),
    CheckImage(options: "cluster_size=4096,refcount_bits=64"),
    CheckImage(options: "extended_l2=on,cluster_size=16384,refcount_bits=2"),
    CheckImage(options: "lazy_refcounts=on,cluster_size=8192"),
    CheckImage(options: "cluster_size=65536", snapshot: true),
    CheckImage(options: "cluster_size=4096,refcount_bits=4", snapshot: true),
    CheckImage(options: "cluster_size=65536", compressed: true),
]

let damageCases: [DamageCase] = damageImages.flatMap { image in
    Damage.allCases.filter { $0.applies(to: image) }.map { DamageCase(image: image, damage: $0) }
}

extension CheckTests {
    @Suite struct DamagedImages {
        @Test(arguments: damageCases)
        func verdictAndRepairsMatch(_ c: DamageCase) throws {
            let dir = try scratchDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = try makeCheckImage(c.image, in: dir)
            try run("qemu-img", ["convert", "-O", "raw", path, dir + "/orig.raw"])
            try c.damage.apply(path)

            let damaged = try qemuCheck(path)
            #expect(damaged.exitCode != 0, "\(c): qemu-img does not see the damage")
            expectSame(try vmimgCheck(path), damaged, "\(c) read-only")

            for (flag, mode) in [("leaks", QCow2RepairMode.leaks), ("all", QCow2RepairMode.all)] {
                let q = dir + "/q-\(flag).qcow2"
                let v = dir + "/v-\(flag).qcow2"
                try copyFile(path, q)
                try copyFile(path, v)
                let qemu = try qemuCheck(q, repair: flag)
                let ours = try vmimgCheck(v, repair: mode)
                expectSame(ours, qemu, "\(c) -r \(flag)")
                // The repaired files must look the same to qemu-img.
                let after = try qemuCheck(v)
                let qemuAfter = try qemuCheck(q)
                #expect(after.exitCode == qemuAfter.exitCode, "\(c) -r \(flag): state after repair")
                #expect(after.messages == qemuAfter.messages, "\(c) -r \(flag): lines after repair")
                for key in [
                    "corruptions", "leaks", "image-end-offset", "allocated-clusters", "check-errors",
                ] {
                    #expect(
                        after.number(key) == qemuAfter.number(key), "\(c) -r \(flag): \(key) after repair")
                }
                if mode == .all && c.damage.fullyRepairable {
                    #expect(after.exitCode == 0, "\(c): not clean after -r all: \(after.messages)")
                    let (code, out, err) = try run(
                        "qemu-img", ["compare", "-f", "raw", "-F", "qcow2", dir + "/orig.raw", v])
                    #expect(code == 0, "\(c): guest content changed by -r all: \(out) \(err)")
                }
            }
        }
    }
}

// MARK: - Dirty bit: repair on read-write open

extension CheckTests {
    @Suite struct DirtyImageRepairOnOpen {
        /// A lazy-refcounts writer killed before its refcount blocks reached the disk: the L2 tables
        /// reference clusters whose refcounts are still the pre-write ones, and the dirty bit is set.
        @Test(arguments: [
            "cluster_size=65536", "cluster_size=4096,refcount_bits=64",
            "cluster_size=512,refcount_bits=2",
        ])
        func killedLazyWriterIsRepairedLikeQemu(_ options: String) throws {
            let dir = try scratchDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/img.qcow2"
            try run(
                "qemu-img",
                ["create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on," + options, path, "8M"])
            let layout = try Layout(path)
            let blockOffset =
                try readBE64(path, layout.header.refcountTableOffset) & 0xffff_ffff_ffff_fe00
            let staleBlock = try readBytes(path, blockOffset, layout.geometry.clusterSize)
            let (wcode, _, werr) = try run(
                "qemu-io",
                ["-c", "write -P 0xaa 0 256k", "-c", "write -P 0x55 1M 64k", "-c", "write -z 2M 64k", path])
            try #require(wcode == 0, "qemu-io: \(werr)")
            try run("qemu-img", ["convert", "-O", "raw", path, dir + "/orig.raw"])
            try poke(path, blockOffset, staleBlock)
            try poke(path, 79, [try readBytes(path, 79, 1)[0] | 1])  // incompatible_features bit 0: dirty
            let result = try expectRepairOnOpenMatchesQemu(path, dir: dir)
            #expect(result.messages.contains("Rebuilding refcount structure"))
        }

        /// §12.10's dl.qcow2: a leaked cluster plus the dirty bit.
        @Test func dirtyLeakIsRepairedLikeQemu() throws {
            let dir = try scratchDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = try makeCheckImage(CheckImage(options: "cluster_size=65536"), in: dir)
            try run("qemu-img", ["convert", "-O", "raw", path, dir + "/orig.raw"])
            try Damage.leakExtraCluster.apply(path)
            try poke(path, 79, [try readBytes(path, 79, 1)[0] | 1])
            try expectRepairOnOpenMatchesQemu(path, dir: dir)
        }

        @Test func cleanOrReadOnlyImageIsLeftAlone() throws {
            let dir = try scratchDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = try makeCheckImage(CheckImage(options: "lazy_refcounts=on"), in: dir)
            #expect(try QCow2Image(path: path, writable: true).rebuildRefcountsIfDirty() == nil)
            try poke(path, 79, [1])
            let before = try readBytes(path, 0, 1 << 16)
            #expect(try QCow2Image(path: path, writable: false).rebuildRefcountsIfDirty() == nil)
            #expect(try readBytes(path, 0, 1 << 16) == before)
            #expect(throws: QCow2Error.self) {
                try QCow2Image(path: path, writable: false).check(repair: .leaks)
            }
        }

        @discardableResult
        func expectRepairOnOpenMatchesQemu(_ path: String, dir: String) throws -> QCow2CheckResult {
            let q = dir + "/q.qcow2"
            let v = dir + "/v.qcow2"
            try copyFile(path, q)
            try copyFile(path, v)
            let (qcode, _, qerr) = try run("qemu-io", ["-c", "read 0 512", q])
            try #require(qcode == 0, "qemu-io could not repair: \(qerr)")
            let qemuLines = qerr.split(separator: "\n").map(String.init)
            let image = try QCow2Image(path: v, writable: true)
            let result = try #require(try image.rebuildRefcountsIfDirty())
            #expect(result.messages == qemuLines)
            #expect(!image.header.incompatibleFeatures.contains(.dirty))
            #expect(try Layout(v).header.incompatibleFeatures.contains(.dirty) == false)
            let ours = try qemuCheck(v)
            let theirs = try qemuCheck(q)
            #expect(ours.exitCode == 0, "not clean after repair on open: \(ours.messages)")
            #expect(ours.exitCode == theirs.exitCode)
            #expect(ours.number("image-end-offset") == theirs.number("image-end-offset"))
            let (code, out, err) = try run(
                "qemu-img", ["compare", "-f", "raw", "-F", "qcow2", dir + "/orig.raw", v])
            #expect(code == 0, "guest content changed: \(out) \(err)")
            return result
        }
    }
}

// MARK: - Edge cases

extension CheckTests {
    @Suite struct EdgeCases {
        /// Poked images (spec offsets) compared with qemu-img, read-only and with -r all.
        enum Edge: String, CaseIterable, Sendable {
            /// L2 entry pointing 2 clusters past EOF: reported, the table is not grown for it.
            case dataPastEOF
            /// L2 entry pointing near 2^56: reported without allocating for it.
            case dataFarPastEOF
            /// refcount_bits=1 with two references to one cluster: the expected count overflows.
            case refcountOverflow
            /// Refcount table entry with reserved bits: rebuild.
            case reftableReservedBits
            /// L1 entry with reserved bits.
            case l1ReservedBits
        }

        @Test(arguments: Edge.allCases)
        func edgeMatchesQemu(_ edge: Edge) throws {
            let dir = try scratchDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let options =
                edge == .refcountOverflow ? "cluster_size=512,refcount_bits=1" : "cluster_size=65536"
            let path = try makeCheckImage(CheckImage(options: options), in: dir)
            try run("qemu-img", ["convert", "-O", "raw", path, dir + "/orig.raw"])
            let layout = try Layout(path)
            let cs = layout.cs
            let l2 = try layout.l2Offset(path)
            let first = try readBE64(path, l2)
            switch edge {
            case .dataPastEOF:
                try pokeBE64(path, l2, L2Entry.copiedFlag | ((layout.fileLength + cs - 1) / cs + 2) * cs)
            case .dataFarPastEOF:
                try pokeBE64(path, l2, L2Entry.copiedFlag | (L2Entry.offsetMask & ~(cs - 1)))
            case .refcountOverflow:
                try pokeBE64(path, l2 + 8, first)  // second guest cluster shares the first one's host cluster
            case .reftableReservedBits:
                let entry = try readBE64(path, layout.header.refcountTableOffset)
                try pokeBE64(path, layout.header.refcountTableOffset, entry | 0x10)
            case .l1ReservedBits:
                let entry = try readBE64(path, layout.l1Offset)
                try pokeBE64(path, layout.l1Offset, entry | (1 << 60))
            }
            let damaged = try qemuCheck(path)
            #expect(damaged.exitCode != 0)
            expectSame(try vmimgCheck(path), damaged, "\(edge) read-only")
            for (flag, mode) in [("leaks", QCow2RepairMode.leaks), ("all", QCow2RepairMode.all)] {
                let q = dir + "/q-\(flag).qcow2"
                let v = dir + "/v-\(flag).qcow2"
                try copyFile(path, q)
                try copyFile(path, v)
                let ours = try vmimgCheck(v, repair: mode)
                if edge == .reftableReservedBits && mode == .all {
                    // Deliberate divergence: QEMU's rebuild places the new block first-fit in the old
                    // block's cluster (no longer counted), its overlap check refuses the write and the
                    // image ends up marked corrupt. Ours writes it there (nothing live is referenced from
                    // it) and ends clean with the guest content intact.
                    #expect(ours.exitCode == 0 && ours.messages.contains("Rebuilding refcount structure"))
                    #expect(try qemuCheck(v).exitCode == 0)
                    let (code, _, err) = try run(
                        "qemu-img", ["compare", "-f", "raw", "-F", "qcow2", dir + "/orig.raw", v])
                    #expect(code == 0, "guest content changed: \(err)")
                    continue
                }
                expectSame(ours, try qemuCheck(q, repair: flag), "\(edge) -r \(flag)")
                let after = try qemuCheck(v)
                let qemuAfter = try qemuCheck(q)
                #expect(after.exitCode == qemuAfter.exitCode, "\(edge) -r \(flag): state after repair")
                #expect(after.messages == qemuAfter.messages, "\(edge) -r \(flag): lines after repair")
            }
        }
    }
}
