import Foundation
import TestSupport
import Testing

/// One image of the conformance matrix: options for `qemu-img create`/`convert -o`, and how it is
/// filled. The list below is pairwise over compat × cluster size × refcount width × compression ×
/// extended L2 × lazy refcounts × preallocation × backing × snapshots × data file, not cartesian.
struct MatrixCase: Sendable, CustomTestStringConvertible {
    var name: String
    var options: [String]
    /// "qcow2" or "raw": the image gets `sub/base.<fmt>` as backing file, named relatively.
    var backing: String? = nil
    /// Internal snapshots taken between the write phases (0...2).
    var snapshots = 0
    /// Written by `qemu-img convert -c` from a raw file holding the first phases.
    var compressed = false
    /// `data_file=sub/img.data`; opened with `--allow-data-file`.
    var dataFile = false
    var testDescription: String { name }

    static let all: [MatrixCase] = [
        MatrixCase(
            name: "v2 512 qcow2-backing 2 snapshots", options: ["compat=0.10", "cluster_size=512"],
            backing: "qcow2", snapshots: 2),
        MatrixCase(name: "v2 64k raw-backing", options: ["compat=0.10"], backing: "raw"),
        MatrixCase(
            name: "v2 4k compressed 1 snapshot", options: ["compat=0.10", "cluster_size=4096"],
            snapshots: 1, compressed: true),
        MatrixCase(
            name: "v2 2M metadata 2 snapshots",
            options: ["compat=0.10", "cluster_size=2M", "preallocation=metadata"], snapshots: 2),
        MatrixCase(
            name: "v3 512 rc1 lazy compressed",
            options: ["cluster_size=512", "refcount_bits=1", "lazy_refcounts=on"], compressed: true),
        MatrixCase(
            name: "v3 4k rc64 zstd compressed 2 snapshots",
            options: ["cluster_size=4096", "refcount_bits=64", "compression_type=zstd"], snapshots: 2,
            compressed: true),
        MatrixCase(
            name: "v3 64k rc1 extl2 qcow2-backing", options: ["refcount_bits=1", "extended_l2=on"],
            backing: "qcow2"),
        MatrixCase(
            name: "v3 2M rc64 extl2 falloc",
            options: ["cluster_size=2M", "refcount_bits=64", "extended_l2=on", "preallocation=falloc"]),
        MatrixCase(name: "v3 64k lazy data-file", options: ["lazy_refcounts=on"], dataFile: true),
        MatrixCase(
            name: "v3 4k zstd lazy raw-backing",
            options: ["cluster_size=4096", "compression_type=zstd", "lazy_refcounts=on"], backing: "raw"),
        MatrixCase(
            name: "v3 2M rc1 compressed", options: ["cluster_size=2M", "refcount_bits=1"],
            compressed: true),
        MatrixCase(
            name: "v3 64k rc64 full lazy 2 snapshots",
            options: ["refcount_bits=64", "preallocation=full", "lazy_refcounts=on"], snapshots: 2),
        MatrixCase(
            name: "v3 64k extl2 zstd compressed 1 snapshot",
            options: ["extended_l2=on", "compression_type=zstd"], snapshots: 1, compressed: true),
        MatrixCase(
            name: "v3 512 rc64 metadata 1 snapshot",
            options: ["cluster_size=512", "refcount_bits=64", "preallocation=metadata"], snapshots: 1),
        MatrixCase(
            name: "v3 64k extl2 metadata data-file",
            options: ["extended_l2=on", "preallocation=metadata"], dataFile: true),
        MatrixCase(
            name: "v3 2M extl2 lazy qcow2-backing 1 snapshot",
            options: ["cluster_size=2M", "extended_l2=on", "lazy_refcounts=on"], backing: "qcow2",
            snapshots: 1),
    ]

    /// Guest writes, one list per phase; a snapshot is taken after phase 1 and after phase 2 as asked.
    static let phases: [[String]] = [
        [
            "write -P 0xa1 0 100k", "write -P 0xa2 1M 4k", "write -z 2M 256k",
            "write -P 0xa3 3000k 1500k",
        ],
        ["write -P 0xb1 64k 64k", "write -P 0xb2 5M 512", "write -z 3M 32k"],
        ["write -P 0xc1 7M 1M", "write -z 0 32k", "discard 3100k 64k"],
    ]
}

@Suite(.timeLimit(.minutes(10)))
struct ConformanceTests {
    static let image = "sub/img.qcow2"

    /// Builds the image of `c` with real qemu-img/qemu-io under `sub/`.
    func build(_ c: MatrixCase, in env: SideBySide) throws {
        try FileManager.default.createDirectory(
            atPath: env.path("sub"), withIntermediateDirectories: true)
        var options = c.options
        if c.dataFile { options.append("data_file=sub/img.data") }
        let o = options.joined(separator: ",")
        var phases = MatrixCase.phases
        if c.compressed {
            try env.qemu("create", "-q", "-f", "raw", "src.raw", "8M")
            try env.qemuIO("src.raw", format: "raw", phases.removeFirst())
            try env.qemu(
                "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o", o, "src.raw", Self.image)
        } else if let backing = c.backing {
            try env.qemu("create", "-q", "-f", backing, "sub/base.\(backing)", "8M")
            try env.qemuIO(
                "sub/base.\(backing)", format: backing, ["write -P 0x5a 0 3M", "write -P 0x77 6M 1M"])
            try env.qemu(
                "create", "-q", "-f", "qcow2", "-o", o, "-b", "base.\(backing)", "-F", backing, Self.image,
                "8M")
        } else {
            try env.qemu("create", "-q", "-f", "qcow2", "-o", o, Self.image, "8M")
        }
        for (index, phase) in phases.enumerated() {
            try env.qemuIO(Self.image, phase)
            if index < c.snapshots { try env.qemu("snapshot", "-c", "s\(index + 1)", Self.image) }
        }
        try #require(try Qemu.img(["check", "-q", Self.image], cwd: env.dir).status == 0)
    }

    @Test(arguments: MatrixCase.all)
    func matrixImageReadsAndReportsLikeQemu(_ c: MatrixCase) throws {
        let env = try SideBySide("conf")
        try build(c, in: env)
        let flags = c.dataFile ? ["--allow-data-file"] : []
        let image = Self.image
        // Data: active layer and every snapshot, by name and by ID.
        try env.expectSameRaw([image], name: "active", vmimgFlags: flags)
        for index in 0..<c.snapshots {
            try env.expectSameRaw(
                ["-l", "snapshot.name=s\(index + 1)", image], name: "name\(index)", vmimgFlags: flags)
            try env.expectSameRaw(["-l", "\(index + 1)", image], name: "id\(index)", vmimgFlags: flags)
        }
        // Reports (qemu-img has no --allow-data-file; for the data-file cases compare without it
        // where vmimg does not open the data file, i.e. info).
        let info = c.dataFile ? [] as [String] : flags
        try env.expectSameJSON(["info", "--output=json"] + info + [image], ignoring: ["actual-size"])
        try env.expectSameOutput(["info"] + info + [image], filter: ConformanceFilter.humanInfo)
        if c.backing != nil {
            try env.expectSameJSON(
                ["info", "--backing-chain", "--output=json", image], ignoring: ["actual-size"])
        }
        guard !c.dataFile else {
            try dataFileReports(c, in: env)
            return
        }
        try env.expectSameJSON(["check", "--output=json", image])
        try env.expectSameOutput(["check", image])
        // Extended L2 subclusters unallocated inside an allocated cluster keep their host offset;
        // metadata-preallocated clusters over host holes map as data and zero (QEMU's RECURSE).
        try env.expectSameOutput(["map", image])
        try env.expectSameJSON(["map", "--output=json", image])
        try env.expectSameOutput(["snapshot", "-l", image])
        // qemu-img omits the bitmaps figure when the source (v2) cannot hold bitmaps.
        try env.expectSameOutput(["measure", "-O", "qcow2", image])
        try env.expectSameJSON([
            "measure", "--output=json", "-O", "qcow2", "-o", "cluster_size=4096", image,
        ])
        try env.expectSameOutput(["compare", image, "sub/../" + image])
        try convertedCopyPassesQemuCheck(image, flags: flags, in: env)
    }

    /// Data-file images: qemu-img opens the data file without asking; vmimg needs the flag and then
    /// must print what qemu-img prints.
    func dataFileReports(_ c: MatrixCase, in env: SideBySide) throws {
        let image = Self.image
        for command in [["check"], ["map"], ["map", "--output=json"], ["check", "--output=json"]] {
            let ours = try env.vmimg(
                command.prefix(1) + ["--allow-data-file"] + command.dropFirst() + [image])
            let theirs = try env.qemuImg(command + [image])
            #expect(ours.status == theirs.status, "\(command): \(ours)")
            let same = ours.stdoutText == theirs.stdoutText
            let detail = "\(command)\n\(ours.stdoutText)\n\(theirs.stdoutText)"
            #expect(same, "\(detail)")
        }
        try convertedCopyPassesQemuCheck(image, flags: ["--allow-data-file"], in: env)
    }

    /// `vmimg convert -O qcow2` (plain and `-c`): qemu-img check passes and qemu-img compare finds
    /// the same content.
    func convertedCopyPassesQemuCheck(_ image: String, flags: [String], in env: SideBySide) throws {
        for (name, extra) in [("copy.qcow2", [String]()), ("copy-c.qcow2", ["-c"])] {
            let result = try env.vmimg(["convert", "-O", "qcow2"] + extra + flags + [image, name])
            try #require(result.status == 0, "\(result)")
            let check = try env.qemuImg(["check", name])
            #expect(check.status == 0, "qemu-img check \(name): \(check.stdoutText)")
            let compare = try env.qemuImg(["compare", image, name])
            #expect(compare.status == 0, "qemu-img compare \(image) \(name): \(compare.stdoutText)")
        }
    }
}

/// `create`: the "Formatting ..." line, `qemu-img info` of the result, and the first cluster's
/// bytes match qemu-img's for the same options (each tool writes into its own directory under the
/// same name, so the names in the output agree).
struct CreateCase: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    var testDescription: String { arguments.joined(separator: " ") }

    static let all: [CreateCase] = [
        ["-f", "qcow2", "img.qcow2", "64M"],
        ["-f", "qcow2", "-o", "compat=0.10,cluster_size=512", "img.qcow2", "64M"],
        ["-f", "qcow2", "-o", "cluster_size=4096,refcount_bits=1", "img.qcow2", "1G"],
        [
            "-f", "qcow2", "-o",
            "extended_l2=on,compression_type=zstd,lazy_refcounts=on,refcount_bits=64", "img.qcow2", "1G",
        ],
        ["-f", "qcow2", "-o", "cluster_size=2M,preallocation=metadata", "img.qcow2", "100M"],
        ["-f", "qcow2", "-o", "preallocation=falloc,cluster_size=8192", "img.qcow2", "3M"],
        ["-f", "qcow2", "-o", "preallocation=full,cluster_size=512,refcount_bits=64", "img.qcow2", "5M"],
        ["-f", "qcow2", "-o", "preallocation=metadata,cluster_size=512,refcount_bits=64", "img.qcow2", "8M"],
        ["-f", "qcow2", "-o", "preallocation=metadata,cluster_size=4096", "img.qcow2", "200M"],
        ["-f", "qcow2", "-o", "data_file=img.data,data_file_raw=on", "img.qcow2", "1M"],
        ["-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "img.qcow2"],
        ["-f", "qcow2", "-b", "base.raw", "-F", "raw", "img.qcow2", "2M"],
        ["-f", "qcow2", "-q", "img.qcow2", "1000"],
        ["-f", "raw", "img.qcow2", "10M"],
    ].map(CreateCase.init)
}

extension ConformanceTests {
    @Test(arguments: CreateCase.all)
    func createWritesWhatQemuWrites(_ c: CreateCase) throws {
        let env = try SideBySide("create")
        for side in ["q", "v"] {
            try FileManager.default.createDirectory(
                atPath: env.path(side), withIntermediateDirectories: true)
            try Qemu.img(["create", "-q", "-f", "qcow2", "base.qcow2", "1M"], cwd: env.path(side))
                .checked()
            try Qemu.img(["create", "-q", "-f", "raw", "base.raw", "1536k"], cwd: env.path(side))
                .checked()
        }
        let theirs = try Qemu.img(["create"] + c.arguments, cwd: env.path("q"))
        let ours = try Tool.vmimg(["create"] + c.arguments, cwd: env.path("v"))
        #expect(ours.status == theirs.status, "\(ours)")
        #expect(ours.stdoutText == theirs.stdoutText)
        #expect(ours.stderrText.isEmpty, "\(ours.stderrText)")
        try #require(theirs.status == 0 && ours.status == 0)
        let format = c.arguments[c.arguments.firstIndex(of: "-f")! + 1]
        let a = try Qemu.infoJSON(env.path("v/img.qcow2"), format: format)
        let b = try Qemu.infoJSON(env.path("q/img.qcow2"), format: format)
        let ignored: Set<String> = ["actual-size", "filename", "full-backing-filename"]
        #expect(a.differences(from: b, ignoring: ignored).isEmpty, "\(a)\n\(b)")
        let length = try #require(
            FileManager.default.attributesOfItem(atPath: env.path("q/img.qcow2"))[.size] as? Int)
        let cluster = min(length, Int(b["cluster-size"]?.int ?? 65536))
        // Same file length and first cluster (header, extensions), and for files up to 256 MiB the
        // same bytes throughout: L1, L2 and refcount tables and blocks where qemu-img puts them.
        let ourLength =
            try FileManager.default.attributesOfItem(atPath: env.path("v/img.qcow2"))[.size] as? Int
        #expect(ourLength == length)
        let ourCluster = try bytes(env.path("v/img.qcow2"), at: 0, count: min(cluster, ourLength ?? 0))
        let theirCluster = try bytes(env.path("q/img.qcow2"), at: 0, count: cluster)
        #expect(ourCluster == theirCluster)
        if length <= 256 << 20 {
            #expect(try filesEqual(env.path("v/img.qcow2"), env.path("q/img.qcow2")), "file contents differ")
        }
        if format == "qcow2" {
            #expect(try Qemu.img(["check", "-q", "img.qcow2"], cwd: env.path("v")).status == 0)
        }
    }

    /// qcow2-format.md §12.11, transcript for transcript.
    @Test func compareExitCodesAndMessages() throws {
        let env = try SideBySide("compare")
        for name in ["a", "b", "c"] {
            try env.qemu("create", "-q", "-f", "qcow2", "\(name).qcow2", "64M")
            try env.qemuIO("\(name).qcow2", ["write -P 0xaa 0 64k"])
        }
        try env.qemuIO("c.qcow2", ["write -P 0xbb 1M 512"])
        try env.qemu("create", "-q", "-f", "qcow2", "d.qcow2", "128M")
        try env.qemuIO("d.qcow2", ["write -P 0xaa 0 64k"])
        try env.qemu("create", "-q", "-f", "qcow2", "e.qcow2", "128M")
        try env.qemuIO("e.qcow2", ["write -P 0xaa 0 64k", "write -P 0xcc 100M 4k"])
        try env.qemu("convert", "-q", "-O", "raw", "a.qcow2", "a.raw")
        let cases: [[String]] = [
            ["a.qcow2", "b.qcow2"], ["a.qcow2", "c.qcow2"], ["a.qcow2", "d.qcow2"],
            ["-s", "a.qcow2", "d.qcow2"],
            ["a.qcow2", "e.qcow2"], ["a.qcow2", "a.raw"], ["-s", "a.qcow2", "a.raw"],
            ["-q", "a.qcow2", "c.qcow2"],
            ["-f", "qcow2", "-F", "raw", "a.qcow2", "a.raw"],
        ]
        for args in cases {
            try env.expectSameOutput(["compare"] + args)
        }
        // -p: the same steps (block-status runs, 2 MiB reads), float arithmetic and print cadence;
        // with different sizes the warning comes between the common part's progress and the tail's.
        for args in [["a.qcow2", "b.qcow2"], ["a.qcow2", "c.qcow2"], ["a.qcow2", "e.qcow2"], ["e.qcow2", "a.raw"]] {
            try env.expectSameOutput(["compare", "-p"] + args)
        }
        // qemu-img names the file twice (format layer, then protocol layer); vmimg once.
        let missing = try env.vmimg(["compare", "a.qcow2", "nonexist.qcow2"])
        #expect(missing.status == 2)
        #expect(
            missing.stderrText == "vmimg: Could not open 'nonexist.qcow2': No such file or directory\n")
    }

    /// A backing file shorter than the overlay: past its end the overlay itself answers zeros
    /// (depth 0), as QEMU's block layer does.
    @Test func mapPastTheEndOfAShorterBacking() throws {
        let env = try SideBySide("map-short")
        for format in ["qcow2", "raw"] {
            try env.qemu("create", "-q", "-f", format, "base.\(format)", "1M")
            try env.qemuIO("base.\(format)", format: format, ["write -P 0x11 0 64k"])
            try env.qemu(
                "create", "-q", "-f", "qcow2", "-b", "base.\(format)", "-F", format, "top-\(format).qcow2", "3M")
            try env.qemuIO("top-\(format).qcow2", ["write -P 0x22 2M 64k"])
            try env.expectSameJSON(["map", "--output=json", "top-\(format).qcow2"])
            try env.expectSameOutput(["map", "top-\(format).qcow2"])
        }
    }

    /// Missing files, bad flags and unknown formats: exit codes as qemu-img, one `vmimg:` line
    /// (plus the help hint for usage errors).
    @Test(
        arguments: [
            (["info", "nonexistent.qcow2"], 1, "Could not open 'nonexistent.qcow2'"),
            (["check", "nonexistent.qcow2"], 1, "Could not open 'nonexistent.qcow2'"),
            (
                ["convert", "-O", "raw", "nonexistent.qcow2", "out.raw"], 1,
                "Could not open 'nonexistent.qcow2'"
            ),
            (["map", "nonexistent.qcow2"], 1, "Could not open 'nonexistent.qcow2'"),
            (["info", "-f", "vmdk", "img.qcow2"], 1, "vmdk"),
            (["create", "-f", "foo", "x.img", "1M"], 1, "Unknown file format 'foo'"),
            (["convert", "-O", "foo", "img.qcow2", "x.img"], 1, "foo"),
            (
                ["info", "--output=xml", "img.qcow2"], 1,
                "--output must be used with human or json as argument."
            ),
            (["check", "-r", "some", "img.qcow2"], 1, "Unknown option value for -r"),
        ] as [([String], Int32, String)])
    func failuresExitLikeQemu(_ arguments: [String], status: Int32, mentions: String) throws {
        let env = try SideBySide("exit")
        try env.qemu("create", "-q", "-f", "qcow2", "img.qcow2", "1M")
        let before = try fileSHA256(env.path("img.qcow2"))
        let ours = try env.vmimg(arguments)
        let theirs = try env.qemuImg(arguments)
        #expect(ours.status == status && theirs.status == status, "\(ours)\n\(theirs)")
        let lines = ours.stderrText.split(separator: "\n")
        #expect(
            lines.first?.hasPrefix("vmimg: ") == true && lines.first?.contains(mentions) == true,
            "\(ours.stderrText)")
        #expect(
            lines.count == 1 || lines.last == "Try 'vmimg --help' for more information",
            "\(ours.stderrText)")
        #expect(ours.stdoutText.isEmpty)
        #expect(try fileSHA256(env.path("img.qcow2")) == before)
    }

    @Test(arguments: [
        ["info", "--bogus", "img.qcow2"], ["frobnicate"], ["convert", "-m", "99", "a", "b"], ["info"],
    ])
    func badFlagsPrintTheHelpHint(_ arguments: [String]) throws {
        let env = try SideBySide("flags")
        let ours = try env.vmimg(arguments)
        let theirs = try env.qemuImg(arguments)
        #expect(ours.status == 1 && theirs.status == 1, "\(ours)\n\(theirs)")
        let lines = ours.stderrText.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("vmimg: ") == true, "\(ours.stderrText)")
        if theirs.stderrText.contains("Try 'qemu-img --help'") {
            #expect(
                lines.count == 2 && lines.last == "Try 'vmimg --help' for more information",
                "\(ours.stderrText)")
        }
    }

    /// `measure --size` for a new image, human and JSON, across create options.
    @Test(arguments: [
        "", "cluster_size=512", "extended_l2=on", "preallocation=full,cluster_size=2M",
        "refcount_bits=1",
    ])
    func measureNewImage(_ options: String) throws {
        let env = try SideBySide("measure")
        let o = options.isEmpty ? [] : ["-o", options]
        try env.expectSameOutput(["measure", "-O", "qcow2"] + o + ["--size", "10G"])
        // 1T with 512-byte clusters passes the L1 cap: qemu-img refuses, with its message.
        try env.expectSameJSON(["measure", "--output=json", "-O", "qcow2"] + o + ["--size", "1T"])
    }
}
