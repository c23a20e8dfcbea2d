import Foundation
import TestSupport
import Testing

/// `--image-opts` against real qemu-img: the same option strings give the same errors and output.
@Suite(.timeLimit(.minutes(5)))
struct ImageOptsTests {
    static let badOptions = [
        "l2-cache-size=abc", "l2-cache-size=-1", "l2-cache-size=", "l2-cache-size=1.5",
        "l2-cache-size=100000000000000000000", "foo=bar", "cache-size=1M,l2-cache-size=2M",
        "cache-size=1M,l2-cache-size=512k,refcount-cache-size=256k", "cache-size=1M,refcount-cache-size=2M",
        "l2-cache-entry-size=1000", "l2-cache-entry-size=256", "l2-cache-entry-size=128k",
        "cache-clean-interval=abc", "cache-clean-interval=-1", "cache-clean-interval=5000000000",
        "cache-clean-interval=1.5", "cache-clean-interval=99999999999999999999999", "file.foo=1",
        "file.driver=raw", "file.driver=nosuch", "filename=a.qcow2", "l2-cache-size=abc,foo=bar",
    ]

    @Test(arguments: badOptions)
    func errorsMatchQemuImg(_ bad: String) throws {
        let side = try SideBySide("image-opts-errors")
        try side.qemu("create", "-q", "-f", "qcow2", "a.qcow2", "1G")
        let text = "driver=qcow2,file.filename=a.qcow2,\(bad)"
        for command in [["info"], ["map"], ["check"], ["bench", "-c", "1"]] {
            let ours = try side.vmimg(command + ["--image-opts", text])
            let theirs = try side.qemuImg(command + ["--image-opts", text])
            #expect(ours.status == theirs.status && theirs.status != 0, "\(command) \(text): \(ours)")
            let expected = theirs.stderrText.replacingOccurrences(of: "qemu-img: ", with: "vmimg: ")
            #expect(ours.stderrText == expected, "\(command) \(text)")
        }
    }

    @Test func driverAndFileErrorsMatchQemuImg() throws {
        let side = try SideBySide("image-opts-driver")
        try side.qemu("create", "-q", "-f", "qcow2", "a.qcow2", "1G")
        try side.qemu("create", "-q", "-f", "raw", "r.raw", "1M")
        for text in [
            "driver=foo,file.filename=a.qcow2", "driver=raw,file.filename=r.raw,l2-cache-size=1M",
            "file.filename=r.raw,l2-cache-size=1M", "driver=qcow2", "driver=qcow2,file.filename=nonexist",
        ] {
            let ours = try side.vmimg(["info", "--image-opts", text])
            let theirs = try side.qemuImg(["info", "--image-opts", text])
            #expect(ours.status == theirs.status, "\(text): \(ours)")
            #expect(
                ours.stderrText == theirs.stderrText.replacingOccurrences(of: "qemu-img: ", with: "vmimg: "),
                "\(text)")
        }
        let both = try side.vmimg(["info", "-f", "qcow2", "--image-opts", "driver=qcow2,file.filename=a.qcow2"])
        let theirs = try side.qemuImg(["info", "-f", "qcow2", "--image-opts", "driver=qcow2,file.filename=a.qcow2"])
        #expect(both.status == theirs.status)
        #expect(both.stderrText == theirs.stderrText.replacingOccurrences(of: "qemu-img: ", with: "vmimg: "))
    }

    /// A tiny L2 cache changes nothing visible: convert, map, check and compare agree with qemu-img.
    @Test func tinyCacheCommandsMatchQemuImg() throws {
        let side = try SideBySide("image-opts-tiny")
        try side.qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "a.qcow2", "64M")
        try side.qemuIO(
            "a.qcow2", ["write -P 1 0 3M", "write -P 2 9M 5M", "write -z 20M 4M", "write -P 3 40M 1M", "discard 9M 1M"])
        let text =
            "driver=qcow2,file.driver=file,file.filename=a.qcow2,l2-cache-size=8k,refcount-cache-size=4k,"
            + "cache-clean-interval=1"
        try side.expectSameRaw(["--image-opts", text], name: "tiny")
        try side.expectSameOutput(["map", "--output=json", "--image-opts", text])
        try side.expectSameOutput(["map", "--image-opts", text])
        try side.expectSameOutput(["check", "--image-opts", text])
        try side.qemu("convert", "-O", "qcow2", "a.qcow2", "b.qcow2")
        try side.expectSameOutput([
            "compare", "--image-opts", text, "driver=qcow2,file.filename=b.qcow2,cache-size=64k",
        ])
        try side.expectSameOutput(["bench", "-c", "2000", "-S", "1M", "--image-opts", text]) { text in
            text.split(separator: "\n").filter { !$0.hasPrefix("Run completed") }.joined(separator: "\n")
        }
    }

    /// `convert --target-image-opts`: the output is an option string, only with `-n`; errors and
    /// the written images agree with qemu-img.
    @Test func targetImageOptsMatchesQemuImg() throws {
        let side = try SideBySide("target-image-opts")
        try side.qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "a.qcow2", "16M")
        try side.qemuIO("a.qcow2", ["write -P 7 0 1M", "write -P 9 5M 2M", "write -z 9M 1M"])
        for name in ["ours", "theirs"] {
            try side.qemu("create", "-q", "-f", "qcow2", "\(name).qcow2", "16M")
            try side.qemu("create", "-q", "-f", "raw", "\(name).raw", "16M")
        }
        let errorCases: [[String]] = [
            ["convert", "--target-image-opts", "a.qcow2", "driver=qcow2,file.filename=NAME.qcow2"],
            [
                "convert", "-n", "-O", "qcow2", "--target-image-opts", "a.qcow2",
                "driver=qcow2,file.filename=NAME.qcow2",
            ],
            ["convert", "-n", "-o", "cluster_size=4k", "a.qcow2", "NAME.qcow2"],
            ["convert", "-n", "--target-image-opts", "a.qcow2", "driver=qcow2,file.filename=NAME.qcow2,foo=1"],
            ["convert", "-n", "--target-image-opts", "a.qcow2", "driver=qcow2,file.filename=missing.qcow2"],
        ]
        for arguments in errorCases {
            let ours = try side.vmimg(arguments.map { $0.replacingOccurrences(of: "NAME", with: "ours") })
            let theirs = try side.qemuImg(arguments.map { $0.replacingOccurrences(of: "NAME", with: "theirs") })
            #expect(ours.status == theirs.status && theirs.status != 0, "\(arguments): \(ours)")
            let expected = theirs.stderrText.replacingOccurrences(of: "qemu-img: ", with: "vmimg: ")
                .replacingOccurrences(of: "theirs", with: "ours")
            #expect(ours.stderrText == expected, "\(arguments)")
        }
        for (driver, file) in [("driver=qcow2,", "qcow2"), ("", "qcow2"), ("driver=raw,", "raw")] {
            let options = "\(driver)file.driver=file,file.filename="
            try side.vmimg(["convert", "-n", "--target-image-opts", "a.qcow2", "\(options)ours.\(file)"]).checked()
            try side.qemu("convert", "-n", "--target-image-opts", "a.qcow2", "\(options)theirs.\(file)")
            try side.qemu("compare", "-q", "a.qcow2", "ours.\(file)")
            try side.qemu("compare", "-q", "-f", file, "-F", file, "ours.\(file)", "theirs.\(file)")
            if file == "qcow2" { try side.qemu("check", "-q", "ours.qcow2") }
        }
    }

    /// `serve --cache-opts`: a bad key or value is refused before anything listens; with tiny caches
    /// (every L2 and refcount access evicts) writes over NBD land exactly and the image checks clean.
    @Test func serveCacheOptsServeExactData() throws {
        let side = try SideBySide("serve-cache-opts")
        try side.qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "a.qcow2", "64M")
        try side.qemuIO("a.qcow2", ["write -P 1 0 3M", "write -P 2 9M 5M", "write -z 20M 4M"])
        for (bad, reason) in [
            ("foo=1", "Block format 'qcow2' does not support the option 'foo'"),
            ("l2-cache-size=abc", "Parameter 'l2-cache-size' expects a non-negative number below 2^64"),
        ] {
            let refused = try side.vmimg(["serve", "--socket", "x.sock", "--cache-opts", bad, "a.qcow2"])
            #expect(refused.status == 1)
            #expect(refused.stderrText.hasPrefix("vmimg: Invalid --cache-opts '\(bad)': "), "\(refused)")
            #expect(refused.stderrText.contains(reason), "\(refused)")
        }
        try side.qemu("convert", "-O", "raw", "a.qcow2", "model.raw")
        let socket = side.path("s.sock")
        // Started with no signals blocked (as from a shell), so SIGTERM below ends it.
        let server = try BackgroundProcess(
            try Tool.vmimgBinary(),
            [
                "serve", "--socket", socket, "--cache-opts",
                "l2-cache-size=4k,refcount-cache-size=4k,cache-clean-interval=1", side.path("a.qcow2"),
            ])
        defer { server.stop() }
        let url = "nbd+unix:///a.qcow2?socket=\(socket)"
        let deadline = Date().addingTimeInterval(30)
        while try side.qemuImg(["info", url]).status != 0 {
            try #require(Date() < deadline && server.isRunning, "vmimg serve never listened on \(socket)")
            Thread.sleep(forTimeInterval: 0.2)
        }
        let writes = ["write -P 5 1M 4M", "write -P 6 30M 2M", "write -z 9M 1M", "discard 40M 1M"]
        try side.qemuIO(url, format: "raw", writes)
        try side.qemuIO("model.raw", format: "raw", writes)
        try side.qemu("compare", "-q", "-f", "raw", "-F", "raw", url, side.path("model.raw"))
        kill(server.pid, SIGTERM)
        #expect(eventually(seconds: 30) { !server.isRunning }, "vmimg serve ignored SIGTERM")
        try side.qemu("check", "-q", "a.qcow2")
        try side.qemu("compare", "-q", "a.qcow2", "model.raw")
    }
}
