import CBlockIO

// Space management and sparse-file queries. Unsupported fallocate modes (tmpfs without
// PUNCH_HOLE, NFS, FUSE) fall back to the portable behaviour the protocol documents.

extension BlockFile {
    /// errno values meaning "this file system cannot do that", after which we fall back.
    static func isUnsupported(_ err: Int32) -> Bool {
        err == 95 || err == 38 || err == 22 || err == 25  // EOPNOTSUPP, ENOSYS, EINVAL, ENOTTY
    }

    /// Allocates blocks for the range with `fallocate` mode 0, extending the file if it passes
    /// the end (as qemu-img's `preallocation=falloc`). A no-op where unsupported.
    public func preallocate(offset: UInt64, count: UInt64) throws(BlockIOError) {
        guard count > 0 else { return }
        guard isWritable else { throw error("fallocate", 9, "file is open read-only") }
        let (start, length) = try extent("fallocate", offset, count)
        let err = cblockio_fallocate(descriptor, start, length)
        guard err == 0 || Self.isUnsupported(err) else { throw error("fallocate", err) }
    }

    /// Punches a hole (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`); where that is unsupported,
    /// writes zeros over the part inside the file. The file length never changes.
    public func discard(offset: UInt64, count: UInt64) throws(BlockIOError) {
        guard count > 0 else { return }
        guard isWritable else { throw error("discard", 9, "file is open read-only") }
        let (start, length) = try extent("discard", offset, count)
        let err = cblockio_punch_hole(descriptor, start, length)
        if err == 0 { return }
        guard Self.isUnsupported(err) else { throw error("discard", err) }
        try writeZeros(offset: offset, count: count)
    }

    /// Makes the range read as zero, preferring `FALLOC_FL_ZERO_RANGE` (keeps allocation),
    /// then a punched hole, then written zeros. Never changes the length.
    ///
    /// - Throws: ``BlockIOError`` with operation `zero`.
    public func zeroRange(offset: UInt64, count: UInt64) throws(BlockIOError) {
        guard count > 0 else { return }
        guard isWritable else { throw error("zero", 9, "file is open read-only") }
        let (start, length) = try extent("zero", offset, count)
        let err = cblockio_zero_range(descriptor, start, length, 1)
        if err == 0 { return }
        guard Self.isUnsupported(err) else { throw error("zero", err) }
        try discard(offset: offset, count: count)
    }

    /// Writes zeros over `[offset, offset+count)` clipped to the current length.
    func writeZeros(offset: UInt64, count: UInt64) throws(BlockIOError) {
        let end = min(offset + count, try length())
        guard end > offset else { return }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset
        while position < end {
            let n = Int(min(UInt64(chunk.count), end - position))
            try write(chunk, range: 0..<n, at: position)
            position += UInt64(n)
        }
    }

    func extent(_ operation: String, _ offset: UInt64, _ count: UInt64) throws(BlockIOError) -> (Int64, Int64) {
        guard let start = Int64(exactly: offset), let length = Int64(exactly: count), Int64.max - start >= length
        else { throw error(operation, 27, "offset \(offset) + \(count) is too large") }
        return (start, length)
    }

    /// `lseek(SEEK_DATA)`: the next offset ≥ `offset` holding data, or nil if only a hole (or the
    /// end) follows. File systems without SEEK_DATA report everything as data.
    public func nextData(from offset: UInt64) throws(BlockIOError) -> UInt64? {
        guard let start = Int64(exactly: offset) else { return nil }
        var result: Int64 = 0
        let err = unsafe cblockio_seek_data(descriptor, start, &result)
        switch err {
        case 0: return UInt64(result)
        case 6: return nil  // ENXIO: no data at or after offset
        case _ where Self.isUnsupported(err): return offset < (try length()) ? offset : nil
        default: throw error("seek", err)
        }
    }

    /// `lseek(SEEK_HOLE)`: the next offset ≥ `offset` starting a hole; the length if the data
    /// runs to the end, and `offset` itself when it is at or past the end.
    public func nextHole(from offset: UInt64) throws(BlockIOError) -> UInt64 {
        guard let start = Int64(exactly: offset) else { return offset }
        var result: Int64 = 0
        let err = unsafe cblockio_seek_hole(descriptor, start, &result)
        switch err {
        case 0: return UInt64(result)
        case 6: return offset  // ENXIO: offset is at or past the end
        case _ where Self.isUnsupported(err): return max(offset, try length())
        default: throw error("seek", err)
        }
    }

    /// Access-pattern hints for the page cache (`posix_fadvise`).
    public enum Advice: Sendable {
        case normal, sequential, random, willNeed, dontNeed
    }

    /// Tells the kernel how the range will be read (`posix_fadvise`); errors are ignored because
    /// advice never changes results. A `count` of 0 means "to the end of the file".
    public func advise(_ advice: Advice, offset: UInt64 = 0, count: UInt64 = 0) {
        guard let start = Int64(exactly: offset), let length = Int64(exactly: count) else { return }
        let raw: cblockio_advice
        switch advice {
        case .normal: raw = CBLOCKIO_ADV_NORMAL
        case .sequential: raw = CBLOCKIO_ADV_SEQUENTIAL
        case .random: raw = CBLOCKIO_ADV_RANDOM
        case .willNeed: raw = CBLOCKIO_ADV_WILLNEED
        case .dontNeed: raw = CBLOCKIO_ADV_DONTNEED
        }
        _ = cblockio_fadvise(descriptor, start, length, Int32(bitPattern: raw.rawValue))
    }

    /// Copies bytes from `source` to this file in the kernel (`copy_file_range`, reflinks on
    /// btrfs/XFS), falling back to read/write where the kernel refuses (cross-device, old kernels).
    ///
    /// Bytes past the end of `source` are not copied; returns how many were.
    /// - Throws: ``BlockIOError`` with operation `copy`, `read` or `write`.
    @discardableResult
    public func copy(from source: BlockFile, at sourceOffset: UInt64, count: UInt64, to offset: UInt64)
        throws(BlockIOError) -> UInt64
    {
        guard isWritable else { throw error("copy", 9, "file is open read-only") }
        _ = try extent("copy", sourceOffset, count)
        _ = try extent("copy", offset, count)
        var copied: UInt64 = 0
        var useKernel = true
        while copied < count {
            let want = Int(min(count - copied, 1 << 30))
            if useKernel {
                var n = 0
                let err = unsafe cblockio_copy_file_range(
                    source.descriptor, Int64(sourceOffset + copied), descriptor, Int64(offset + copied), want, &n)
                if err == 0 {
                    if n == 0 { break }  // end of source
                    copied += UInt64(n)
                    continue
                }
                // EXDEV (older kernels, across file systems) and EPERM (some FUSE) mean "copy by hand".
                guard Self.isUnsupported(err) || err == 18 || err == 1 else { throw error("copy", err) }
                useKernel = false
            }
            let chunk = min(want, 1 << 20)
            let available = try source.length()
            guard sourceOffset + copied < available else { break }
            let n = Int(min(UInt64(chunk), available - (sourceOffset + copied)))
            let bytes = try source.read(count: n, at: sourceOffset + copied)
            try write(bytes, at: offset + copied)
            copied += UInt64(n)
        }
        return copied
    }
}
