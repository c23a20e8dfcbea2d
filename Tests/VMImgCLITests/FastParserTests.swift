import Foundation
import ImageKit
import TestSupport
import Testing

@testable import VMImgCLI

/// ``FastParser`` against ArgumentParser: every command line the fast path accepts must parse to
/// the same values and run to the same stdout, stderr and exit status as through ArgumentParser.
@Suite struct FastParserTests {
    /// `A`, `B`, `L` stand for a clean image, a different one and one with a leaked cluster.
    static let commandLines: [[String]] = [
        ["check", "A"], ["check", "L"], ["check", "--output=json", "L"], ["check", "--output", "json", "A"],
        ["check", "-f", "qcow2", "A"], ["check", "-f", "raw", "A"], ["check", "-U", "A"],
        ["check", "--force-share", "A"], ["check", "-q", "L"], ["check", "-r", "leaks", "L"],
        ["check", "-r", "all", "L"], ["check", "-r", "all", "--output=json", "L"],
        ["check", "-r", "leaks", "-q", "L"], ["check", "-r", "bogus", "A"], ["check", "-T", "none", "A"],
        ["check", "--output=xml", "A"], ["check", "--output=", "A"], ["check", "A", "-U"],
        ["check", "-f", "qcow2", "-f", "raw", "A"], ["check", "-r", "all", "-r", "leaks", "L"],
        ["check", "--output=json", "--output=human", "L"], ["check", "-U", "-U", "--force-share", "A"],
        ["check", "-q", "-q", "A"], ["check", "--image-opts", "driver=qcow2,file.filename=A"],
        ["check", "--image-opts", "-f", "qcow2", "driver=qcow2,file.filename=A"],
        ["check", "--image-opts", "driver=qcow2,file.filename=A,l2-cache-size=1M"],
        ["check", "--image-opts", "driver=qcow2,bogus=1,file.filename=A"],
        ["check", "--allow-data-file", "A"], ["check", "--", "-dash.qcow2"],
        ["check", "-U", "--", "-dash.qcow2"], ["check", "--", "A"], ["check", "-f", "", "A"], ["check", ""],
        ["check", "missing.qcow2"], ["check", "help"], ["check", "-f", "-U", "A"], ["check", "-f"],
        ["check"], ["check", "A", "B"], ["check", "-qU", "A"], ["check", "-fqcow2", "A"],
        ["check", "-f=qcow2", "A"], ["check", "--help"], ["check", "-h"], ["check", "-z", "A"],
        ["check", "--bogus", "A"], ["check", "-", "A"], ["check", "-", "--", "A"], ["check", "--", "--"],
        ["check", "-U=1", "A"], ["check", "--force-share=yes", "A"], ["check", "-r", "leaks"],
        ["check", "--output", "--", "A"], ["check", "-T", "none"], ["check", "--", "A", "B"],
        ["info", "A"], ["info", "L"], ["info", "--output=json", "A"], ["info", "--output", "json", "A"],
        ["info", "--backing-chain", "A"], ["info", "--backing-chain", "--output=json", "A"],
        ["info", "-f", "qcow2", "-U", "A"], ["info", "-f", "raw", "A"], ["info", "-q", "A"],
        ["info", "--image-opts", "driver=qcow2,file.filename=A"], ["info", "--", "-dash.qcow2"],
        ["info", "missing.qcow2"], ["info", "A", "--output=xml"], ["info", "-r", "all", "A"],
        ["info", "A", "B"], ["info"], ["info", "--version"],
        ["map", "A"], ["map", "--output=json", "A"], ["map", "--start-offset=64k", "A"],
        ["map", "--start-offset", "64k", "--max-length=1M", "A"], ["map", "--max-length", "x", "A"],
        ["map", "--start-offset=-1", "A"], ["map", "-f", "qcow2", "-U", "--output", "json", "A"],
        ["map", "--image-opts", "driver=qcow2,file.filename=A"], ["map", "-q", "A"], ["map", "--", "-x"],
        ["compare", "A", "A"], ["compare", "A", "B"], ["compare", "-s", "A", "B"], ["compare", "-q", "A", "B"],
        ["compare", "-p", "A", "B"], ["compare", "-f", "qcow2", "-F", "qcow2", "A", "B"],
        ["compare", "-F", "raw", "A", "B"], ["compare", "-T", "none", "-U", "A", "B"],
        ["compare", "A", "missing.qcow2"], ["compare", "A"], ["compare", "A", "B", "L"],
        ["compare", "--", "-dash.qcow2", "A"], ["compare", "--image-opts", "A", "B"],
        ["compare", "--output=json", "A", "B"], ["compare", "-sq", "A", "B"],
        ["measure", "A"], ["frob", "A"], [], ["--version"], ["--version", "A"], ["--version", "--help"],
        ["--help"], ["help", "check"], ["check", "--version"],
    ]

    /// ArgumentParser's reading of `arguments` in the fast parser's terms; `nil` when it fails or
    /// picks a command the fast parser does not handle.
    static func argumentParser(_ arguments: [String]) -> FastParser.Command? {
        switch try? VMImgCommand.parseAsRoot(arguments) {
        case let command as CheckCommand: .check(command.values)
        case let command as InfoCommand: .info(command.values)
        case let command as MapCommand: .map(command.values)
        case let command as CompareCommand: .compare(command.values)
        default: nil
        }
    }

    @Test(arguments: commandLines)
    func parsesLikeArgumentParser(arguments: [String]) {
        // `--version` is an exit through an error in ArgumentParser: `runsLikeArgumentParser` covers it.
        guard let fast = FastParser.parse(arguments), fast != .version else { return }
        #expect(fast == Self.argumentParser(arguments))
        let command = try? VMImgCommand.parseAsRoot(arguments)
        #expect(fast.isCancellable == (command is any CancellableCommand))
    }

    /// The fast path must actually take the common command lines (else the test above proves nothing).
    @Test func takesTheCommonCommandLines() {
        let common: [[String]] = [
            ["check", "x.qcow2"], ["check", "--output=json", "-f", "qcow2", "-U", "-r", "leaks", "x"],
            ["check", "--", "-x"], ["info", "--output", "json", "--backing-chain", "x"],
            ["map", "--start-offset=0", "--max-length", "1M", "x"], ["compare", "-s", "-q", "-p", "x", "y"],
            ["check", "--image-opts", "driver=qcow2,file.filename=x"], ["--version"],
        ]
        for arguments in common { #expect(FastParser.parse(arguments) != nil, "\(arguments)") }
        for arguments in [["check", "--help"], ["check", "-qU", "x"], ["check"], ["info", "-f", "-U", "x"]] {
            #expect(FastParser.parse(arguments) == nil, "\(arguments)")
        }
    }

    /// Both paths on real images made by qemu-img, through the built `vmimg` (in a process of its
    /// own: in this test process, a concurrent test's fork can briefly hold a closed image's lock,
    /// so `check -r`'s reopen would fail), with `VMIMG_ARGUMENT_PARSER=1` for the ArgumentParser
    /// path. The images are fresh for each run (`-r` repairs them).
    @Test(arguments: commandLines)
    func runsLikeArgumentParser(arguments: [String]) throws {
        try requireQemu()
        let vmimg = try Tool.vmimgBinary()
        let work = try Scratch()
        _ = try work.qemuImg("create", "-f", "qcow2", "A.template", "64M")
        try work.qemuIO("A.template", "write -P 0x11 0 192k")
        _ = try work.qemuImg("create", "-f", "qcow2", "B.template", "128M")
        try work.qemuIO("B.template", "write -P 0x22 64k 64k")
        try CommandFlowTests.makeLeakImage(work)
        let files = FileManager.default
        func fresh() throws {
            for (from, to) in [("A.template", "A"), ("B.template", "B"), ("leak.qcow2", "L")] {
                let target = work.url.appendingPathComponent(to)
                try? files.removeItem(at: target)
                try files.copyItem(at: work.url.appendingPathComponent(from), to: target)
            }
        }
        var results: [ToolResult] = []
        for environment in [[:], ["VMIMG_ARGUMENT_PARSER": "1"]] {
            try fresh()
            results.append(try Tool.run(vmimg, arguments, cwd: work.url.path, environment: environment))
        }
        #expect(results[0].status == results[1].status)
        #expect(results[0].stdoutText == results[1].stdoutText)
        #expect(results[0].stderrText == results[1].stderrText)
    }
}
