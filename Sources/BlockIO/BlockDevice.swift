/// A byte-addressed store the engines read and write: a host file, a memory buffer in tests,
/// or a wrapper that injects faults. All I/O is positional, so one device may be used from
/// several threads at once.
public protocol BlockDevice: AnyObject, Sendable {
    /// The path (or a descriptive name) used in error messages.
    var name: String { get }
    /// Whether writes are allowed.
    var isWritable: Bool { get }
    /// Current length in bytes.
    func length() throws(BlockIOError) -> UInt64
    /// Reads `range.count` bytes at `offset` into `buffer[range]`. Bytes past the end of the
    /// device read as zero (qcow2 files are not padded to a cluster multiple).
    func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError)
    /// Writes `buffer[range]` at `offset`, growing the device if needed; retries short writes.
    func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError)
    /// Makes every completed write durable (fdatasync).
    func flush() throws(BlockIOError)
    /// Truncates or extends (sparse) to `length` bytes.
    func setLength(_ length: UInt64) throws(BlockIOError)
    /// Reserves space without changing contents (fallocate mode 0); may be a no-op.
    func preallocate(offset: UInt64, count: UInt64) throws(BlockIOError)
    /// Deallocates a byte range so it reads as zero (fallocate PUNCH_HOLE|KEEP_SIZE); falls back to
    /// writing zeros where punching is not supported.
    func discard(offset: UInt64, count: UInt64) throws(BlockIOError)
    /// The next offset ≥ `offset` that holds data (SEEK_DATA), or nil if only a hole follows.
    /// Devices that cannot tell return `offset` (everything is data).
    func nextData(from offset: UInt64) throws(BlockIOError) -> UInt64?
    /// The next offset ≥ `offset` that starts a hole (SEEK_HOLE); the length if none before the end.
    func nextHole(from offset: UInt64) throws(BlockIOError) -> UInt64
}

extension BlockDevice {
    /// Reads `count` bytes at `offset` into a new array (zeros past the end).
    public func read(count: Int, at offset: UInt64) throws(BlockIOError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try read(into: &bytes, range: 0..<count, at: offset)
        return bytes
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(BlockIOError) {
        try write(bytes, range: 0..<bytes.count, at: offset)
    }

    /// Reads `count` big-endian 64-bit entries (L1, L2, refcount tables).
    public func readTable(at offset: UInt64, count: Int) throws(BlockIOError) -> [UInt64] {
        let bytes = try read(count: count * 8, at: offset)
        var table = [UInt64](repeating: 0, count: count)
        for i in 0..<count {
            var value: UInt64 = 0
            for j in 0..<8 { value = value << 8 | UInt64(bytes[i * 8 + j]) }
            table[i] = value
        }
        return table
    }

    /// Writes `entries` as big-endian 64-bit values at `offset`.
    public func writeTable(_ entries: [UInt64], at offset: UInt64) throws(BlockIOError) {
        var bytes = [UInt8](repeating: 0, count: entries.count * 8)
        for (i, value) in entries.enumerated() {
            for j in 0..<8 { bytes[i * 8 + j] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(j))) }
        }
        try write(bytes, at: offset)
    }
}

/// An I/O failure with the device, the operation and the errno, printed as one line.
public struct BlockIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file (or device name) involved.
    public var path: String
    /// What failed: `open`, `read`, `write`, `flush`, `lock`, ….
    public var operation: String
    /// The errno value (EAGAIN for lock conflicts).
    public var errno: Int32
    /// Extra text replacing the errno text in the message, e.g. QEMU's lock message.
    public var detail: String

    /// An error for `operation` on `path`.
    public init(path: String, operation: String, errno: Int32, detail: String = "") {
        self.path = path
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// One line: `<path>: <operation> failed: <reason>`.
    public var description: String {
        detail.isEmpty ? "\(path): \(operation) failed: \(errnoText)" : "\(path): \(operation) failed: \(detail)"
    }

    /// strerror-style text for the well-known codes, so messages match qemu-img's.
    public var errnoText: String {
        switch errno {
        case 2: return "No such file or directory"
        case 5: return "Input/output error"
        case 11: return "Resource temporarily unavailable"
        case 13: return "Permission denied"
        case 17: return "File exists"
        case 21: return "Is a directory"
        case 22: return "Invalid argument"
        case 27: return "File too large"
        case 28: return "No space left on device"
        case 30: return "Read-only file system"
        case 95: return "Operation not supported"
        default: return "errno \(errno)"
        }
    }
}
