import BlockIO
import ImageKit
import NBDProtocol
import QCow2
import QCow2Format

/// One export's image with the operations NBD needs, over qcow2 and raw alike. Thread-safe: the
/// engine locks its own metadata, and raw files do positional I/O. Every call blocks; run it on a
/// thread pool, never on an event loop.
public final class NBDBackend: Sendable {
    /// A run of a READ reply: zeros (sent as `NBD_REPLY_TYPE_OFFSET_HOLE`) or bytes.
    public enum ReadPiece: Sendable, Equatable {
        /// `length` bytes of zeros at `offset`.
        case hole(offset: UInt64, length: UInt32)
        /// Bytes at `offset`.
        case data(offset: UInt64, bytes: [UInt8])
    }

    /// The opened image (top of its chain).
    public let disk: any VirtualDisk
    /// The internal snapshot served instead of the active layer, if any (always read-only).
    public let snapshot: SnapshotEntry?
    /// Size in bytes the client sees.
    public let size: UInt64
    /// Whether write operations are allowed.
    public let isWritable: Bool

    /// Wraps an opened disk.
    /// - Parameters:
    ///   - disk: an image from `ImageOpener.open`; writable only when opened writable.
    ///   - snapshot: serve this internal snapshot of a qcow2 image (read-only).
    ///   - writable: whether to allow writes (needs a writable open and no snapshot).
    public init(disk: any VirtualDisk, snapshot: SnapshotEntry? = nil, writable: Bool) {
        self.disk = disk
        self.snapshot = snapshot
        self.size = snapshot.flatMap { $0.diskSize } ?? disk.virtualSize
        self.isWritable = writable && snapshot == nil
    }

    /// Reads `length` bytes at `offset` into one array.
    public func read(offset: UInt64, length: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        if let snapshot, let image = disk as? QCow2Image {
            try image.read(into: &bytes, range: 0..<length, at: offset, snapshot: snapshot)
        } else {
            try disk.read(into: &bytes, range: 0..<length, at: offset)
        }
        return bytes
    }

    /// Reads a range as pieces: runs that read as zeros become holes, the rest is read.
    /// Snapshots have no status query, so they are read whole.
    public func readPieces(offset: UInt64, length: Int) throws -> [ReadPiece] {
        guard snapshot == nil, length > 0 else {
            return [.data(offset: offset, bytes: try read(offset: offset, length: length))]
        }
        var pieces: [ReadPiece] = []
        let end = offset + UInt64(length)
        var position = offset
        while position < end {
            let extent = try disk.chainStatus(at: position, maxLength: end - position)
            let run = max(1, min(extent.length, end - position))
            if extent.zero && !extent.data {
                // Safe: run ≤ length ≤ 32 MiB.
                if case .hole(let start, let previous) = pieces.last {
                    pieces[pieces.count - 1] = .hole(offset: start, length: previous + UInt32(run))
                } else {
                    pieces.append(.hole(offset: position, length: UInt32(run)))
                }
            } else {
                let bytes = try read(offset: position, length: Int(run))
                if case .data(let start, let previous) = pieces.last {
                    pieces[pieces.count - 1] = .data(offset: start, bytes: previous + bytes)
                } else {
                    pieces.append(.data(offset: position, bytes: bytes))
                }
            }
            position += run
        }
        return pieces
    }

    /// `base:allocation` descriptors from `offset`, covering at most `length` bytes.
    /// - Parameters:
    ///   - offset: start (inside the export).
    ///   - length: bytes wanted (≤ UInt32.max).
    ///   - maxExtents: descriptors at most (1 for `NBD_CMD_FLAG_REQ_ONE`).
    /// - Returns: (length, flags) pairs, at least one.
    public func allocation(offset: UInt64, length: UInt32, maxExtents: Int) throws -> [(length: UInt32, flags: UInt32)]
    {
        guard snapshot == nil else { return [(length, 0)] }
        var extents: [(length: UInt32, flags: UInt32)] = []
        let end = offset + UInt64(length)
        var position = offset
        while position < end, extents.count < maxExtents {
            let extent = try disk.chainStatus(at: position, maxLength: end - position)
            let run = UInt32(max(1, min(extent.length, end - position)))
            // QEMU's mapping: not data → HOLE, reads as zeros → ZERO.
            var state: NBDAllocationState = []
            if !extent.data { state.insert(.hole) }
            if extent.zero { state.insert(.zero) }
            if let last = extents.last, last.flags == state.rawValue {
                extents[extents.count - 1].length = last.length + run
            } else {
                extents.append((run, state.rawValue))
            }
            position += UInt64(run)
        }
        return extents
    }

    /// Writes `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws {
        switch disk {
        case let image as QCow2Image: try image.write(bytes, range: 0..<bytes.count, at: offset)
        case let raw as RawImage: try raw.device.write(bytes, range: 0..<bytes.count, at: offset)
        default: throw NBDErrno.enotsup
        }
    }

    /// Makes a range read as zeros; `mayUnmap` lets it release space (no `NBD_CMD_FLAG_NO_HOLE`).
    public func writeZeroes(at offset: UInt64, count: UInt64, mayUnmap: Bool) throws {
        switch disk {
        case let image as QCow2Image: try image.writeZeroes(at: offset, count: count, unmap: mayUnmap)
        case let raw as RawImage:
            if mayUnmap {
                try raw.device.discard(offset: offset, count: count)
            } else {
                try writeZeroBytes(raw.device, at: offset, count: count)
            }
        default: throw NBDErrno.enotsup
        }
    }

    /// `NBD_CMD_TRIM`: advisory; qcow2 drops whole clusters, raw punches a hole.
    public func trim(at offset: UInt64, count: UInt64) throws {
        switch disk {
        case let image as QCow2Image: try image.discard(at: offset, count: count)
        case let raw as RawImage: try raw.device.discard(offset: offset, count: count)
        default: throw NBDErrno.enotsup
        }
    }

    /// Makes completed writes durable.
    public func flush() throws {
        guard isWritable else { return }
        switch disk {
        case let image as QCow2Image: try image.flush()
        case let raw as RawImage: try raw.device.flush()
        default: break
        }
    }

    func writeZeroBytes(_ device: any BlockDevice, at offset: UInt64, count: UInt64) throws {
        let chunk = [UInt8](repeating: 0, count: Int(min(count, 1 << 20)))
        var done: UInt64 = 0
        while done < count {
            let n = Int(min(UInt64(chunk.count), count - done))
            try device.write(chunk, range: 0..<n, at: offset + done)
            done += UInt64(n)
        }
    }
}
