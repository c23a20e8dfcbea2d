import Foundation
import TestSupport
import Testing

/// Persistent dirty bitmaps made by qemu-img: `info` and `measure` report them as qemu-img does,
/// `convert --bitmaps` copies them as qemu-img does (the same bytes), and vmimg's own writes never
/// leave an enabled bitmap claiming to be consistent.
@Suite(.timeLimit(.minutes(5)))
struct BitmapTests {
    /// `b.qcow2`, 24 MiB: an enabled bitmap, a disabled one with 128 KiB granules, one with a
    /// non-ASCII name, data written before and after they were added.
    static func makeImage(in env: SideBySide) throws {
        try env.qemu("create", "-q", "-f", "qcow2", "b.qcow2", "24M")
        try env.qemuIO("b.qcow2", ["write -P 1 0 1M", "write -P 2 5M 64k"])
        try env.qemu("bitmap", "--add", "b.qcow2", "b0")
        try env.qemu("bitmap", "--add", "-g", "128k", "b.qcow2", "b1")
        try env.qemu("bitmap", "--add", "-g", "1M", "b.qcow2", "nämé")
        try env.qemuIO("b.qcow2", ["write -P 3 3M 300k", "write -P 4 20M 64k", "write -z 7M 1M"])
        try env.qemu("bitmap", "--disable", "b.qcow2", "b1")
        try env.qemuIO("b.qcow2", ["write -P 5 12M 4k"])
    }

    /// The `format-specific` part of `info --output=json`, re-serialized with sorted keys.
    func formatSpecific(_ text: String) throws -> String {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let specific = try #require(object["format-specific"])
        let data = try JSONSerialization.data(withJSONObject: specific, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// stderr lines without the program's name, to compare vmimg's words with qemu-img's.
    func words(_ text: String) -> [String] {
        text.split(separator: "\n").map { line in
            for prefix in ["vmimg: ", "qemu-img: "] where line.hasPrefix(prefix) {
                return String(line.dropFirst(prefix.count))
            }
            return String(line)
        }
    }

    @Test func infoAndMeasureMatchQemuImg() throws {
        let env = try SideBySide("bitmaps-info")
        try Self.makeImage(in: env)
        let ours = try env.vmimg(["info", "--output=json", "b.qcow2"]).checked()
        let theirs = try env.qemuImg(["info", "--output=json", "b.qcow2"]).checked()
        #expect(try formatSpecific(ours.stdoutText) == formatSpecific(theirs.stdoutText))
        #expect(theirs.stdoutText.contains("\"bitmaps\""), "the fixture has bitmaps: \(theirs.stdoutText)")
        let human = try env.vmimg(["info", "b.qcow2"]).checked().stdoutText
        let qemuHuman = try env.qemuImg(["info", "b.qcow2"]).checked().stdoutText
        let tail = { (text: String) in text.components(separatedBy: "Format specific information:").last ?? "" }
        #expect(tail(human) == tail(qemuHuman))
        for options in [[], ["-o", "cluster_size=4096"], ["-o", "cluster_size=2M"]] {
            let args = ["measure", "-O", "qcow2"] + options + ["b.qcow2"]
            #expect(try env.vmimg(args).checked().stdoutText == env.qemuImg(args).checked().stdoutText, "\(args)")
        }
    }

    @Test func convertCopiesBitmapsLikeQemuImg() throws {
        let env = try SideBySide("bitmaps-convert")
        try Self.makeImage(in: env)
        for options in [[], ["-o", "cluster_size=512"], ["-o", "cluster_size=2M"], ["-c"]] {
            for file in ["v.qcow2", "q.qcow2"] { try? FileManager.default.removeItem(atPath: env.path(file)) }
            let args = ["convert", "--bitmaps", "-O", "qcow2"] + options + ["b.qcow2"]
            try env.vmimg(args + ["v.qcow2"]).checked()
            try env.qemuImg(args + ["q.qcow2"]).checked()
            // Same writes in the same order: the bitmaps' clusters, tables and directory too.
            #expect(try fileSHA256(env.path("v.qcow2")) == fileSHA256(env.path("q.qcow2")), "\(options)")
            #expect(try env.qemuImg(["check", "v.qcow2"]).status == 0)
        }
        // Refusals, in qemu-img's words.
        for args in [
            ["convert", "--bitmaps", "-O", "raw", "b.qcow2", "x.raw"],
            ["convert", "--bitmaps", "-O", "qcow2", "-o", "compat=0.10", "b.qcow2", "x.qcow2"],
            ["convert", "--bitmaps", "-O", "qcow2", "b.qcow2", "b.qcow2", "x.qcow2"],
        ] {
            let ours = try env.vmimg(args)
            let theirs = try env.qemuImg(args)
            #expect(ours.status == 1 && theirs.status == 1, "\(args): \(ours) / \(theirs)")
            #expect(words(ours.stderrText) == words(theirs.stderrText), "\(args): \(ours) / \(theirs)")
        }
    }

    /// vmimg does not record writes in bitmaps: its first write sets `in_use` on the enabled ones
    /// (QEMU then treats them as inconsistent) and leaves the disabled one valid; `convert
    /// --bitmaps` then refuses, or with `--skip-broken-bitmaps` copies the rest, as qemu-img.
    @Test func writesMarkEnabledBitmapsInUse() throws {
        let env = try SideBySide("bitmaps-write")
        try Self.makeImage(in: env)
        try env.vmimg(["bench", "-w", "-c", "4", "-f", "qcow2", "b.qcow2"]).checked()
        let info = try env.qemuImg(["info", "--output=json", "b.qcow2"]).checked().stdoutText
        let specific = try #require(
            try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])["format-specific"]
        let data = try #require((specific as? [String: Any])?["data"] as? [String: Any])
        let bitmaps = try #require(data["bitmaps"] as? [[String: Any]])
        let flags = Dictionary(
            uniqueKeysWithValues: bitmaps.map { ($0["name"] as? String ?? "", $0["flags"] as? [String] ?? []) })
        #expect(flags == ["b0": ["in-use", "auto"], "b1": [], "nämé": ["in-use", "auto"]], "\(flags)")
        #expect(try env.qemuImg(["check", "b.qcow2"]).status == 0)

        for skip in [false, true] {
            let args = ["convert", "--bitmaps"] + (skip ? ["--skip-broken-bitmaps"] : []) + ["-O", "qcow2", "b.qcow2"]
            for file in ["v.qcow2", "q.qcow2"] { try? FileManager.default.removeItem(atPath: env.path(file)) }
            let ours = try env.vmimg(args + ["v.qcow2"])
            let theirs = try env.qemuImg(args + ["q.qcow2"])
            #expect(ours.status == theirs.status, "\(args): \(ours) / \(theirs)")
            #expect(words(ours.stderrText) == words(theirs.stderrText), "\(args): \(ours) / \(theirs)")
            if skip {
                #expect(try fileSHA256(env.path("v.qcow2")) == fileSHA256(env.path("q.qcow2")))
            }
        }
    }

    /// `bitmap`: the same operations on two copies give the same bitmaps (names, granularity,
    /// flags), the same words on failure, clean images; an inconsistent bitmap can only be removed.
    @Test func bitmapCommandMatchesQemuImg() throws {
        let env = try SideBySide("bitmaps-command")
        try Self.makeImage(in: env)
        try env.vmimg(["bench", "-w", "-c", "4", "-f", "qcow2", "b.qcow2"]).checked()  // b0, nämé in use
        try FileManager.default.copyItem(atPath: env.path("b.qcow2"), toPath: env.path("v.qcow2"))
        try FileManager.default.copyItem(atPath: env.path("b.qcow2"), toPath: env.path("q.qcow2"))
        let steps: [([String], String)] = [
            (["--add"], "new"), (["--add", "-g", "512", "--disable"], "fine"), (["--add"], "new"),
            (["--remove"], "missing"), (["--clear"], "b0"), (["--enable"], "nämé"), (["--enable"], "b1"),
            (["--clear"], "b1"), (["--disable", "--enable", "--disable"], "new"), (["--remove"], "b0"),
            (["--add", "-g", "100"], "odd"), (["--remove", "--add"], "fine"), (["--remove"], "nämé"),
        ]
        for (operations, name) in steps {
            let ours = try env.vmimg(["bitmap"] + operations + ["v.qcow2", name])
            let theirs = try env.qemuImg(["bitmap"] + operations + ["q.qcow2", name])
            let label = "bitmap \(operations.joined(separator: " ")) \(name)"
            #expect(ours.status == theirs.status, "\(label): \(ours) / \(theirs)")
            #expect(words(ours.stderrText) == words(theirs.stderrText), "\(label): \(ours) / \(theirs)")
            let info = { (file: String) in
                try formatSpecific(env.qemuImg(["info", "--output=json", file]).checked().stdoutText)
            }
            #expect(try info("v.qcow2") == info("q.qcow2"), "\(label)")
            #expect(try env.qemuImg(["check", "v.qcow2"]).status == 0, "\(label)")
        }
    }

    /// A bitmap's table is sized for the disk: QEMU refuses to open an image whose bitmap no
    /// longer covers it, so vmimg refuses the resize (and leaves the file as it was).
    @Test func resizeWithBitmapsIsRefused() throws {
        let env = try SideBySide("bitmaps-resize")
        try Self.makeImage(in: env)
        let before = try fileSHA256(env.path("b.qcow2"))
        let result = try env.vmimg(["resize", "b.qcow2", "+100G"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderrText.contains("persistent dirty bitmaps"), "\(result)")
        #expect(try fileSHA256(env.path("b.qcow2")) == before)
        try env.qemuIO("b.qcow2", ["read -P 1 0 1M"])
    }
}
