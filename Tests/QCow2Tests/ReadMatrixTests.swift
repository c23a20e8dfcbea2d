import BlockIO
import Foundation
import ImageKit
import QCow2
import Testing

/// Runs a program, returning (exit code, stdout, stderr).
@discardableResult
func run(_ tool: String, _ args: [String], cwd: String? = nil) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

func scratchDir() throws -> String {
    let dir = NSTemporaryDirectory() + "vmimg-q-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

struct ImageCase: CustomStringConvertible, Sendable {
    var options: String
    var compressed = false
    var backing: String? = nil  // "qcow2" | "raw"
    var description: String { "\(options) c=\(compressed) b=\(backing ?? "-")" }
}

let readCases: [ImageCase] = [
    ImageCase(options: "compat=1.1,cluster_size=65536"),
    ImageCase(options: "compat=0.10"),
    ImageCase(options: "cluster_size=512,refcount_bits=1"),
    ImageCase(options: "cluster_size=4096,refcount_bits=64"),
    ImageCase(options: "cluster_size=2M,refcount_bits=8"),
    ImageCase(options: "extended_l2=on,cluster_size=65536"),
    ImageCase(options: "extended_l2=on,cluster_size=16384,refcount_bits=2"),
    ImageCase(options: "lazy_refcounts=on"),
    ImageCase(options: "preallocation=metadata"),
    ImageCase(options: "preallocation=falloc,cluster_size=8192"),
    ImageCase(options: "compat=1.1", backing: "qcow2"),
    ImageCase(options: "compat=0.10", backing: "raw"),
    ImageCase(options: "extended_l2=on", backing: "qcow2"),
]

@Suite struct QemuWrittenImagesReadByteExact {
    @Test(arguments: readCases)
    func activeLayerMatchesQemu(_ c: ImageCase) throws {
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var createArgs = ["create", "-q", "-f", "qcow2", "-o", c.options]
        if let b = c.backing {
            let base = "base.\(b)"
            try run("qemu-img", ["create", "-q", "-f", b, base, "9M"], cwd: dir)
            try run("qemu-io", ["-f", b, "-c", "write -P 0x5a 0 3M", "-c", "write -P 0x77 8M 1M", base], cwd: dir)
            createArgs += ["-b", base, "-F", b]
        }
        createArgs += ["img.qcow2", "10M"]
        let (code, _, err) = try run("qemu-img", createArgs, cwd: dir)
        try #require(code == 0, "qemu-img create failed: \(err)")
        let (wcode, _, werr) = try run(
            "qemu-io",
            [
                "-c", "write -P 0xaa 0 128k", "-c", "write -P 0x55 1M 64k", "-c", "write -z 2M 64k",
                "-c", "write -P 0x11 5000k 4k", "-c", "write -P 0x22 9M 7k", "-c", "discard 1M 4k",
                "-c", "write -z 8704k 64k", "img.qcow2",
            ], cwd: dir)
        try #require(wcode == 0, "qemu-io failed: \(werr)")
        try run("qemu-img", ["convert", "-O", "raw", "img.qcow2", "expected.raw"], cwd: dir)
        let disk = try ImageOpener.open(dir + "/img.qcow2")
        let out = try BlockFile(path: dir + "/actual.raw", writable: true, create: true)
        try disk.exportRaw(to: out)
        let expected = try #require(FileManager.default.contents(atPath: dir + "/expected.raw"))
        let actual = try #require(FileManager.default.contents(atPath: dir + "/actual.raw"))
        #expect(expected.count == actual.count)
        #expect(expected == actual, "content differs for \(c)")
    }
}
