import Foundation
import Testing

// Private helpers until the shared TestSupport module lands.

/// A unique scratch directory, removed on deinit unless VMIMG_KEEP_TMP=1.
final class Scratch {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("vmimg-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        if ProcessInfo.processInfo.environment["VMIMG_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(at: url)
        }
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

struct ToolResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Full path of a QEMU tool; fails with an install hint (or cancels under VMIMG_ALLOW_SKIP=1).
func requireTool(_ name: String) throws -> String {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"]
    where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return "\(dir)/\(name)"
    }
    if ProcessInfo.processInfo.environment["VMIMG_ALLOW_SKIP"] == "1" {
        try Test.cancel("\(name) missing, VMIMG_ALLOW_SKIP=1")
    }
    Issue.record("\(name) not found: apt-get install -y qemu-utils qemu-system-x86")
    throw CancellationError()
}

/// Runs a tool to completion with stdin closed. Output goes through files, not pipes: a
/// process spawned concurrently by another test could inherit a pipe's write end and we would
/// never see end-of-file.
@discardableResult
func run(_ tool: String, _ arguments: [String]) throws -> ToolResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try requireTool(tool))
    process.arguments = arguments
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("vmimg-run-\(UUID().uuidString)")
    let outURL = base.appendingPathExtension("out")
    let errURL = base.appendingPathExtension("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return ToolResult(
        status: process.terminationStatus, stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// Deterministic bytes for a seed.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}
