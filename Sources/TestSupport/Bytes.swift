import Foundation

/// Errors from the byte helpers.
public enum BytesError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened.
    case cannotOpen(path: String)
    /// Fewer bytes than asked for were available.
    case shortRead(path: String, offset: UInt64, wanted: Int, got: Int)

    /// One line naming the file and what went wrong.
    public var description: String {
        switch self {
        case .cannotOpen(let path): "\(path): cannot open"
        case .shortRead(let path, let offset, let wanted, let got):
            "\(path): wanted \(wanted) bytes at \(offset), got \(got)"
        }
    }
}

/// Reads a whole file.
/// - Parameter path: the file.
/// - Returns: its bytes.
/// - Throws: the Foundation read error.
public func bytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Reads `count` bytes at `offset`.
/// - Parameters:
///   - path: the file.
///   - offset: byte offset.
///   - count: how many bytes.
/// - Returns: exactly `count` bytes.
/// - Throws: ``BytesError`` when the file cannot be opened or is too short.
public func bytes(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw BytesError.cannotOpen(path: path) }
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    let data = try handle.read(upToCount: count) ?? Data()
    guard data.count == count else {
        throw BytesError.shortRead(path: path, offset: offset, wanted: count, got: data.count)
    }
    return [UInt8](data)
}

/// Overwrites `bytes` at `offset` in an existing file (extending it if the range runs past the end),
/// like qemu-iotests' `poke_file`.
/// - Parameters:
///   - path: the file.
///   - offset: byte offset.
///   - bytes: the new bytes.
/// - Throws: ``BytesError/cannotOpen(path:)`` or the Foundation write error.
public func poke(_ path: String, at offset: UInt64, bytes: [UInt8]) throws {
    guard let handle = FileHandle(forUpdatingAtPath: path) else { throw BytesError.cannotOpen(path: path) }
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data(bytes))
}

/// Overwrites a big-endian integer at `offset`; the width is the type's (`UInt32(33)` writes 4 bytes).
/// - Parameters:
///   - path: the file.
///   - offset: byte offset, usually a qcow2 spec offset (`cluster_bits` is at 20).
///   - value: the value to store big-endian.
/// - Throws: as ``poke(_:at:bytes:)``.
public func poke<T: FixedWidthInteger>(_ path: String, at offset: UInt64, bigEndian value: T) throws {
    try poke(path, at: offset, bytes: bigEndianBytes(value))
}

/// Reads a big-endian integer at `offset`.
/// - Parameters:
///   - path: the file.
///   - offset: byte offset.
///   - type: the integer type, which decides the width.
/// - Returns: the decoded value.
/// - Throws: as ``bytes(_:at:count:)``.
public func peek<T: FixedWidthInteger>(_ path: String, at offset: UInt64, as type: T.Type = T.self) throws -> T {
    let raw = try bytes(path, at: offset, count: MemoryLayout<T>.size)
    return raw.reduce(T.zero) { ($0 << 8) | T(truncatingIfNeeded: $1) }
}

/// The big-endian bytes of `value`, most significant first.
/// - Parameter value: any fixed-width integer.
/// - Returns: `MemoryLayout<T>.size` bytes.
public func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    let width = MemoryLayout<T>.size
    return (0..<width).map { i in UInt8(truncatingIfNeeded: value >> ((width - 1 - i) * 8)) }
}

/// The SHA-256 of a file as lowercase hex, computed by coreutils' `sha256sum` (fast on big images;
/// matches the guest's `VMIMG-SHA256` marker).
/// - Parameter path: the file.
/// - Returns: 64 hex digits.
/// - Throws: ``ToolError`` when `sha256sum` fails.
public func fileSHA256(_ path: String) throws -> String {
    let result = try Tool.run("sha256sum", ["--", path]).checked()
    return String(result.stdoutText.prefix(64))
}

/// Whether two files have the same bytes (compared in 1 MiB chunks, so big images are fine).
/// - Parameters:
///   - a: the first file.
///   - b: the second file.
/// - Returns: true when both have the same length and content.
/// - Throws: ``BytesError/cannotOpen(path:)`` or a read error.
public func filesEqual(_ a: String, _ b: String) throws -> Bool {
    guard let ha = FileHandle(forReadingAtPath: a) else { throw BytesError.cannotOpen(path: a) }
    defer { try? ha.close() }
    guard let hb = FileHandle(forReadingAtPath: b) else { throw BytesError.cannotOpen(path: b) }
    defer { try? hb.close() }
    while true {
        let da = try ha.read(upToCount: 1 << 20) ?? Data()
        let db = try hb.read(upToCount: 1 << 20) ?? Data()
        if da != db { return false }
        if da.isEmpty { return true }
    }
}

/// A short hex dump for failure messages: `00000010: 00 00 00 0c …`, 16 bytes a line.
/// - Parameters:
///   - bytes: the bytes to show.
///   - base: the offset printed for the first byte.
/// - Returns: the dump, one line per 16 bytes.
public func hexDump(_ bytes: [UInt8], base: UInt64 = 0) -> String {
    stride(from: 0, to: bytes.count, by: 16).map { start in
        let line = bytes[start..<min(start + 16, bytes.count)]
        let offset = String(base + UInt64(start), radix: 16)
        let hex = line.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ")
        return String(offset.leftPadded(to: 8)) + ": " + hex
    }.joined(separator: "\n")
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
