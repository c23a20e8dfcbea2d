import Foundation
import Instances
import TestSupport
import Testing

let MiB: UInt64 = 1 << 20

/// A vmimg home of its own under /tmp (short, so QMP socket paths fit in sun_path).
final class TestHome: @unchecked Sendable {  // immutable after init
    let root: String
    init() throws {
        root = "/tmp/vmimg-it-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    deinit {
        if ProcessInfo.processInfo.environment["VMIMG_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: root)
        }
    }
    var home: VMImgHome { VMImgHome(root: root + "/home") }
    func manager(hooks: InstanceHooks = InstanceHooks()) throws -> InstanceManager {
        try InstanceManager(home: home, hooks: hooks)
    }
    func file(_ name: String) -> String { root + "/" + name }
}

/// Runs a tool through TestSupport (a missing QEMU tool fails with an install hint: real QEMU is
/// required), with the short `out`/`err` names these tests use.
@discardableResult
func tool(_ name: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
    let result = try Tool.run(name, args, timeout: .seconds(300))
    return (result.status, result.stdoutText, result.stderrText)
}

/// `qemu-io -c 'write -P pattern offset length'` on a qcow2 file.
func writePattern(_ path: String, _ pattern: UInt8, at offset: UInt64 = 0, length: UInt64) throws {
    let r = try tool(
        "qemu-io", ["-f", "qcow2", "-c", "write -P \(pattern) \(offset) \(length)", path])
    #expect(r.status == 0, "qemu-io write: \(r.err)\(r.out)")
}

/// Whether the range reads back as `pattern` (`qemu-io read -P`).
func hasPattern(
    _ path: String, _ pattern: UInt8, at offset: UInt64 = 0, length: UInt64, forceShare: Bool = false
) throws -> Bool {
    let r = try tool(
        "qemu-io",
        (forceShare ? ["-U"] : []) + [
            "-r", "-f", "qcow2", "-c", "read -P \(pattern) \(offset) \(length)", path,
        ])
    return r.status == 0 && !r.out.contains("Pattern verification failed")
        && !r.err.contains("failed")
}

/// Snapshot names in the drive's own table (`qemu-img snapshot -l`, force-share).
func qemuSnapshotNames(_ path: String) throws -> [String] {
    let r = try tool("qemu-img", ["info", "-U", "--output=json", path])
    guard let data = r.out.data(using: .utf8),
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return [] }
    let snaps = object["snapshots"] as? [[String: Any]] ?? []
    return snaps.compactMap { $0["name"] as? String }
}

func qemuImgCheck(_ path: String) throws {
    let r = try tool("qemu-img", ["check", "-U", path])
    #expect(r.status == 0, "qemu-img check \(path): \(r.out)\(r.err)")
}
