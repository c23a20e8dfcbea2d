/// An in-memory ``BlockDevice`` for tests: a growable byte array behind a mutex.
///
/// Everything inside the length is data (no holes); `discard` zeroes; `flush` does nothing.
public final class MemoryDevice: BlockDevice {
    /// A descriptive name for error messages.
    public let name: String
    /// Whether writes are allowed.
    public let isWritable: Bool
    private let storage: Locked<[UInt8]>

    /// A device holding `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: Initial contents; the length is `bytes.count`.
    ///   - name: Name used in errors.
    ///   - writable: Whether writes are allowed.
    public init(bytes: [UInt8] = [], name: String = "memory", writable: Bool = true) {
        self.name = name
        self.isWritable = writable
        self.storage = Locked(bytes)
    }

    /// A copy of the current contents.
    public var bytes: [UInt8] { storage.withLock { $0 } }

    private func error(_ operation: String, _ errno: Int32, _ detail: String = "") -> BlockIOError {
        BlockIOError(path: name, operation: operation, errno: errno, detail: detail)
    }

    /// Byte index for `offset + count`, refusing ends an array could not hold.
    private func end(_ operation: String, _ offset: UInt64, _ count: Int) throws(BlockIOError) -> Int {
        guard let start = Int(exactly: offset), count >= 0, Int.max - start >= count else {
            throw error(operation, 27, "offset \(offset) + \(count) is too large")
        }
        return start + count
    }

    /// Current length in bytes.
    public func length() throws(BlockIOError) -> UInt64 { storage.withLock { UInt64($0.count) } }

    /// Reads `range.count` bytes at `offset` into `buffer[range]`; zeros past the end.
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw error("read", 22, "range \(range) outside a buffer of \(buffer.count) bytes")
        }
        let end = try end("read", offset, range.count)
        let start = end - range.count
        let copied: [UInt8] = storage.withLock { data in
            guard start < data.count else { return [] }
            return Array(data[start..<min(end, data.count)])
        }
        buffer.replaceSubrange(range.lowerBound..<range.lowerBound + copied.count, with: copied)
        for i in (range.lowerBound + copied.count)..<range.upperBound { buffer[i] = 0 }
    }

    /// Writes `buffer[range]` at `offset`, growing the device if needed.
    public func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        guard isWritable else { throw error("write", 9, "device is read-only") }
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw error("write", 22, "range \(range) outside a buffer of \(buffer.count) bytes")
        }
        let end = try end("write", offset, range.count)
        storage.withLock { data in
            if data.count < end { data.append(contentsOf: repeatElement(0, count: end - data.count)) }
            data.replaceSubrange(end - range.count..<end, with: buffer[range])
        }
    }

    /// Makes completed writes durable.
    public func flush() throws(BlockIOError) {}

    /// Truncates or extends (sparse) to `length` bytes.
    public func setLength(_ length: UInt64) throws(BlockIOError) {
        guard isWritable else { throw error("truncate", 9, "device is read-only") }
        let newCount = try end("truncate", length, 0)
        storage.withLock { data in
            if newCount < data.count {
                data.removeSubrange(newCount...)
            } else {
                data.append(contentsOf: repeatElement(0, count: newCount - data.count))
            }
        }
    }

    /// Grows the device when the range passes the end, like `fallocate` mode 0.
    public func preallocate(offset: UInt64, count: UInt64) throws(BlockIOError) {
        guard isWritable else { throw error("fallocate", 9, "device is read-only") }
        guard let n = Int(exactly: count) else { throw error("fallocate", 27, "count \(count) is too large") }
        let end = try end("fallocate", offset, n)
        storage.withLock { data in
            if data.count < end { data.append(contentsOf: repeatElement(0, count: end - data.count)) }
        }
    }

    /// Zeroes the part of the range inside the device; the length never changes.
    public func discard(offset: UInt64, count: UInt64) throws(BlockIOError) {
        guard isWritable else { throw error("discard", 9, "device is read-only") }
        storage.withLock { data in
            guard offset < UInt64(data.count) else { return }
            let start = Int(offset)
            let end = Int(min(UInt64(data.count), offset &+ min(count, UInt64(data.count))))
            for i in start..<max(start, end) { data[i] = 0 }
        }
    }

    /// The next offset ≥ `offset` holding data, or nil.
    public func nextData(from offset: UInt64) throws(BlockIOError) -> UInt64? {
        offset < (try length()) ? offset : nil
    }

    /// The next offset ≥ `offset` starting a hole.
    public func nextHole(from offset: UInt64) throws(BlockIOError) -> UInt64 {
        max(offset, try length())
    }
}
