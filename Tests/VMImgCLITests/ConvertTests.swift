import Foundation
import TestSupport
import Testing

/// A conversion source built with qemu-img/qemu-io: holes, data written as zeros, unaligned runs
/// and runs across the converter's 4 MiB steps, in several cluster sizes and a backing chain.
struct ConvertSourceCase: Sendable, CustomTestStringConvertible {
    var name: String
    /// The image to convert (relative to the test directory).
    var image: String
    /// Extra `-S` values to try beside the default.
    var sparse: [String] = []
    var testDescription: String { name }

    static let all: [ConvertSourceCase] = [
        ConvertSourceCase(name: "raw", image: "src.raw", sparse: ["0"]),
        ConvertSourceCase(name: "qcow2 512", image: "c512.qcow2"),
        ConvertSourceCase(name: "qcow2 4k", image: "c4k.qcow2"),
        ConvertSourceCase(name: "qcow2 64k", image: "c64k.qcow2", sparse: ["0"]),
        ConvertSourceCase(name: "qcow2 2M", image: "c2m.qcow2"),
        ConvertSourceCase(name: "backing chain", image: "top.qcow2", sparse: ["0"]),
    ]

    /// Guest writes on the raw source. Zeros are written as data (`-P 0`), never with `write -z`,
    /// whose unwritten extents ext4 may report as data or hole depending on the page cache.
    static let rawWrites = [
        "write -P 0x11 0 100k", "write -P 0 1M 2M", "write -P 0x22 3584k 1536k", "write -P 0x33 8M 4k",
        "write -P 0 8196k 60k", "write -P 0x44 9000k 7k", "write -P 0x55 16380k 8k", "write -P 0x66 20M 3k",
    ]
    /// Writes on each qcow2 copy: zero clusters over data, a partial cluster, data after a hole.
    static let qcow2Writes = ["write -z 3712k 256k", "write -P 0x77 6M 33k", "discard 16M 4M", "write -P 0x78 18M 1k"]
    /// Writes on the overlay of the chain: zeros over backing data, a run across a step boundary.
    static let topWrites = [
        "write -z 0 64k", "write -P 0x99 4000k 200k", "write -P 0 9000k 4k", "write -z 16M 1M",
        "write -P 0x9a 12M 512",
    ]
}

@Suite(.timeLimit(.minutes(10)))
struct ConvertTests {
    /// Builds every source of `ConvertSourceCase.all` in `env` with the real tools.
    static func buildSources(in env: SideBySide) throws {
        // 20 MiB + 3 KiB: a tail that is not a whole cluster.
        try env.qemu("create", "-q", "-f", "raw", "src.raw", "\((20 << 20) + 3072)")
        try env.qemuIO("src.raw", format: "raw", ConvertSourceCase.rawWrites)
        for (name, cluster) in [("c512", "512"), ("c4k", "4096"), ("c64k", "65536"), ("c2m", "2M")] {
            try env.qemu(
                "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=\(cluster)", "src.raw",
                "\(name).qcow2")
            try env.qemuIO("\(name).qcow2", ConvertSourceCase.qcow2Writes)
        }
        try env.qemu(
            "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "c64k.qcow2", "-F", "qcow2", "top.qcow2")
        try env.qemuIO("top.qcow2", ConvertSourceCase.topWrites)
    }

    /// Output formats and options tried for every source.
    static let targets: [(name: String, format: String, options: [String])] = [
        ("raw", "raw", []), ("qcow2", "qcow2", []), ("qcow2 4k", "qcow2", ["-o", "cluster_size=4096"]),
        ("qcow2 2M", "qcow2", ["-o", "cluster_size=2M"]), ("qcow2 512", "qcow2", ["-o", "cluster_size=512"]),
    ]

    /// `vmimg convert` against `qemu-img convert` of the same source: same guest content, a clean
    /// `qemu-img check`, the same data (and present) ranges in `qemu-img map`, a file no larger.
    @Test(arguments: ConvertSourceCase.all)
    func convertMatchesQemuImg(_ c: ConvertSourceCase) throws {
        let env = try SideBySide("convert")
        try Self.buildSources(in: env)
        for target in Self.targets {
            for sparse in [nil] + c.sparse.map(Optional.some) {
                let flags = ["-O", target.format] + target.options + (sparse.map { ["-S", $0] } ?? [])
                let label = "\(c.name) → \(target.name)\(sparse.map { " -S \($0)" } ?? "")"
                let (ours, theirs) = ("v.\(target.format)", "q.\(target.format)")
                for file in [ours, theirs] { try? FileManager.default.removeItem(atPath: env.path(file)) }
                try env.vmimg(["convert"] + flags + [c.image, ours]).checked()
                try env.qemuImg(["convert"] + flags + [c.image, theirs]).checked()
                try expectSameConversion(ours, theirs, format: target.format, source: c.image, label, in: env)
            }
        }
    }

    /// `-S` above the output's cluster (or file block) size: qemu-img writes short zero runs
    /// between data and pads data runs to `-S` boundaries, sector by sector within each of its
    /// read requests; the allocated ranges must be the same, not only the content.
    @Test(arguments: ["raw", "qcow2 64k", "backing chain"])
    func sparseAboveClusterSizeMatchesQemuImg(_ source: String) throws {
        let c = try #require(ConvertSourceCase.all.first { $0.name == source })
        let env = try SideBySide("convert-sparse")
        try Self.buildSources(in: env)
        let targets: [(name: String, format: String, options: [String])] = [
            ("raw", "raw", []), ("qcow2 512", "qcow2", ["-o", "cluster_size=512"]),
            ("qcow2 4k", "qcow2", ["-o", "cluster_size=4096"]), ("qcow2", "qcow2", []),
        ]
        for target in targets {
            for sparse in ["3k", "8k", "64k", "1M"] {
                let flags = ["-O", target.format] + target.options + ["-S", sparse]
                let label = "\(c.name) → \(target.name) -S \(sparse)"
                let (ours, theirs) = ("v.\(target.format)", "q.\(target.format)")
                for file in [ours, theirs] { try? FileManager.default.removeItem(atPath: env.path(file)) }
                try env.vmimg(["convert"] + flags + [c.image, ours]).checked()
                try env.qemuImg(["convert"] + flags + [c.image, theirs]).checked()
                try expectSameConversion(ours, theirs, format: target.format, source: c.image, label, in: env)
                if target.format == "qcow2" {
                    // Same writes in the same order: qemu-img's clusters land where vmimg's do.
                    let same = try fileSHA256(env.path(ours)) == fileSHA256(env.path(theirs))
                    #expect(same, "\(label): the qcow2 files differ")
                }
            }
        }
    }

    /// Several sources: concatenated, each starting where the one before ends, as qemu-img does
    /// (raw and qcow2 sources of several cluster sizes, one a backing chain); qemu-img's refusals
    /// with `-B` and `-l`.
    @Test func concatenatesSourcesLikeQemuImg() throws {
        let env = try SideBySide("convert-concat")
        try Self.buildSources(in: env)
        let sources = ["c512.qcow2", "src.raw", "top.qcow2", "c4k.qcow2"]
        let targets: [(name: String, format: String, options: [String])] = [
            ("raw", "raw", []), ("qcow2", "qcow2", []),
            ("qcow2 512 -S 64k", "qcow2", ["-o", "cluster_size=512", "-S", "64k"]),
        ]
        for target in targets {
            let (ours, theirs) = ("v.\(target.format)", "q.\(target.format)")
            for file in [ours, theirs] { try? FileManager.default.removeItem(atPath: env.path(file)) }
            let flags = ["convert", "-O", target.format] + target.options + sources
            try env.vmimg(flags + [ours]).checked()
            try env.qemuImg(flags + [theirs]).checked()
            let compare = try env.qemuImg(["compare", "-f", target.format, "-F", target.format, ours, theirs])
            #expect(compare.status == 0, "\(target.name): \(compare)")
            let a = try ranges(of: ours, format: target.format, in: env)
            let b = try ranges(of: theirs, format: target.format, in: env)
            #expect(a.data == b.data && a.present == b.present, "\(target.name): \(a) against \(b)")
            if target.format == "qcow2" {
                #expect(try fileSHA256(env.path(ours)) == fileSHA256(env.path(theirs)), "\(target.name)")
            }
        }
        for refused in [
            ["-O", "qcow2", "-B", "c64k.qcow2", "-F", "qcow2", "src.raw", "c4k.qcow2", "x.qcow2"],
            ["-O", "qcow2", "-l", "s1", "src.raw", "c4k.qcow2", "x.qcow2"],
        ] {
            let ours = try env.vmimg(["convert"] + refused)
            let theirs = try env.qemuImg(["convert"] + refused)
            #expect(ours.status == 1 && theirs.status == 1, "\(refused): \(ours) / \(theirs)")
            let words = { (text: String) in text.split(separator: ":", maxSplits: 1).last.map(String.init) ?? text }
            #expect(words(ours.stderrText) == words(theirs.stderrText), "\(refused): \(ours) / \(theirs)")
            #expect(!FileManager.default.fileExists(atPath: env.path("x.qcow2")))
        }
    }

    /// `-n --target-is-zero`: the existing output is taken to read as zeros, so zero runs are
    /// skipped as in a new output: the same file as qemu-img's (where the promise is false,
    /// qemu-img keeps old bytes beside data inside a cluster, vmimg writes the source's whole
    /// cluster); qemu-img's refusals without `-n` and with `-B`.
    @Test func targetIsZeroSkipsZeroRunsLikeQemuImg() throws {
        let env = try SideBySide("convert-target-zero")
        try Self.buildSources(in: env)
        for format in ["qcow2", "raw"] {
            for file in ["v.\(format)", "q.\(format)"] {
                try? FileManager.default.removeItem(atPath: env.path(file))
                try env.qemu("create", "-q", "-f", format, file, "\((20 << 20) + 3072)")
            }
            let args = ["convert", "-n", "--target-is-zero", "-O", format, "c64k.qcow2"]
            try env.vmimg(args + ["v.\(format)"]).checked()
            try env.qemuImg(args + ["q.\(format)"]).checked()
            #expect(try fileSHA256(env.path("v.\(format)")) == fileSHA256(env.path("q.\(format)")), "\(format)")
        }
        let withoutN = try env.vmimg(["convert", "--target-is-zero", "-O", "qcow2", "c64k.qcow2", "x.qcow2"])
        #expect(withoutN.status == 1 && withoutN.stderrText.contains("--target-is-zero requires use of -n flag"))
        let withBacking = try env.vmimg([
            "convert", "-n", "--target-is-zero", "-O", "qcow2", "-B", "c4k.qcow2", "c64k.qcow2", "v.qcow2",
        ])
        #expect(withBacking.status == 1, "\(withBacking)")
        #expect(
            withBacking.stderrText.contains("Cannot use --target-is-zero when the destination image has a backing file")
        )
    }

    /// `-r`: `convert` and `commit` write at most the given bytes per second on average: 8 MiB of
    /// data at 8 MiB/s take a second (unthrottled, a few hundredths here); the content is intact.
    @Test func rateLimitPacesWrites() throws {
        let env = try SideBySide("convert-rate")
        try env.qemu("create", "-q", "-f", "raw", "data.raw", "8M")
        try env.qemuIO("data.raw", format: "raw", ["write -P 0x5a 0 8M"])
        let clock = ContinuousClock()
        let convert = try clock.measure {
            try env.vmimg(["convert", "-r", "8M", "-O", "qcow2", "data.raw", "paced.qcow2"]).checked()
        }
        #expect(convert >= .milliseconds(700), "convert -r 8M of 8 MiB took \(convert)")
        try env.qemu("compare", "data.raw", "paced.qcow2")
        try env.qemu("create", "-q", "-f", "qcow2", "-b", "paced.qcow2", "-F", "qcow2", "top.qcow2")
        try env.qemuIO("top.qcow2", ["write -P 0x6b 0 8M"])
        let commit = try clock.measure { try env.vmimg(["commit", "-r", "8M", "top.qcow2"]).checked() }
        #expect(commit >= .milliseconds(700), "commit -r 8M of 8 MiB took \(commit)")
        try env.qemuIO("paced.qcow2", ["read -P 0x6b 0 8M"])
    }

    /// `--salvage` over a compressed cluster that does not inflate: without it the copy fails as
    /// qemu-img's does; with it every sector of that cluster is copied as zeros with one warning
    /// each (none with `-q`), the output is qemu-img's and the exit status 0.
    @Test func salvageCopiesUnreadableSectorsAsZeros() throws {
        let env = try SideBySide("convert-salvage")
        _ = try Tool.run(
            "bash", [Locations.samples + "/make-malformed.sh", env.dir, "compressed-garbage"], timeout: .seconds(120)
        ).checked()
        let source = "compressed-garbage.qcow2"
        let plain = try env.vmimg(["convert", "-O", "raw", source, "plain.raw"])
        #expect(plain.status == 1 && plain.stderrText.contains("does not decompress"), "\(plain)")
        let ours = try env.vmimg(["convert", "--salvage", "-O", "raw", source, "v.raw"]).checked()
        let theirs = try env.qemuImg(["convert", "--salvage", "-O", "raw", source, "q.raw"]).checked()
        let warnings = { (text: String) in
            text.split(separator: "\n").filter { $0.contains("warning: error while reading offset") }.count
        }
        #expect(warnings(ours.stderrText) == warnings(theirs.stderrText) && warnings(ours.stderrText) > 0)
        #expect(try fileSHA256(env.path("v.raw")) == fileSHA256(env.path("q.raw")))
        let quiet = try env.vmimg(["convert", "-q", "--salvage", "-O", "raw", source, "quiet.raw"]).checked()
        #expect(quiet.stderrText.isEmpty, "\(quiet)")
    }

    /// A conversion into an existing file of other content: the output is emptied first.
    @Test func convertReplacesExistingOutput() throws {
        let env = try SideBySide("convert-replace")
        try Self.buildSources(in: env)
        for format in ["raw", "qcow2"] {
            // Full of non-zero bytes, longer than the result: nothing of it may survive.
            try env.qemu("create", "-q", "-f", "raw", "v.\(format)", "40M")
            try env.qemuIO("v.\(format)", format: "raw", ["write -P 0xee 0 40M"])
            try env.vmimg(["convert", "-O", format, "c64k.qcow2", "v.\(format)"]).checked()
            try env.qemu("convert", "-O", format, "c64k.qcow2", "q.\(format)")
            try expectSameConversion(
                "v.\(format)", "q.\(format)", format: format, source: "c64k.qcow2", "over \(format)", in: env)
        }
    }

    func expectSameConversion(
        _ ours: String, _ theirs: String, format: String, source: String, _ label: String, in env: SideBySide
    ) throws {
        let compare = try env.qemuImg(["compare", "-F", format, source, ours])
        #expect(compare.status == 0, "\(label): qemu-img compare: \(compare)")
        if format == "qcow2" {
            let check = try env.qemuImg(["check", ours])
            #expect(check.status == 0, "\(label): qemu-img check: \(check)")
        }
        let a = try ranges(of: ours, format: format, in: env)
        let b = try ranges(of: theirs, format: format, in: env)
        #expect(a.data == b.data, "\(label): data ranges differ\nvmimg    \(a.data)\nqemu-img \(b.data)")
        #expect(a.present == b.present, "\(label): present ranges differ\nvmimg    \(a.present)\nqemu-img \(b.present)")
        let size = { (name: String) in
            (try FileManager.default.attributesOfItem(atPath: env.path(name))[.size] as? NSNumber)?.uint64Value ?? 0
        }
        #expect(try size(ours) <= size(theirs), "\(label): vmimg's file is larger")
    }

    /// The guest ranges `qemu-img map` reports as data and as present, merged (host offsets and
    /// the merging they cause are layout, not content, so they are left out).
    func ranges(of file: String, format: String, in env: SideBySide) throws -> (
        data: [Range<Int64>], present: [Range<Int64>]
    ) {
        let map = try env.qemuImg(["map", "--output=json", "-f", format, file]).checked()
        let extents = try #require(try JSON(parsing: map.stdoutText).array)
        var data: [Range<Int64>] = []
        var present: [Range<Int64>] = []
        func add(_ r: Range<Int64>, to list: inout [Range<Int64>]) {
            if let last = list.last, last.upperBound == r.lowerBound {
                list[list.count - 1] = last.lowerBound..<r.upperBound
            } else {
                list.append(r)
            }
        }
        for e in extents {
            let start = try #require(e["start"]?.int)
            let length = try #require(e["length"]?.int)
            if e["data"]?.bool == true { add(start..<(start + length), to: &data) }
            if e["present"]?.bool == true { add(start..<(start + length), to: &present) }
        }
        return (data, present)
    }
}
