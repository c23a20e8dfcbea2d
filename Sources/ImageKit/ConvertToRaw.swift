import BlockIO
import QCow2

/// Options for writing a guest image out as a raw file.
public struct RawExportOptions: Sendable {
    /// Bytes read and written per request.
    public var chunkSize: Int = 2 << 20
    /// Runs of zeros at least this long are left as holes (`-S`, default 4 KiB as qemu-img).
    public var sparseSize: Int = 4096
    public init() {}
}

extension VirtualDisk {
    /// Writes the guest content to `device` as raw: the file is sized to `virtualSize`, zero runs
    /// are left as holes (the device must start empty), data is read in large requests.
    /// - Parameter read: reads guest bytes (the active layer, or a snapshot through a closure).
    public func exportRaw(
        to device: any BlockDevice, options: RawExportOptions = RawExportOptions(),
        progress: (UInt64, UInt64) -> Void = { _, _ in },
        read: ((inout [UInt8], Range<Int>, UInt64) throws -> Void)? = nil
    ) throws {
        let size = virtualSize
        try device.setLength(size)
        var buffer = AlignedBytes(count: options.chunkSize)
        var offset: UInt64 = 0
        while offset < size {
            try Cancellation.check()
            let count = Int(min(UInt64(options.chunkSize), size - offset))
            // Skip what the chain knows to be zero without reading it (active layer only).
            if read == nil {
                let e = try chainStatus(at: offset, maxLength: UInt64(count))
                if e.zero {
                    offset += e.length
                    progress(offset, size)
                    continue
                }
                let n = Int(min(e.length, UInt64(count)))
                try self.read(into: &buffer.bytes, range: buffer.indices(0..<n), at: offset)
                try writeNonZero(buffer, count: n, at: offset, to: device, granularity: options.sparseSize)
                offset += UInt64(n)
            } else if let read {
                try read(&buffer.bytes, buffer.indices(0..<count), offset)
                try writeNonZero(buffer, count: count, at: offset, to: device, granularity: options.sparseSize)
                offset += UInt64(count)
            }
            progress(offset, size)
        }
    }
}

/// Writes the window's first `count` bytes at `offset`, skipping aligned all-zero blocks of
/// `granularity` bytes.
func writeNonZero(_ buffer: AlignedBytes, count: Int, at offset: UInt64, to device: any BlockDevice, granularity: Int)
    throws
{
    var i = 0
    while i < count {
        let blockEnd = min(count, i + granularity)
        if isZero(buffer.bytes, buffer.indices(i..<blockEnd)) {
            i = blockEnd
            continue
        }
        var j = blockEnd
        while j < count {
            let next = min(count, j + granularity)
            if isZero(buffer.bytes, buffer.indices(j..<next)) { break }
            j = next
        }
        try device.write(buffer.bytes, range: buffer.indices(i..<j), at: offset + UInt64(i))
        i = j
    }
}

/// Whether `buffer[range]` is all zero bytes (BlockIO's word-at-a-time scan).
@inline(__always) func isZero(_ buffer: [UInt8], _ range: Range<Int>) -> Bool {
    isAllZero(buffer, range: range)
}
