import Foundation
import TestSupport
import Testing

/// `vmimg amend` and `vmimg bench` run as binaries next to real qemu-img.
@Suite struct AmendTests {
    struct AmendCase: CustomStringConvertible, Sendable {
        var create: [String]
        var backing = false
        var amend: String
        var compat: String
        var refcountBits: Int
        var description: String { "create \(create) backing=\(backing) amend \(amend)" }
    }

    static let cases: [AmendCase] = [
        AmendCase(create: [], amend: "compat=0.10", compat: "0.10", refcountBits: 16),
        AmendCase(create: [], backing: true, amend: "compat=0.10", compat: "0.10", refcountBits: 16),
        AmendCase(create: ["compat=0.10"], amend: "compat=1.1", compat: "1.1", refcountBits: 16),
        AmendCase(
            create: ["compat=0.10"], amend: "compat=1.1,refcount_bits=1", compat: "1.1", refcountBits: 1),
        AmendCase(create: [], amend: "refcount_bits=64", compat: "1.1", refcountBits: 64),
        AmendCase(
            create: ["cluster_size=512"], amend: "refcount_bits=2", compat: "1.1", refcountBits: 2),
        AmendCase(
            create: ["cluster_size=512", "refcount_bits=8"], amend: "refcount_bits=16,compat=0.10",
            compat: "0.10", refcountBits: 16),
        AmendCase(create: [], amend: "lazy_refcounts=on", compat: "1.1", refcountBits: 16),
    ]

    @Test(arguments: cases)
    func amendMatchesQemuAndKeepsContent(_ c: AmendCase) throws {
        let scratch = try TestSupport.Scratch(label: "amend")
        let image = scratch.path("image.qcow2")
        if c.backing {
            let base = scratch.path("base.qcow2")
            try Qemu.create(base, size: "8M")
            try Qemu.io(base, commands: ["write -P 0x11 0 8M"])
            try Qemu.create(image, size: nil, options: c.create, backing: "base.qcow2")
        } else {
            try Qemu.create(image, size: "8M", options: c.create)
        }
        var commands = ["write -P 0xaa 0 128k", "write -P 0xbb 1M 70k", "write -P 0xcc 3M 4k"]
        if !c.create.contains("compat=0.10") {
            // Zero clusters, plain and with a host cluster kept: what a downgrade must expand.
            commands += ["write -z 256k 64k", "write -z 1M 64k", "write -z 2M 4k", "write -z 5M 1M"]
        }
        try Qemu.io(image, commands: commands)
        let reference = scratch.path("reference.raw")
        try Qemu.convertToRaw(image, reference)
        let copy = scratch.path("qemu.qcow2")
        try FileManager.default.copyItem(atPath: image, toPath: copy)

        let ours = try Tool.vmimg(["amend", "-o", c.amend, image])
        let theirs = try Qemu.img(["amend", "-o", c.amend, copy])
        #expect(ours.status == theirs.status, "\(c): \(ours.stderrText) vs \(theirs.stderrText)")
        try Qemu.img(["check", image]).checked()
        try Qemu.img(["compare", "-f", "raw", "-F", "qcow2", reference, image]).checked()
        let info = try JSON(
            parsing: try Qemu.img(["info", "--output=json", image]).checked().stdoutText)
        let specific = info["format-specific"]?["data"]
        #expect(specific?["compat"]?.string == c.compat, "\(c): \(info)")
        #expect(specific?["refcount-bits"]?.int == Int64(c.refcountBits), "\(c): \(info)")
        if c.amend.contains("lazy_refcounts=on") {
            #expect(specific?["lazy-refcounts"]?.bool == true, "\(c): \(info)")
        }
        // The same map as qemu-img's amend gives (zero clusters expanded the same way).
        let ourMap = try Qemu.img(["map", "--output=json", image]).checked().stdoutText
        let qemuMap = try Qemu.img(["map", "--output=json", copy]).checked().stdoutText
        #expect(mapShape(ourMap) == mapShape(qemuMap), "\(c)\nours:\n\(ourMap)\nqemu:\n\(qemuMap)")
    }

    /// Map lines without host offsets (allocation order may differ).
    func mapShape(_ json: String) -> [String] {
        json.split(separator: "\n").map { line in
            line.replacingOccurrences(of: #", "offset": \d+"#, with: "", options: .regularExpression)
        }
    }

    @Test(arguments: [
        ("compat=0.10,refcount_bits=8", [String]()), ("compat=0.10,lazy_refcounts=on", []),
        ("cluster_size=4096", []),
        ("compat=2", []), ("refcount_bits=3", []), ("lazy_refcounts=maybe", []), ("foo=1", []),
        ("compat=0.10", ["refcount_bits=8"]),
    ])
    func refusedOptionsMatchQemu(_ option: String, _ create: [String]) throws {
        let scratch = try TestSupport.Scratch(label: "amend-refused")
        let image = scratch.path("image.qcow2")
        try Qemu.create(image, size: "4M", options: create)
        let before = try TestSupport.bytes(image)
        let ours = try Tool.vmimg(["amend", "-o", option, image])
        let theirs = try Qemu.img(["amend", "-o", option, image])
        #expect(ours.status == 1 && theirs.status == 1)
        let ourText = ours.stderrText.replacingOccurrences(of: "vmimg: ", with: "")
        let theirText = theirs.stderrText.replacingOccurrences(of: "qemu-img: ", with: "")
        #expect(ourText == theirText, "\(option)")
        #expect(try TestSupport.bytes(image) == before)
    }
}

@Suite struct BenchTests {
    @Test func writeBenchPrintsQemuLinesAndWritesPattern() throws {
        let scratch = try TestSupport.Scratch(label: "bench")
        let image = scratch.path("image.qcow2")
        try Qemu.create(image, size: "16M", options: ["cluster_size=4096"])
        let args = [
            "-w", "-c", "300", "-d", "8", "-s", "6000", "-S", "8192", "-o", "4096", "--pattern=171",
            "--flush-interval=16", "-f", "qcow2",
        ]
        let ours = try Tool.vmimg(["bench"] + args + ["--flush-log", image]).checked()
        let lines = ours.stdoutText.split(separator: "\n").map(String.init)
        #expect(
            lines.first
                == "Sending 300 write requests, 6000 bytes each, 8 in parallel (starting at offset 4096, "
                + "step size 8192)")
        #expect(lines.dropFirst().first == "Sending flush every 16 requests")
        #expect(
            lines.last?.hasPrefix("Run completed in ") == true
                && lines.last?.hasSuffix(" seconds.") == true)
        let flushed = lines.filter { $0.hasPrefix("flushed ") }.compactMap { Int($0.dropFirst(8)) }
        #expect(flushed.last == 300 && flushed == flushed.sorted() && flushed.count >= 300 / 16)
        try Qemu.img(["check", image]).checked()
        try Qemu.io(
            image,
            commands: [
                "read -P 171 4096 6000", "read -P 0 10096 2192", "read -P 171 \(4096 + 299 * 8192) 6000",
            ])
        // qemu-img writes the same bytes: the images compare equal.
        let copy = scratch.path("qemu.qcow2")
        try Qemu.create(copy, size: "16M")
        let theirs = try Qemu.img(["bench"] + args + [copy]).checked()
        #expect(theirs.stdoutText.split(separator: "\n").first.map(String.init) == lines.first)
        try Qemu.img(["compare", image, copy]).checked()
    }

    @Test func readBenchAndRefusals() throws {
        let scratch = try TestSupport.Scratch(label: "bench")
        let image = scratch.path("image.qcow2")
        try Qemu.create(image, size: "1M")
        let read = try Tool.vmimg(["bench", "-c", "100", "-d", "4", image]).checked()
        #expect(read.stdoutText.hasPrefix("Sending 100 read requests, 4096 bytes each, 4 in parallel"))
        for args in [
            ["--flush-interval=8", "-c", "10"], ["-w", "-d", "4", "--flush-interval=2", "-c", "10"],
            ["-c", "10", "-o", "1M"],
        ] {
            let ours = try Tool.vmimg(["bench"] + args + [image])
            let theirs = try Qemu.img(["bench"] + args + [image])
            #expect(ours.status == theirs.status, "\(args)")
            #expect(
                ours.stderrText.replacingOccurrences(of: "vmimg: ", with: "")
                    == theirs.stderrText.replacingOccurrences(of: "qemu-img: ", with: ""), "\(args)")
        }
    }
}
