import BlockIO
import QCow2

/// A raw image: guest offset = file offset; holes (SEEK_HOLE) read as zeros.
public final class RawImage: VirtualDisk {
    public let filename: String
    public let formatName = "raw"
    public let device: any BlockDevice
    public let virtualSize: UInt64
    public var backingDisk: (any VirtualDisk)? { nil }

    public init(device: any BlockDevice, filename: String) throws {
        self.device = device
        self.filename = filename
        // QEMU counts raw files in 512-byte sectors (`bdrv_getlength` rounds up): a 1000-byte file
        // is a 1 KiB disk whose tail reads as zeros (reads past the end are zero-filled).
        let length = try device.length()
        virtualSize = length % 512 == 0 ? length : (length / 512 + 1) * 512
    }

    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws {
        try device.read(into: &buffer, range: range, at: offset)
    }

    /// Data and holes as SEEK_DATA/SEEK_HOLE report them; QEMU reports holes of a raw file as
    /// zero with an offset, and data with its offset.
    public func blockStatus(at offset: UInt64, maxLength: UInt64) throws -> BlockStatus {
        let end = min(virtualSize, offset + maxLength)
        guard offset < end else {
            return BlockStatus(kind: .unallocated(hostOffset: nil), length: maxLength, file: filename)
        }
        let dataStart = try device.nextData(from: offset) ?? end
        if dataStart > offset {
            return BlockStatus(kind: .zero(hostOffset: offset), length: min(dataStart, end) - offset, file: filename)
        }
        let hole = min(try device.nextHole(from: offset), end)
        return BlockStatus(kind: .data(hostOffset: offset), length: max(hole, offset + 1) - offset, file: filename)
    }
}
