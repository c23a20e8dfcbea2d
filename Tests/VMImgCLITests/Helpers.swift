import Foundation
import ImageKit
import BlockIO
import Testing

@testable import VMImgCLI

/// A unique scratch directory; removed on deinit unless VMIMG_KEEP_TMP=1.
final class Scratch {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "vmimg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        if ProcessInfo.processInfo.environment["VMIMG_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(at: url)
        }
    }

    /// Runs a tool (`qemu-img`, `qemu-io`) in the scratch dir with relative names, like §12.
    @discardableResult
    func run(_ tool: String, _ arguments: String...) throws -> (
        stdout: String, stderr: String, status: Int32
    ) {
        try run(tool, arguments)
    }

    func run(_ tool: String, _ arguments: [String]) throws -> (
        stdout: String, stderr: String, status: Int32
    ) {
        guard let path = Self.which(tool) else {
            throw QemuMissing(tool: tool)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = url
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self),
            process.terminationStatus
        )
    }

    /// qemu-img's output, requiring exit 0.
    func qemuImg(_ arguments: String...) throws -> String {
        let result = try run("qemu-img", arguments)
        try #require(result.status == 0, "qemu-img \(arguments) failed: \(result.stderr)")
        return result.stdout
    }

    func qemuIO(_ file: String, _ commands: String...) throws {
        let result = try run("qemu-io", commands.flatMap { ["-c", $0] } + [file])
        try #require(result.status == 0, "qemu-io failed: \(result.stderr)")
    }

    /// Parsed JSON output of qemu-img (for host-dependent values like actual-size and dates).
    func qemuJSON(_ arguments: String...) throws -> Any {
        let text = try run("qemu-img", arguments).stdout
        return try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"] {
            let path = dir + "/" + tool
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

struct QemuMissing: Error, CustomStringConvertible {
    var tool: String
    var description: String { "\(tool) not found: install qemu-utils (apt-get install qemu-utils)" }
}

/// Fails with an install hint when qemu-img is missing, or cancels under VMIMG_ALLOW_SKIP=1.
func requireQemu() throws {
    guard Scratch.which("qemu-img") == nil else { return }
    if ProcessInfo.processInfo.environment["VMIMG_ALLOW_SKIP"] == "1" {
        try Test.cancel("qemu-img missing, VMIMG_ALLOW_SKIP=1")
    }
    throw QemuMissing(tool: "qemu-img")
}

/// Captures what a command writes.
final class Capture: Sendable {
    private let state = Locked<(out: String, err: String)>(("", ""))
    var out: String { state.withLock { $0.out } }
    var err: String { state.withLock { $0.err } }

    var console: Console {
        Console(
            out: { text in self.state.withLock { $0.out += text } },
            err: { text in self.state.withLock { $0.err += text } })
    }
}

/// Runs the CLI in-process with a fake engine; returns status and output.
func runCLI(_ arguments: [String], engine: any ImageOperations = UnconnectedOperations())
    -> (status: Int32, out: String, err: String)
{
    let capture = Capture()
    let status = Console.$current.withValue(capture.console) {
        ImageService.$current.withValue(engine) { VMImgMain.run(arguments) }
    }
    return (status, capture.out, capture.err)
}

extension Dictionary where Key == String, Value == Any {
    func int64(_ key: String) throws -> Int64 {
        let number = try #require(self[key] as? NSNumber, "missing \(key)")
        return number.int64Value
    }
}
