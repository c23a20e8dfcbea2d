import Foundation
import TestSupport
import Testing

/// One scratch directory in which the built `vmimg` and real `qemu-img` run side by side, with the
/// directory as working directory so both see the same relative names (as qcow2-format.md §12 does).
struct SideBySide {
    let scratch: TestSupport.Scratch
    var dir: String { scratch.directory }

    init(_ label: String) throws {
        _ = try Tool.require("qemu-img")
        _ = try Tool.vmimgBinary()
        scratch = try TestSupport.Scratch(label: label)
    }

    /// The absolute path of a name inside the directory.
    func path(_ name: String) -> String { scratch.path(name) }

    func vmimg(_ arguments: [String], timeout: Duration = .seconds(120)) throws -> ToolResult {
        let result = try Tool.vmimg(arguments, cwd: dir, timeout: timeout)
        if result.timedOut { throw ToolError.timedOut(result) }
        return result
    }

    func qemuImg(_ arguments: [String]) throws -> ToolResult {
        let result = try Qemu.img(arguments, cwd: dir, timeout: .seconds(300))
        if result.timedOut { throw ToolError.timedOut(result) }
        return result
    }

    /// Runs qemu-img, requiring exit 0.
    @discardableResult
    func qemu(_ arguments: String...) throws -> ToolResult { try qemuImg(arguments).checked() }

    /// Runs qemu-io commands on `file` (format `format`), requiring success.
    func qemuIO(_ file: String, format: String = "qcow2", _ commands: [String]) throws {
        var args = ["-f", format]
        for command in commands { args += ["-c", command] }
        let result = try Qemu.io(args + [file], cwd: dir).checked()
        let out = result.stdoutText + result.stderrText
        if out.contains("failed") { throw ToolError.failed(result) }
    }

    /// Runs `arguments` through both tools and expects the same exit status and byte-identical
    /// stdout after `filter`; stderr must be empty on both sides when the status is 0.
    /// - Returns: vmimg's and qemu-img's results, for further checks.
    @discardableResult
    func expectSameOutput(
        _ arguments: [String], filter: (String) -> String = { $0 },
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (ours: ToolResult, theirs: ToolResult) {
        let ours = try vmimg(arguments)
        let theirs = try qemuImg(arguments)
        let command = arguments.joined(separator: " ")
        #expect(
            ours.status == theirs.status, "\(command): exit \(ours.status) != \(theirs.status)\n\(ours)",
            sourceLocation: sourceLocation)
        let (a, b) = (filter(ours.stdoutText), filter(theirs.stdoutText))
        #expect(
            a == b, "\(command): stdout differs\n--- vmimg\n\(a)--- qemu-img\n\(b)",
            sourceLocation: sourceLocation)
        if theirs.status == 0 {
            #expect(
                ours.stderrText.isEmpty, "\(command): vmimg stderr: \(ours.stderrText)",
                sourceLocation: sourceLocation)
        }
        return (ours, theirs)
    }

    /// Runs a `--output=json` command through both tools and compares the parsed JSON key by key,
    /// skipping `ignoring`, then the exact text with those keys' values masked.
    func expectSameJSON(
        _ arguments: [String], ignoring: Set<String> = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        // vmimg's own keys (`vmimg-*`, documented extras beside qemu-img's) are left out of the
        // comparison; everything qemu-img prints must match.
        let mask = { (text: String) in
            ConformanceFilter.dropTrailingCommas(
                ConformanceFilter.dropVMImgKeys(ConformanceFilter.maskJSONValues(text, keys: ignoring)))
        }
        let (ours, theirs) = try expectSameOutput(
            arguments, filter: mask, sourceLocation: sourceLocation)
        guard ours.status == theirs.status, !theirs.stdoutText.isEmpty else { return }
        let a = ConformanceFilter.withoutVMImgKeys(try JSON(parsing: ours.stdoutText))
        let b = try JSON(parsing: theirs.stdoutText)
        let diff = a.differences(from: b, ignoring: ignoring)
        #expect(
            diff.isEmpty, "\(arguments.joined(separator: " ")): \(diff.joined(separator: "\n"))",
            sourceLocation: sourceLocation)
    }

    /// `convert -O raw` by both tools into `name.vmimg.raw` / `name.qemu.raw`; expects identical bytes.
    func expectSameRaw(
        _ source: [String], name: String, vmimgFlags: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let ours = try vmimg(["convert", "-O", "raw"] + vmimgFlags + source + ["\(name).vmimg.raw"])
        let theirs = try qemuImg(["convert", "-O", "raw"] + source + ["\(name).qemu.raw"])
        try #require(theirs.status == 0, "qemu-img: \(theirs)", sourceLocation: sourceLocation)
        try #require(ours.status == 0, "vmimg: \(ours)", sourceLocation: sourceLocation)
        #expect(
            try filesEqual(path("\(name).vmimg.raw"), path("\(name).qemu.raw")),
            "convert -O raw \(source.joined(separator: " ")): contents differ",
            sourceLocation: sourceLocation)
        try? FileManager.default.removeItem(atPath: path("\(name).vmimg.raw"))
        try? FileManager.default.removeItem(atPath: path("\(name).qemu.raw"))
    }
}

/// qemu-iotests-style filters for values that depend on the host, not the image.
enum ConformanceFilter {
    /// Replaces the value of `"key": value` for each key with `X` (values are numbers, strings or
    /// booleans in qemu-img's JSON).
    /// Lines holding a `"vmimg-…"` key (one key per line in qemu-img's pretty JSON).
    static func dropVMImgKeys(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("\"vmimg-") }.joined(separator: "\n")
    }

    /// Removes end-of-line commas, so dropping a key does not leave a comma difference.
    static func dropTrailingCommas(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix(",") ? String($0.dropLast()) : String($0) }.joined(separator: "\n")
    }

    /// The parsed JSON without vmimg's extra keys.
    static func withoutVMImgKeys(_ json: JSON) -> JSON {
        switch json {
        case .object(let o):
            return .object(o.filter { !$0.key.hasPrefix("vmimg-") }.mapValues(withoutVMImgKeys))
        case .array(let a): return .array(a.map(withoutVMImgKeys))
        default: return json
        }
    }

    static func maskJSONValues(_ text: String, keys: Set<String>) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            for key in keys {
                let marker = "\"\(key)\": "
                guard let range = line.range(of: marker) else { continue }
                let rest = line[range.upperBound...]
                let comma = rest.hasSuffix(",") ? "," : ""
                return String(line[..<range.upperBound]) + "X" + comma
            }
            return String(line)
        }.joined(separator: "\n")
    }

    /// Human `info`: the `disk size:` line depends on the host file system.
    static func humanInfo(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("disk size: ") ? "disk size: X" : String(line)
        }.joined(separator: "\n")
    }
}
