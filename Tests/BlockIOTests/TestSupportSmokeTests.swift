import Foundation
import TestSupport
import Testing

// Smoke tests for TestSupport itself (it has no test target of its own).

@Test func scratchIsUniqueAndRemoved() throws {
    var a: Scratch? = try Scratch()
    let b = try Scratch()
    let dir = try #require(a?.directory)
    #expect(dir != b.directory)
    #expect(FileManager.default.fileExists(atPath: dir))
    a = nil
    #expect(FileManager.default.fileExists(atPath: dir) == Scratch.keep)
}

@Test func pokeAndPeekAreBigEndian() throws {
    let file = try Scratch().file("f")
    try Data(count: 16).write(to: URL(fileURLWithPath: file.path))
    try file.poke(at: 4, bigEndian: UInt32(0x0102_0304))
    #expect(try file.peek(at: 4, as: UInt32.self) == 0x0102_0304)
    #expect(try file.bytes()[4..<8] == [1, 2, 3, 4])
    #expect(bigEndianBytes(UInt16(0xABCD)) == [0xAB, 0xCD])
}

@Test func splitMixIsDeterministic() {
    var a = SplitMix64(seed: 42)
    var b = SplitMix64(seed: 42)
    #expect((0..<8).map { _ in a.next() } == (0..<8).map { _ in b.next() })
    // First output of SplitMix64 for seed 0 (reference value from the published algorithm).
    var zero = SplitMix64(seed: 0)
    #expect(zero.next() == 0xE220_A839_7B1D_CDAF)
    #expect(a.bytes(13).count == 13)
}

@Test func jsonParsesAndDiffs() throws {
    let text = #"{"virtual-size": 9223372036854775807, "a": [1, 2.5, "x\u00e9\n"], "b": {"c": true, "d": null}}"#
    let json = try JSON(parsing: text)
    #expect(json["virtual-size"]?.int == Int64.max)
    #expect(json["a"]?[2]?.string == "x\u{e9}\n")
    #expect(try JSON(parsing: json.description) == json)
    let other = try JSON(parsing: #"{"virtual-size": 1, "a": [1, 2.5, "x\u00e9\n"], "b": {"c": false}}"#)
    #expect(
        json.differences(from: other) == [
            "b.c: true != false", "b.d: null != (missing)", "virtual-size: 9223372036854775807 != 1",
        ])
    #expect(json.differences(from: other, ignoring: ["virtual-size", "b"]).isEmpty)
    #expect(throws: JSONParseError.self) { try JSON(parsing: "{\"a\": }") }
    #expect(throws: JSONParseError.self) { try JSON(parsing: "[1] x") }
}

@Test(.timeLimit(.minutes(3))) func toolCapturesAndTimesOut() throws {
    let ok = try Tool.run("sh", ["-c", "echo out; echo err >&2; exit 3"])
    #expect(ok.status == 3 && ok.stdoutText == "out\n" && ok.stderrText == "err\n")
    #expect(throws: ToolError.self) { try ok.checked() }
    let slow = try Tool.run("sleep", ["30"], timeout: .milliseconds(300))
    #expect(slow.timedOut, "\(slow.duration) \(slow.status)")
    #expect(slow.status == 128 + 15, "SIGTERM should stop it: \(slow)")  // not SIGKILL after 2 s
    #expect(slow.duration < .seconds(30))  // generous: CI runs suites in parallel on 2 cores
    let fed = try Tool.run("cat", [], stdin: Data("abc".utf8))
    #expect(fed.stdoutText == "abc")
    #expect(Tool.which("vmimg-no-such-program") == nil)
    if !Tool.allowSkip {
        #expect(throws: ToolError.self) { try Tool.run("vmimg-no-such-program", []) }
    }
}

// Under VMIMG_ALLOW_SKIP=1 a missing program cancels the test (reported as cancelled, not passed).
@Test(.enabled(if: Tool.allowSkip)) func missingProgramCancels() throws {
    _ = try Tool.require("vmimg-no-such-program")
    Issue.record("require should have cancelled the test")
}

@Test func qemuImgFixturesWork() throws {
    let image = try Scratch().qemuImg(create: "qcow2", size: "64M", options: ["cluster_size=4096"])
    try Qemu.io(image.path, commands: ["write -P 0xab 0 64k"])
    let info = try Qemu.infoJSON(image.path)
    #expect(info["virtual-size"]?.int == 64 << 20)
    #expect(info["cluster-size"]?.int == 4096)
    let check = try Qemu.checkJSON(image.path)
    #expect(check.status == 0)
    #expect(check.report["check-errors"]?.int == 0)
    #expect(try image.peek(at: 20, as: UInt32.self) == 12)  // cluster_bits
    try Qemu.snapshot(image.path, .create, tag: "s1")
    #expect(try Qemu.snapshotNames(image.path) == ["s1"])
    let raw = image.scratch.path("image.raw")
    try Qemu.convertToRaw(image.path, raw)
    #expect(try bytes(raw, at: 0, count: 4) == [0xAB, 0xAB, 0xAB, 0xAB])
    #expect(try Qemu.compare(image.path, raw) == 0)
}

@Suite(.serialized, .timeLimit(.minutes(5)))
struct GuestSmokeTests {
    @Test func guestWritesAndLists() throws {
        let scratch = try Scratch()
        let raw = scratch.path("disk.raw")
        try Guest.makeDisk(raw, size: "32M", files: ["file1.txt": "hello"])
        let disk = scratch.path("disk.qcow2")
        try Qemu.convert(raw, to: disk, format: "qcow2", sourceFormat: "raw")
        let first = try Guest.boot(
            disk: disk, actions: [.write("dir/file 2.txt", "hi, there: 100%"), .cat("dir/file 2.txt"), .ls])
        #expect(first.succeeded, "\(first.serial)")
        #expect(first.files == ["dir/file 2.txt", "file1.txt"])
        #expect(first.contents(of: "dir/file 2.txt") == "hi, there: 100%")
        let second = try Guest.boot(disk: disk, actions: [.sha256("file1.txt"), .ls], readOnly: true)
        #expect(second.succeeded, "\(second.serial)")
        #expect(second.files == ["dir/file 2.txt", "file1.txt"])
        #expect(second.sha256(of: "file1.txt") == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        #expect(try Qemu.checkJSON(disk).status == 0)
    }
}

@Test func locatesBuiltVmimg() throws {
    let bin = try Tool.vmimgBinary()
    #expect(bin.hasSuffix("/vmimg") && FileManager.default.isExecutableFile(atPath: bin), "\(bin)")
}
