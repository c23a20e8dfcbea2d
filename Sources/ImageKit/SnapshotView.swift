import BlockIO
import QCow2
import QCow2Format

/// An internal snapshot seen as a read-only disk, for `convert -l snapshot.name=S`: its size is
/// the snapshot's `disk_size`, unallocated clusters read from the image's backing disk.
public final class SnapshotView: VirtualDisk {
    public let image: QCow2Image
    public let snapshot: SnapshotEntry
    let table: [UInt64]

    /// Opens the snapshot `selector` picks in `image`.
    /// - Throws: `SnapshotError.notFound` (operation "load"), I/O errors reading its L1 table.
    public init(image: QCow2Image, selector: SnapshotSelector) throws {
        guard let entry = image.findSnapshot(selector) else {
            throw SnapshotError.notFound(operation: "load", selector: selector.description)
        }
        self.image = image
        snapshot = entry
        table = try image.snapshotL1(entry)
    }

    public var filename: String { image.filename }
    public var formatName: String { image.formatName }
    public var virtualSize: UInt64 { snapshot.diskSize ?? image.virtualSize }
    public var backingDisk: (any VirtualDisk)? { image.backingDisk }

    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws {
        let size = virtualSize
        let inside = offset >= size ? 0 : Int(min(UInt64(range.count), size - offset))
        if inside > 0 {
            try image.read(
                into: &buffer, range: range.lowerBound..<(range.lowerBound + inside), at: offset, snapshotTable: table)
        }
        for i in (range.lowerBound + inside)..<range.upperBound { buffer[i] = 0 }
    }

    public func blockStatus(at offset: UInt64, maxLength: UInt64) throws -> BlockStatus {
        let size = virtualSize
        guard offset < size else {
            return BlockStatus(kind: .unallocated(hostOffset: nil), length: maxLength, file: filename)
        }
        return try image.blockStatus(at: offset, maxLength: min(maxLength, size - offset), snapshotTable: table)
    }
}
