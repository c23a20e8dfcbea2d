import CBlockIO

/// A host file (or block device) accessed with positional I/O only.
///
/// `BlockFile` owns its descriptor and closes it in `deinit`. Every read and write names its
/// offset (`pread`/`pwrite`), so the shared file offset is never used and the class is `Sendable`
/// without a lock on the I/O path. The descriptor is opened `O_CLOEXEC` so a spawned `qemu-img`
/// cannot inherit it and keep our OFD image locks alive.
public final class BlockFile: BlockDevice {
    /// The path the file was opened with; used in error messages.
    public let name: String
    /// Whether the file was opened read-write.
    public let isWritable: Bool
    /// The raw descriptor, for the few callers that hand it to another API (e.g. copy_file_range).
    public let descriptor: Int32
    /// The kind of file behind the descriptor, from `fstat` at open time.
    public let kind: FileKind
    /// Whether `flush()` is a no-op: QEMU's `cache=unsafe` (`BDRV_O_NO_FLUSH`), qemu-img
    /// convert's default for its output. Writes still happen in the same order.
    public let ignoresFlush: Bool
    /// Lock bytes currently held through this descriptor, ascending (guarded by the mutex; lock
    /// calls are rare). An array, not a `Set`: the first `Set<Int64>` costs a scan of every
    /// protocol conformance in the process (~0.5M instructions, a tenth of a small `check`).
    let heldLockBytes = Locked<[Int64]>([])

    /// Opens `path`.
    ///
    /// - Parameters:
    ///   - path: The file to open.
    ///   - writable: Open read-write (`O_RDWR`) instead of read-only.
    ///   - create: Create the file (mode 0644) if it does not exist.
    ///   - truncate: Truncate to zero length (`O_TRUNC`); needs `writable`.
    ///   - ignoresFlush: Make `flush()` a no-op (`cache=unsafe`).
    /// - Throws: ``BlockIOError`` with operation `open` and the errno; a directory gives `EISDIR`
    ///   ("Is a directory") even when opened read-only.
    public init(path: String, writable: Bool, create: Bool = false, truncate: Bool = false, ignoresFlush: Bool = false)
        throws(BlockIOError)
    {
        // Linux truncates even with O_RDONLY|O_TRUNC; refuse the combination outright.
        guard writable || !truncate else {
            throw BlockIOError(path: path, operation: "open", errno: 22, detail: "truncate needs a writable open")
        }
        var fd: Int32 = -1
        let err = unsafe cblockio_open(path, writable ? 1 : 0, create ? 1 : 0, truncate ? 1 : 0, &fd)
        guard err == 0 else { throw BlockIOError(path: path, operation: "open", errno: err) }
        var size: Int64 = 0
        var rawKind: Int32 = 0
        let statErr = unsafe cblockio_fstat(fd, &size, &rawKind)
        guard statErr == 0 else {
            _ = cblockio_close(fd)
            throw BlockIOError(path: path, operation: "stat", errno: statErr)
        }
        self.name = path
        self.isWritable = writable
        self.descriptor = fd
        self.kind = FileKind(rawKind)
        self.ignoresFlush = ignoresFlush
    }

    deinit {
        // Closing drops our OFD locks too; nothing useful can be done with a close error here.
        _ = cblockio_close(descriptor)
    }

    /// Whether something exists at `path` (any kind of file; symlinks are followed).
    public static func exists(_ path: String) -> Bool {
        var kind: Int32 = 0
        return unsafe cblockio_path_type(path, 1, &kind) == 0
    }

    /// The kind of file at `path`, following symlinks when `followSymlinks` is true.
    ///
    /// - Throws: ``BlockIOError`` with operation `stat` (e.g. `ENOENT`).
    public static func kind(of path: String, followSymlinks: Bool = true) throws(BlockIOError) -> FileKind {
        var kind: Int32 = 0
        let err = unsafe cblockio_path_type(path, followSymlinks ? 1 : 0, &kind)
        guard err == 0 else { throw BlockIOError(path: path, operation: "stat", errno: err) }
        return FileKind(kind)
    }

    /// Whether the open file is a regular file (not a FIFO, device, socket).
    public var isRegularFile: Bool { kind == .regular }

    func error(_ operation: String, _ errno: Int32, _ detail: String = "") -> BlockIOError {
        BlockIOError(path: name, operation: operation, errno: errno, detail: detail)
    }

    /// Converts an offset and byte count to `off_t`, refusing values past `Int64.max`.
    func span(_ operation: String, _ offset: UInt64, _ count: Int) throws(BlockIOError) -> Int64 {
        guard let start = Int64(exactly: offset), count >= 0,
            Int64.max - start >= Int64(count)
        else { throw error(operation, 27, "offset \(offset) + \(count) is too large") }  // EFBIG
        return start
    }

    /// Current length in bytes.
    public func length() throws(BlockIOError) -> UInt64 {
        var size: Int64 = 0
        var kind: Int32 = 0
        let err = unsafe cblockio_fstat(descriptor, &size, &kind)
        guard err == 0 else { throw error("stat", err) }
        return UInt64(clamping: size)
    }

    /// Reads `range.count` bytes at `offset` into `buffer[range]`; zeros past the end.
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw error("read", 22, "range \(range) outside a buffer of \(buffer.count) bytes")
        }
        let start = try span("read", offset, range.count)
        guard !range.isEmpty else { return }
        let fd = descriptor
        let err = unsafe buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return Int32(22) }
            return unsafe Self.preadZeroFilling(fd, base + range.lowerBound, range.count, start)
        }
        guard err == 0 else { throw error("read", err) }
    }

    /// Reads `count` bytes at `offset` into a new array without zeroing it first (zeros past the end).
    ///
    /// Preferred over the protocol's `read(count:at:)` for large reads on a concrete `BlockFile`.
    /// - Throws: ``BlockIOError`` with operation `read`.
    public func read(count: Int, at offset: UInt64) throws(BlockIOError) -> [UInt8] {
        let start = try span("read", offset, count)
        let fd = descriptor
        var err: Int32 = 0
        let bytes = unsafe [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress, count > 0 {
                err = unsafe Self.preadZeroFilling(fd, UnsafeMutableRawPointer(base), count, start)
            }
            // On error the contents are garbage-free zeros-or-data; the array is discarded anyway.
            initialized = count
        }
        guard err == 0 else { throw error("read", err) }
        return bytes
    }

    /// Reads `span.count` bytes at `offset` straight into caller-owned memory (zeros past the end).
    ///
    /// - Throws: ``BlockIOError`` with operation `read`.
    public func read(into span: inout MutableSpan<UInt8>, at offset: UInt64) throws(BlockIOError) {
        let count = span.count
        let start = try self.span("read", offset, count)
        guard count > 0 else { return }
        let fd = descriptor
        let err = unsafe span.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return Int32(22) }
            return unsafe Self.preadZeroFilling(fd, base, count, start)
        }
        guard err == 0 else { throw error("read", err) }
    }

    /// pread loop; the part past end of file is zero-filled because qcow2 files are not padded.
    private static func preadZeroFilling(_ fd: Int32, _ base: UnsafeMutableRawPointer, _ count: Int, _ offset: Int64)
        -> Int32
    {
        var done = 0
        let err = unsafe cblockio_pread_full(fd, base, count, offset, &done)
        if err != 0 {
            // Leave no uninitialised bytes behind even on failure.
            unsafe (base).initializeMemory(as: UInt8.self, repeating: 0, count: count)
            return err
        }
        if done < count {
            unsafe (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: count - done)
        }
        return 0
    }

    /// Writes `buffer[range]` at `offset`, growing the device if needed.
    public func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        guard isWritable else { throw error("write", 9, "file is open read-only") }  // EBADF
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw error("write", 22, "range \(range) outside a buffer of \(buffer.count) bytes")
        }
        let start = try span("write", offset, range.count)
        guard !range.isEmpty else { return }
        let fd = descriptor
        let err = unsafe buffer.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return Int32(22) }
            var done = 0
            return unsafe cblockio_pwrite_full(fd, base + range.lowerBound, range.count, start, &done)
        }
        guard err == 0 else { throw error("write", err) }
    }

    /// Makes completed writes durable.
    public func flush() throws(BlockIOError) {
        guard !ignoresFlush else { return }
        let err = cblockio_fdatasync(descriptor)
        guard err == 0 else { throw error("flush", err) }
    }

    /// Truncates or extends (sparse) to `length` bytes.
    public func setLength(_ length: UInt64) throws(BlockIOError) {
        guard isWritable else { throw error("truncate", 9, "file is open read-only") }
        let size = try span("truncate", length, 0)
        let err = cblockio_ftruncate(descriptor, size)
        guard err == 0 else { throw error("truncate", err) }
    }
}

/// What kind of file a path or descriptor refers to (from `stat`'s `st_mode`).
public enum FileKind: Sendable, Equatable {
    case regular, directory, blockDevice, characterDevice, fifo, socket, symlink, other

    init(_ raw: Int32) {
        switch UInt32(bitPattern: raw) {
        case CBLOCKIO_REGULAR.rawValue: self = .regular
        case CBLOCKIO_DIRECTORY.rawValue: self = .directory
        case CBLOCKIO_BLOCK_DEVICE.rawValue: self = .blockDevice
        case CBLOCKIO_CHAR_DEVICE.rawValue: self = .characterDevice
        case CBLOCKIO_FIFO.rawValue: self = .fifo
        case CBLOCKIO_SOCKET.rawValue: self = .socket
        case CBLOCKIO_SYMLINK.rawValue: self = .symlink
        default: self = .other
        }
    }
}
