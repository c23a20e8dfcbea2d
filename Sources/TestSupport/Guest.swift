import BlockIO
import Foundation

/// The tiny test guest of `Samples/build-guest.sh`: a Debian kernel and a busybox initrd that mounts
/// the ext4 virtio disk `/dev/vda` at `/mnt`, runs the actions named by `vmimg.action=` on the
/// kernel command line, prints `VMIMG-*` marker lines on the serial console and powers off.
///
/// ```swift
/// let disk = scratch.path("disk.raw")
/// try Guest.makeDisk(disk, files: ["file1.txt": "hello"])
/// let run = try Guest.boot(disk: disk, format: "raw", actions: [.write("file2.txt", "hi"), .ls])
/// #expect(run.files == ["file1.txt", "file2.txt"])
/// ```
/// Boots take 6–9 s under TCG on 2 cores; give boot suites `.serialized` and `.timeLimit(.minutes(5))`.
public enum Guest {
    /// One guest action; see `Samples/build-guest.sh` for the markers each prints.
    public enum Action: Sendable, Equatable {
        /// List regular files under /mnt (without `lost+found`), sorted.
        case ls
        /// Write `text` and a newline to a file, then sync.
        case write(String, String)
        /// Append `text` and a newline to a file, then sync.
        case append(String, String)
        /// Print a file between `VMIMG-CAT-BEGIN name` and `VMIMG-CAT-END name`.
        case cat(String)
        /// Print `VMIMG-SHA256 <hex> name`.
        case sha256(String)
        /// Remove a file, then sync.
        case rm(String)
        /// Run `/mnt/vmimg-run.sh`.
        case run

        /// The action as written on the kernel command line, with spaces, commas, colons and `%`
        /// percent-encoded.
        public var commandLineWord: String {
            switch self {
            case .ls: "ls"
            case .write(let name, let text): "write:\(Self.encode(name)):\(Self.encode(text))"
            case .append(let name, let text): "append:\(Self.encode(name)):\(Self.encode(text))"
            case .cat(let name): "cat:\(Self.encode(name))"
            case .sha256(let name): "sha256:\(Self.encode(name))"
            case .rm(let name): "rm:\(Self.encode(name))"
            case .run: "run"
            }
        }

        static func encode(_ text: String) -> String {
            var out = ""
            for byte in text.utf8 {
                let c = Character(Unicode.Scalar(byte))
                if byte > 0x20 && byte < 0x7F && !",:%\"'\\".contains(c) {
                    out.append(c)
                } else {
                    let hex = String(byte, radix: 16, uppercase: true)
                    out += "%" + (hex.count < 2 ? "0" : "") + hex
                }
            }
            return out
        }
    }

    private static let built = Locked<(kernel: String, initrd: String)?>(nil)

    /// Builds (once per process, cached across runs) and returns the guest kernel and initrd, by
    /// running `Samples/build-guest.sh`; `VMIMG_GUEST_DIR` points at a prebuilt pair instead.
    /// - Returns: the paths of `vmlinuz` and `initrd.gz`.
    /// - Throws: ``ToolError`` when the build fails.
    public static func artifacts() throws -> (kernel: String, initrd: String) {
        try built.withLock { cached in
            if let cached { return cached }
            let dir: String
            if let prebuilt = ProcessInfo.processInfo.environment["VMIMG_GUEST_DIR"], !prebuilt.isEmpty {
                dir = prebuilt
            } else {
                let cache =
                    ProcessInfo.processInfo.environment["VMIMG_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
                    ?? (NSHomeDirectory() + "/.cache/vmimg")
                dir = cache + "/guest/out"
                try Tool.run("bash", [Locations.samples + "/build-guest.sh", dir], timeout: .seconds(900)).checked()
            }
            let pair = (kernel: dir + "/vmlinuz", initrd: dir + "/initrd.gz")
            cached = pair
            return pair
        }
    }

    /// Makes an ext4 raw disk with `Samples/make-disk.sh` (mke2fs -d, no mounting).
    /// - Parameters:
    ///   - path: the raw image to create.
    ///   - size: its size as mke2fs takes it (default `64M`).
    ///   - files: relative path → text; each file holds the text and a newline.
    ///   - directory: a folder whose contents are copied in first.
    /// - Throws: ``ToolError`` when mke2fs fails or is missing.
    public static func makeDisk(
        _ path: String, size: String = "64M", files: [String: String] = [:], directory: String? = nil
    ) throws {
        _ = try Tool.require("mke2fs")
        var args = [Locations.samples + "/make-disk.sh", "-s", size]
        if let directory { args += ["-d", directory] }
        for (name, text) in files.sorted(by: { $0.key < $1.key }) { args += ["-f", "\(name)=\(text)"] }
        try Tool.run("bash", args + [path]).checked()
    }

    /// Boots the guest on `disk` under TCG (KVM hangs on the CI machines) and waits for it to power off.
    /// - Parameters:
    ///   - disk: the disk image, attached as `/dev/vda` (`if=virtio`).
    ///   - format: its format for `-drive` (default `qcow2`).
    ///   - actions: what the guest does after mounting (default: list files).
    ///   - readOnly: mount the file system read-only (`vmimg.ro=1`).
    ///   - accel: `tcg` or `kvm`.
    ///   - timeout: kill QEMU after this long.
    /// - Returns: the serial output, parsed.
    /// - Throws: ``ToolError`` when QEMU is missing, fails to start, or times out.
    public static func boot(
        disk: String, format: String = "qcow2", actions: [Action] = [.ls], readOnly: Bool = false,
        accel: String = "tcg", timeout: Duration = .seconds(120)
    ) throws -> GuestRun {
        let (kernel, initrd) = try artifacts()
        let words = actions.map(\.commandLineWord).joined(separator: ",")
        let append = "console=ttyS0 quiet panic=-1 vmimg.action=\(words)" + (readOnly ? " vmimg.ro=1" : "")
        let result = try Qemu.system(
            [
                "-machine", "q35", "-accel", accel, "-m", "256", "-nographic", "-no-reboot", "-nodefaults",
                "-serial", "stdio", "-kernel", kernel, "-initrd", initrd, "-append", append,
                "-drive", "file=\(disk),if=virtio,format=\(format)",
            ], timeout: timeout)
        if result.timedOut { throw ToolError.timedOut(result) }
        return GuestRun(result: result)
    }
}

/// The serial output of one guest boot, with the `VMIMG-*` markers parsed.
public struct GuestRun: Sendable {
    /// The QEMU run.
    public let result: ToolResult
    /// Serial console lines, carriage returns removed.
    public let lines: [String]

    /// Parses `result.stdout`.
    public init(result: ToolResult) {
        self.result = result
        lines = result.stdoutText.replacingOccurrences(of: "\r", with: "")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The whole serial output.
    public var serial: String { lines.joined(separator: "\n") }

    /// N from `VMIMG-DONE status=N` (the number of failed actions), or nil if the guest never got there.
    public var status: Int? {
        lines.last { $0.hasPrefix("VMIMG-DONE status=") }.flatMap { Int($0.dropFirst("VMIMG-DONE status=".count)) }
    }

    /// Whether the guest mounted the disk, ran every action and powered off cleanly.
    public var succeeded: Bool { status == 0 && !result.timedOut }

    /// The `VMIMG-ERROR …` lines, without the prefix.
    public var errors: [String] {
        lines.filter { $0.hasPrefix("VMIMG-ERROR ") }.map { String($0.dropFirst("VMIMG-ERROR ".count)) }
    }

    /// The file list of the last `ls` action, or nil if there was none.
    public var files: [String]? { lastBlock(begin: "VMIMG-LS-BEGIN", end: "VMIMG-LS-END") }

    /// The contents printed by the last `cat(name)`, lines joined with newlines, or nil.
    public func contents(of name: String) -> String? {
        lastBlock(begin: "VMIMG-CAT-BEGIN \(name)", end: "VMIMG-CAT-END \(name)")?.joined(separator: "\n")
    }

    /// The hex digest printed by `sha256(name)`, or nil.
    public func sha256(of name: String) -> String? {
        lines.last { $0.hasPrefix("VMIMG-SHA256 ") && $0.hasSuffix(" \(name)") }
            .map { String($0.dropFirst("VMIMG-SHA256 ".count).prefix(64)) }
    }

    private func lastBlock(begin: String, end: String) -> [String]? {
        guard let start = lines.lastIndex(of: begin),
            let stop = lines[start...].firstIndex(of: end)
        else { return nil }
        return Array(lines[(start + 1)..<stop])
    }
}
