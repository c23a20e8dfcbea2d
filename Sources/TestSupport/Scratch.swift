import Foundation

/// A unique temporary directory for one test, removed when the last reference goes away.
///
/// Tests run in parallel, so each creates its own: `/tmp/vmimg-tests/<uuid>` (or under `$TMPDIR`).
/// Set `VMIMG_KEEP_TMP=1` to keep the directories for inspection; their paths are printed then.
///
/// ```swift
/// let scratch = try Scratch()
/// try Qemu.create(scratch.path("a.qcow2"), size: "64M")
/// ```
public final class Scratch: Sendable {
    /// The directory's absolute path.
    public let directory: String
    private let remove: Bool

    /// Creates a fresh, empty directory.
    /// - Parameter label: an optional prefix for the directory name, e.g. the test name.
    /// - Throws: the `FileManager` error if the directory cannot be created.
    public convenience init(label: String = "") throws {
        try self.init(label: label, removeAlways: false)
    }

    /// `removeAlways` ignores `VMIMG_KEEP_TMP`, for TestSupport's own plumbing (captured output).
    init(label: String, removeAlways: Bool) throws {
        remove = removeAlways || !Scratch.keep
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let name = (label.isEmpty ? "" : label + "-") + UUID().uuidString.lowercased()
        directory = URL(fileURLWithPath: base).appendingPathComponent("vmimg-tests").appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !remove {
            FileHandle.standardError.write(Data("VMIMG_KEEP_TMP=1: keeping \(directory)\n".utf8))
        }
    }

    deinit {
        if remove {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Whether `VMIMG_KEEP_TMP=1` is set.
    public static var keep: Bool { ProcessInfo.processInfo.environment["VMIMG_KEEP_TMP"] == "1" }

    /// The absolute path of `name` inside the directory (nothing is created).
    /// - Parameter name: a file name or relative path.
    /// - Returns: `directory/name`.
    public func path(_ name: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(name).path
    }

    /// A ``ScratchFile`` for `name`, which keeps this directory alive as long as it is used.
    /// - Parameter name: a file name or relative path.
    /// - Returns: the file handle-free value; the file itself is not created.
    public func file(_ name: String) -> ScratchFile {
        ScratchFile(scratch: self, path: path(name))
    }

    /// Creates an image with `qemu-img create -f FORMAT [-o OPTIONS] PATH SIZE` in a new scratch
    /// directory, so `try Scratch().qemuImg(create: "qcow2", size: "64M")` is safe: the returned
    /// file keeps its directory alive.
    /// - Parameters:
    ///   - format: `qcow2`, `raw`, … as qemu-img takes it.
    ///   - size: a qemu-img size, e.g. `64M`.
    ///   - options: `-o` options such as `cluster_size=4096`; none when empty.
    ///   - name: the file name inside the directory.
    /// - Returns: the created file.
    /// - Throws: ``ToolError`` when qemu-img is missing or fails.
    public func qemuImg(create format: String, size: String, options: [String] = [], name: String? = nil)
        throws -> ScratchFile
    {
        let file = self.file(name ?? "image.\(format)")
        try Qemu.create(file.path, format: format, size: size, options: options)
        return file
    }
}

/// A path inside a ``Scratch`` directory that keeps the directory alive, with byte helpers.
public struct ScratchFile: Sendable {
    /// The directory this file lives in.
    public let scratch: Scratch
    /// The file's absolute path.
    public let path: String

    /// Creates a value for `path`, retaining `scratch`.
    public init(scratch: Scratch, path: String) {
        self.scratch = scratch
        self.path = path
    }

    /// The whole file. See ``bytes(_:)``.
    public func bytes() throws -> [UInt8] { try TestSupport.bytes(path) }

    /// Overwrites bytes at `offset`. See ``poke(_:at:bytes:)``.
    public func poke(at offset: UInt64, bytes: [UInt8]) throws {
        try TestSupport.poke(path, at: offset, bytes: bytes)
    }

    /// Overwrites a big-endian integer at `offset`, as qemu-iotests' `poke_file` does.
    public func poke<T: FixedWidthInteger>(at offset: UInt64, bigEndian value: T) throws {
        try TestSupport.poke(path, at: offset, bigEndian: value)
    }

    /// Reads a big-endian integer at `offset`. See ``peek(_:at:as:)``.
    public func peek<T: FixedWidthInteger>(at offset: UInt64, as type: T.Type = T.self) throws -> T {
        try TestSupport.peek(path, at: offset, as: type)
    }
}
