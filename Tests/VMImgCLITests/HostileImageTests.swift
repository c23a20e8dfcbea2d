import Foundation
import TestSupport
import Testing

/// The malformed-image corpus of `Samples/make-malformed.sh`, one named damage per image, each with
/// its expected verdict (security.md §3, §4, §7, §8). Every run must finish within 10 s, end
/// without a signal, leave every input byte unchanged, and either print exactly one `vmimg: ` line
/// naming the field or file (refusals), or report what `qemu-img check` reports (damage found by
/// check), or repair the image the way `qemu-img check -r` does.
///
/// QEMU is the differential oracle: we may be stricter than qemu-img 7.2, never laxer. Where it
/// refuses too, its message is recorded beside ours.
struct HostileCase: Sendable, CustomTestStringConvertible {
    /// Case name in make-malformed.sh; the image is `<name>.qcow2`.
    var name: String
    /// Commands that must refuse it; `IMG` stands for the image.
    var commands: [[String]]
    /// Substrings of our one stderr line (the field, the value, the file).
    var mentions: [String]
    /// What qemu-img 7.2 says for the first command, when it refuses too; nil when it accepts the
    /// image (we are stricter) or loops forever (backing chains).
    var qemu: String?
    var testDescription: String { name }

    static let header: [[String]] = [
        ["info", "-f", "qcow2", "IMG"], ["check", "-f", "qcow2", "IMG"], ["map", "-f", "qcow2", "IMG"],
        ["convert", "-f", "qcow2", "-O", "raw", "IMG", "out.raw"],
    ]
    static let chain: [[String]] = [
        ["info", "--backing-chain", "IMG"], ["map", "IMG"], ["convert", "-O", "raw", "IMG", "out.raw"],
    ]
    static let data: [[String]] = [["convert", "-O", "raw", "IMG", "out.raw"]]

    static let refused: [HostileCase] = [
        HostileCase(
            name: "bad-magic", commands: header,
            mentions: ["'bad-magic.qcow2'", "Image is not in qcow2 format"],
            qemu: "Image is not in qcow2 format"),
        HostileCase(
            name: "version-1", commands: header, mentions: ["Unsupported qcow2 version 1"],
            qemu: "Unsupported qcow2 version 1"),
        HostileCase(
            name: "version-4", commands: header, mentions: ["Unsupported qcow2 version 4"],
            qemu: "Unsupported qcow2 version 4"),
        HostileCase(
            name: "cluster-bits-8", commands: header, mentions: ["cluster_bits: 8"],
            qemu: "Unsupported cluster size: 2^8"),
        HostileCase(
            name: "cluster-bits-22", commands: header, mentions: ["cluster_bits: 22"],
            qemu: "Unsupported cluster size: 2^22"),
        HostileCase(
            name: "cluster-bits-33", commands: header, mentions: ["cluster_bits: 33"],
            qemu: "Unsupported cluster size: 2^33"),
        HostileCase(
            name: "header-length-96", commands: header, mentions: ["header_length: 96"],
            qemu: "qcow2 header too short"),
        HostileCase(
            name: "header-length-past-cluster", commands: header, mentions: ["header_length: 65544"],
            qemu: "qcow2 header exceeds cluster size"),
        HostileCase(
            name: "backing-offset-past-cluster", commands: header,
            mentions: ["backing_file_offset: 131072"], qemu: "Invalid backing file offset"),
        HostileCase(
            name: "backing-name-too-long", commands: header, mentions: ["backing_file_size: 1024"],
            qemu: "Backing file name too long"),
        HostileCase(
            name: "l1-too-large", commands: header, mentions: ["l1_size: 4194305"],
            qemu: "Active L1 table too large"),
        HostileCase(
            name: "l1-past-eof", commands: header,
            mentions: ["L1 table at 0x10000000", "outside the file"]),
        HostileCase(
            name: "l1-misaligned", commands: header, mentions: ["l1_table_offset: 0x30200"],
            qemu: "Active L1 table offset invalid"),
        HostileCase(
            name: "refcount-table-past-eof", commands: header,
            mentions: ["refcount table at 0x10000000", "outside the file"]),
        HostileCase(
            name: "refcount-table-too-large", commands: header,
            mentions: ["refcount table: 8454144 exceeds"], qemu: "Reference count table too large"),
        HostileCase(
            name: "refcount-table-zero", commands: header,
            mentions: ["refcount_table_clusters", "Image does not contain a reference count table"],
            qemu: "Image does not contain a reference count table"),
        HostileCase(
            name: "snapshots-too-many", commands: header, mentions: ["nb_snapshots: 65537"],
            qemu: "Snapshot table too large"),
        HostileCase(
            name: "snapshot-table-past-eof", commands: header,
            mentions: ["snapshot table at 0x10000000", "outside the file"]),
        HostileCase(
            name: "snapshot-extra-too-large", commands: header, mentions: ["extra_data_size: 1025"],
            qemu: "Too much extra metadata in snapshot table entry 0"),
        HostileCase(
            name: "snapshot-l1-past-eof", commands: header,
            mentions: ["snapshot 1 L1 table at 0x10000000"]),
        HostileCase(
            name: "incompat-unknown", commands: header,
            mentions: ["Unsupported qcow2 feature(s): Unknown incompatible feature: 20"],
            qemu: "Unsupported qcow2 feature(s): Unknown incompatible feature: 20"),
        HostileCase(
            name: "incompat-unknown-named", commands: header,
            mentions: [
                "Unsupported qcow2 feature(s): shiny new feature, Unknown incompatible feature: 40"
            ], qemu: "Unsupported qcow2 feature(s): shiny new feature, Unknown incompatible feature: 40"),
        HostileCase(
            name: "compression-byte-without-bit", commands: header,
            mentions: ["compression_type", "feature bit must be set"],
            qemu: "qcow2: Compression type incompatible feature bit must be set"),
        HostileCase(
            name: "compression-bit-without-byte", commands: header,
            mentions: ["compression_type", "feature bit must not be set"],
            qemu: "qcow2: Compression type incompatible feature bit must not be set"),
        HostileCase(name: "crypt-aes", commands: header, mentions: ["crypt_method 1"]),
        HostileCase(name: "crypt-luks", commands: header, mentions: ["crypt_method 2"]),
        HostileCase(
            name: "extended-l2-4k", commands: header,
            mentions: ["cluster_bits", "Unsupported subcluster size: 128"],
            qemu: "Unsupported subcluster size: 128"),
        HostileCase(
            name: "l2-past-eof", commands: data + [["map", "IMG"]],
            mentions: ["L2 table at 0x10000000", "outside the file"]),
        HostileCase(
            name: "l2-unaligned", commands: data + [["map", "IMG"]],
            mentions: ["L2 table offset 0x40200 unaligned"], qemu: "Input/output error"),
        HostileCase(
            name: "compressed-past-eof", commands: data,
            mentions: ["compressed cluster at 0x1052600", "outside the file"], qemu: "Input/output error"),
        HostileCase(
            name: "compressed-garbage", commands: data,
            mentions: ["compressed cluster at 0x50000 does not decompress"], qemu: "Input/output error"),
        HostileCase(
            name: "backing-json", commands: chain, mentions: ["json:{", "not a plain path"],
            qemu: "A block device must be specified"),
        HostileCase(
            name: "backing-nbd", commands: chain,
            mentions: ["nbd://127.0.0.1:10809/export", "not a plain path"], qemu: "Failed to connect"),
        HostileCase(
            name: "backing-passwd-noformat", commands: chain,
            mentions: ["'/etc/passwd'", "no recorded format"]),
        HostileCase(
            name: "backing-loop", commands: chain, mentions: ["backing-loop.qcow2", "loops back"]),
        HostileCase(name: "chain-65", commands: chain, mentions: ["backing chain deeper than 64"]),
        HostileCase(
            name: "data-file-not-allowed",
            commands: data + [["map", "IMG"], ["compare", "IMG", "IMG"]],
            mentions: ["data-file-not-allowed.data", "--allow-data-file"]),
    ]
}

/// Builds one case of the corpus into a fresh scratch directory.
func makeMalformed(_ name: String, label: String = "hostile") throws -> SideBySide {
    let env = try SideBySide(label)
    try Tool.run(
        "bash", [Locations.samples + "/make-malformed.sh", env.dir, name], timeout: .seconds(300)
    ).checked()
    return env
}

/// SHA-256 of every file in the directory, to prove a command changed nothing.
func directoryDigest(_ env: SideBySide) throws -> [String: String] {
    var digest: [String: String] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: env.dir)
    where !name.hasSuffix(".raw") {
        digest[name] = try fileSHA256(env.path(name))
    }
    return digest
}

@Suite(.timeLimit(.minutes(5)))
struct HostileImageTests {
    static let limit: Duration = .seconds(10)

    @Test(arguments: HostileCase.refused)
    func refusedWithOneLineNamingTheField(_ c: HostileCase) throws {
        let env = try makeMalformed(c.name)
        let before = try directoryDigest(env)
        for command in c.commands {
            let args = command.map { $0 == "IMG" ? "\(c.name).qcow2" : $0 }
            let result = try Tool.vmimg(args, cwd: env.dir, timeout: Self.limit)
            let line = "\(args.joined(separator: " ")): \(result)"
            #expect(!result.timedOut && result.duration < Self.limit, "\(line)")
            #expect(result.status != 0 && result.status < 128, "no refusal or a signal: \(line)")
            let stderr = result.stderrText
            #expect(stderr.hasPrefix("vmimg: ") && stderr.filter { $0 == "\n" }.count == 1, "\(line)")
            for word in c.mentions {
                #expect(stderr.contains(word), "\(line): stderr lacks \(word)")
            }
        }
        #expect(try directoryDigest(env) == before, "an input file changed")
        // The oracle: qemu-img refuses with the recorded message (or accepts: we are stricter).
        if let message = c.qemu, let first = c.commands.first {
            let args = first.map { $0 == "IMG" ? "\(c.name).qcow2" : $0 }
            let theirs = try Qemu.img(args, cwd: env.dir, timeout: Self.limit)
            #expect(theirs.status != 0 && theirs.stderrText.contains(message), "\(theirs)")
        }
    }

    /// Images that open: `check` prints and exits exactly as qemu-img check does, and changes nothing.
    @Test(arguments: [
        ("l2-past-eof", Int32(2)), ("l2-unaligned", 2), ("compressed-past-eof", 2),
        ("compressed-garbage", 0),
        ("leaked-cluster", 3), ("refcount-zero", 2), ("backing-passwd-raw", 0), ("chain-64", 0),
        ("refblock-far-past-eof", 2),
    ])
    func checkCountsLikeQemu(_ name: String, status: Int32) throws {
        let env = try makeMalformed(name)
        let before = try directoryDigest(env)
        for output in [[], ["--output=json"]] {
            let args = ["check"] + output + ["\(name).qcow2"]
            let ours = try Tool.vmimg(args, cwd: env.dir, timeout: Self.limit)
            let theirs = try Qemu.img(args, cwd: env.dir)
            #expect(
                !ours.timedOut && ours.status == status && theirs.status == status, "\(ours)\n\(theirs)")
            #expect(ours.stdoutText == theirs.stdoutText)
            #expect(ours.stderrText == theirs.stderrText)
        }
        #expect(try directoryDigest(env) == before, "check changed an input file")
    }

    /// `check -r`: the same report, exit status and resulting bytes as qemu-img's repair of a copy;
    /// afterwards qemu-img check finds the image clean.
    @Test(arguments: [
        ("leaked-cluster", "leaks"), ("refcount-zero", "all"), ("l2-past-eof", "all"),
        ("l2-unaligned", "all"),
        ("compressed-past-eof", "all"), ("leaked-cluster", "all"),
    ])
    func repairedLikeQemu(_ name: String, mode: String) throws {
        let env = try makeMalformed(name)
        try FileManager.default.copyItem(
            atPath: env.path("\(name).qcow2"), toPath: env.path("theirs.qcow2"))
        try FileManager.default.copyItem(
            atPath: env.path("\(name).qcow2"), toPath: env.path("ours.qcow2"))
        let ours = try Tool.vmimg(
            ["check", "-r", mode, "ours.qcow2"], cwd: env.dir, timeout: Self.limit)
        let theirs = try Qemu.img(["check", "-r", mode, "theirs.qcow2"], cwd: env.dir)
        #expect(!ours.timedOut && ours.status == theirs.status, "\(ours)\n\(theirs)")
        #expect(ours.stdoutText == theirs.stdoutText)
        #expect(ours.stderrText == theirs.stderrText)
        #expect(
            try filesEqual(env.path("ours.qcow2"), env.path("theirs.qcow2")), "repaired bytes differ")
        let recheck = try Qemu.img(["check", "ours.qcow2"], cwd: env.dir)
        #expect(recheck.status == theirs.status, "\(recheck)")
    }

    /// Regression (fuzzing, seed 159): `check -r all` on a refcount table entry 1 TiB out grew the
    /// file to 1 TiB like qemu-img and then walked 2^28 clusters for minutes. vmimg now refuses to
    /// grow the file by more than 1 GiB for a repair; the rebuild drops the entry instead.
    @Test func repairDoesNotGrowTheFileToATerabyte() throws {
        let env = try makeMalformed("refblock-far-past-eof")
        let image = "refblock-far-past-eof.qcow2"
        let length = try bytes(env.path(image)).count
        let ours = try Tool.vmimg(["check", "-r", "all", image], cwd: env.dir, timeout: Self.limit)
        #expect(!ours.timedOut && ours.status == 0, "\(ours)")
        #expect(
            ours.stderrText.contains(
                "ERROR could not resize image: refcount block 1 lies more than 1 GiB past the end"))
        let size = try #require(
            FileManager.default.attributesOfItem(atPath: env.path(image))[.size] as? Int)
        #expect(size < length + (1 << 20), "file grew to \(size) bytes")
        #expect(try Qemu.img(["check", image], cwd: env.dir).status == 0)
    }

    /// Policy cases that must open: a recorded raw backing format, a 64-image chain, a data file
    /// with consent, a raw file that holds a qcow2 header.
    @Test func passwdWithRecordedRawFormatOpens() throws {
        let env = try makeMalformed("backing-passwd-raw")
        try env.expectSameRaw(["backing-passwd-raw.qcow2"], name: "passwd")
    }

    @Test func chainOf64Opens() throws {
        let env = try makeMalformed("chain-64")
        let ours = try env.vmimg(["info", "--backing-chain", "--output=json", "chain-64.qcow2"])
        try #require(ours.status == 0, "\(ours)")
        #expect(try JSON(parsing: ours.stdoutText).array?.count == 64)
        try env.expectSameRaw(["chain-64.qcow2"], name: "chain")
    }

    @Test func dataFileOpensWithConsent() throws {
        let env = try makeMalformed("data-file-not-allowed")
        let ours = try env.vmimg([
            "convert", "--allow-data-file", "-O", "raw", "data-file-not-allowed.qcow2", "v.raw",
        ])
        try #require(ours.status == 0, "\(ours)")
        try env.qemu("convert", "-O", "raw", "data-file-not-allowed.qcow2", "q.raw")
        #expect(try filesEqual(env.path("v.raw"), env.path("q.raw")))
        // info reads only metadata: no consent needed, as qemu-img info since CVE-2024-4467.
        try env.expectSameJSON(
            ["info", "--output=json", "data-file-not-allowed.qcow2"], ignoring: ["actual-size"])
    }

    /// A raw disk whose bytes are a qcow2 header naming /etc/passwd stays raw under `-f raw`: same
    /// bytes out, no backing file, one data extent.
    @Test func rawWithQcow2HeaderStaysRaw() throws {
        let env = try makeMalformed("raw-with-qcow2-header")
        let image = "raw-with-qcow2-header.qcow2"
        let before = try directoryDigest(env)
        let info = try env.vmimg(["info", "-f", "raw", "--output=json", image])
        try #require(info.status == 0, "\(info)")
        let json = try JSON(parsing: info.stdoutText)
        #expect(json["format"]?.string == "raw")
        #expect(json["backing-filename"] == nil)
        // The file is 196,616 bytes; QEMU counts raw files in whole 512-byte sectors.
        let input = try bytes(env.path(image))
        #expect(json["virtual-size"]?.int == Int64((input.count + 511) / 512 * 512))
        let convert = try env.vmimg(["convert", "-f", "raw", "-O", "raw", image, "out.raw"])
        try #require(convert.status == 0, "\(convert)")
        let output = try bytes(env.path("out.raw"))
        #expect(output.count == (input.count + 511) / 512 * 512)
        #expect(
            Array(output.prefix(input.count)) == input
                && output.dropFirst(input.count).allSatisfy { $0 == 0 })
        try env.expectSameRaw(["-f", "raw", image], name: "polyglot")
        try env.expectSameJSON(["map", "-f", "raw", "--output=json", image])
        try env.expectSameJSON(
            ["info", "-f", "raw", "--output=json", image], ignoring: ["actual-size"])
        #expect(try directoryDigest(env) == before)
    }

    /// Without `-f` a file whose magic is wrong probes as raw, as qemu-img does.
    @Test func badMagicProbesAsRaw() throws {
        let env = try makeMalformed("bad-magic")
        try env.expectSameJSON(["info", "--output=json", "bad-magic.qcow2"], ignoring: ["actual-size"])
    }
}
