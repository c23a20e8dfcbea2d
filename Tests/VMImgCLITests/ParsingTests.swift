import ImageKit
import Testing

@testable import VMImgCLI

/// Size strings, `-o` strings and the command line, with results checked against qemu-img 7.2.
@Suite struct ParsingTests {
    @Test(arguments: [
        ("1G", UInt64(1) << 30), ("64M", 64 << 20), ("512b", 512), ("1.5m", 1_572_864), ("0x100", 256),
        ("1000", 1000), ("4k", 4096), ("1E", 1 << 60), ("1.k", 1024), ("0x10k", 16384),
        ("0x10b", 0x10b),
    ])
    func sizesQemuAccepts(text: String, bytes: UInt64) throws {
        #expect(try SizeParser.parse(text) == bytes)
    }

    @Test(arguments: ["-1", "1.5Q", "1Kb", "", "abc", "1.5", "0x1.5", "1e3k"])
    func sizesQemuRejects(text: String) {
        #expect(throws: SizeParser.Failure.invalid) { try SizeParser.parse(text) }
    }

    @Test func sizeOutOfRange() {
        #expect(throws: SizeParser.Failure.outOfRange) { try SizeParser.parse("99999E") }
        let error = #expect(throws: CLIError.self) { try SizeParser.cvtnum("image size", "99999E") }
        #expect(
            error?.message == "Invalid image size specified. Must be between 0 and 9223372036854775807.")
    }

    @Test func resizeSizes() throws {
        #expect(try SizeParser.sizeChange("+1G") == .grow(1 << 30))
        #expect(try SizeParser.sizeChange("-64M") == .shrink(64 << 20))
        #expect(try SizeParser.sizeChange("32M") == .absolute(32 << 20))
        #expect(throws: CLIError.self) { try SizeParser.sizeChange("+1x") }
    }

    @Test func optionStrings() {
        let parsed = OptionString.parse(
            "backing_file=a,,b.qcow2,backing_fmt=qcow2,lazy_refcounts,noextended_l2")
        #expect(parsed.map(\.key) == ["backing_file", "backing_fmt", "lazy_refcounts", "extended_l2"])
        #expect(parsed.map(\.value) == ["a,b.qcow2", "qcow2", "on", "off"])
        #expect(OptionString.dictionary("cluster_size=4k,cluster_size=64k") == ["cluster_size": "64k"])
        #expect(OptionString.wantsHelp("help"))
        #expect(OptionString.wantsHelp("cluster_size=4k,?"))
        #expect(!OptionString.wantsHelp("backing_file=help"))
        #expect(OptionString.accumulate(["a=1", "b=2"]) == "a=1,b=2")
    }

    @Test func usageErrorsExitOneWithHint() {
        for arguments in [
            ["info"], ["info", "-z", "x"], ["info", "--bogus", "x"], ["frob"], ["info", "a", "b"],
        ] {
            let result = runCLI(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.err.hasPrefix("vmimg: "), "\(arguments)")
            #expect(result.err.hasSuffix("Try 'vmimg --help' for more information\n"), "\(arguments)")
        }
    }

    @Test func qemuWordedUsageErrors() {
        #expect(
            runCLI(["check", "-r", "foo", "x"]).err
                == "vmimg: Unknown option value for -r (expecting 'leaks' or 'all'): foo\n"
                + "Try 'vmimg --help' for more information\n")
        #expect(
            runCLI(["snapshot", "-l", "-c", "x", "a"]).err
                == "vmimg: Cannot mix '-l', '-a', '-c', '-d'\nTry 'vmimg --help' for more information\n")
        let output = runCLI(["info", "--output=xml", "x"])
        #expect(output.status == 1)
        #expect(output.err == "vmimg: --output must be used with human or json as argument.\n")
        let size = runCLI(["create", "-f", "qcow2", "x.qcow2", "1.5Q"])
        #expect(size.status == 1)
        #expect(
            size.err
                == "vmimg: Invalid image size specified. You may use k, M, G, T, P or E suffixes for\n"
                + "vmimg: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n")
    }

    @Test func outputFlagBothSpellings() {
        let info = ImageInfo(filename: "a.raw", format: "raw", virtualSize: 512, dirtyFlag: false)
        let engine = FakeEngine(info: info)
        let equals = runCLI(["info", "--output=json", "a.raw"], engine: engine)
        let spaced = runCLI(["info", "--output", "json", "a.raw"], engine: engine)
        #expect(equals.status == 0)
        #expect(equals.out == spaced.out)
        #expect(equals.out.hasPrefix("{\n    \"virtual-size\": 512,"))
    }

    @Test func resizeTakesNegativeSizeFromTheEnd() {
        let engine = FakeEngine()
        let result = runCLI(["resize", "--shrink", "img.qcow2", "-1G"], engine: engine)
        #expect(result.status == 0)
        #expect(result.out == "Image resized.\n")
        #expect(engine.seenRequests.withLock { $0 } == ["resize img.qcow2 shrink(1073741824)"])
    }

    @Test func helpAndVersionExitZero() {
        #expect(runCLI(["--help"]).status == 0)
        #expect(runCLI(["info", "--help"]).out.contains("--backing-chain"))
        #expect(runCLI(["--version"]).status == 0)
    }

    @Test func unconnectedEngineSaysNotImplemented() {
        let result = runCLI(["convert", "-O", "qcow2", "a.raw", "b.qcow2"])
        #expect(result.status == 1)
        #expect(result.err == "vmimg: convert: not implemented yet\n")
    }

    @Test func createPrintsFormattingLineLikeQemu() {
        let result = runCLI(
            [
                "create", "-f", "qcow2", "-o", "backing_file=a,,b.qcow2,backing_fmt=qcow2", "-u", "x.qcow2",
                "1M",
            ],
            engine: FakeEngine())
        #expect(
            result.out
                == "Formatting 'x.qcow2', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib "
                + "size=1048576 backing_file=a,,b.qcow2 backing_fmt=qcow2 lazy_refcounts=off refcount_bits=16\n"
        )
    }
}
