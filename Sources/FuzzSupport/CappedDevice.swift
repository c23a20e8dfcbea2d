import BlockIO

/// A memory device with a maximum length, like a file system's largest file: growing past it fails
/// with EFBIG. `MemoryDevice` is dense, so without a cap a hostile offset that a real (sparse) file
/// would absorb turns into a multi-GiB allocation in the harness. 256 MiB, below the check's own
/// 1 GiB bound on growing a file to take in a refcount block past its end: at 1 GiB, one such
/// repair (a sparse truncate on a real file) took the harness past libFuzzer's 2 GiB RSS limit
/// (the dense array grows by doubling, under ASan's quarantine), 2026-12-05.
public final class CappedDevice: BlockDevice {
    public static let defaultCap: UInt64 = 256 << 20
    let base: MemoryDevice
    let cap: UInt64

    public init(bytes: [UInt8], name: String, writable: Bool, cap: UInt64 = CappedDevice.defaultCap) {
        base = MemoryDevice(bytes: bytes, name: name, writable: writable)
        self.cap = cap
    }

    public var name: String { base.name }
    public var isWritable: Bool { base.isWritable }
    public var bytes: [UInt8] { base.bytes }

    private func within(_ operation: String, _ offset: UInt64, _ count: UInt64) throws(BlockIOError) {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= cap else {
            throw BlockIOError(path: name, operation: operation, errno: 27, detail: "past the \(cap)-byte device cap")
        }
    }

    public func length() throws(BlockIOError) -> UInt64 { try base.length() }
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        try base.read(into: &buffer, range: range, at: offset)
    }
    public func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        try within("write", offset, UInt64(max(0, range.count)))
        try base.write(buffer, range: range, at: offset)
    }
    public func flush() throws(BlockIOError) { try base.flush() }
    public func setLength(_ length: UInt64) throws(BlockIOError) {
        try within("truncate", length, 0)
        try base.setLength(length)
    }
    public func preallocate(offset: UInt64, count: UInt64) throws(BlockIOError) {
        try within("fallocate", offset, count)
        try base.preallocate(offset: offset, count: count)
    }
    public func discard(offset: UInt64, count: UInt64) throws(BlockIOError) {
        try base.discard(offset: offset, count: count)
    }
    public func nextData(from offset: UInt64) throws(BlockIOError) -> UInt64? { try base.nextData(from: offset) }
    public func nextHole(from offset: UInt64) throws(BlockIOError) -> UInt64 { try base.nextHole(from: offset) }
}
