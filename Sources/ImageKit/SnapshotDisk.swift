import QCow2
import QCow2Format

/// An internal snapshot of a qcow2 image seen as a read-only disk (`convert -l`, `compare -l`).
public final class SnapshotDisk: VirtualDisk {
    public let image: QCow2Image
    public let snapshot: SnapshotEntry
    let l1: [UInt64]
    public var filename: String { image.filename }
    public var formatName: String { "qcow2" }
    public var backingDisk: (any VirtualDisk)? { image.backingDisk }
    public var virtualSize: UInt64 { snapshot.diskSize ?? image.virtualSize }

    public init(image: QCow2Image, snapshot: SnapshotEntry) throws {
        self.image = image
        self.snapshot = snapshot
        l1 = try image.snapshotL1(snapshot)
    }

    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws {
        let size = virtualSize
        guard offset < size else {
            for i in range { buffer[i] = 0 }
            return
        }
        let inside = Int(min(UInt64(range.count), size - offset))
        try image.read(into: &buffer, range: range.lowerBound..<(range.lowerBound + inside), at: offset, l1: l1)
        for i in (range.lowerBound + inside)..<range.upperBound { buffer[i] = 0 }
    }

    public func blockStatus(at offset: UInt64, maxLength: UInt64) throws -> BlockStatus {
        try image.blockStatus(at: offset, maxLength: maxLength, l1: l1, size: virtualSize)
    }
}

/// qemu-img's `-l` parameter: `snapshot.id=ID`, `snapshot.name=NAME` (comma separated), or a
/// bare value matched as an ID first, then as a name.
public struct SnapshotSelector: Sendable {
    public var id: String?
    public var name: String?
    public var bare: String?

    public init(parameter: String) {
        if parameter.hasPrefix("snapshot.") {
            for part in parameter.split(separator: ",") {
                if part.hasPrefix("snapshot.id=") { id = String(part.dropFirst("snapshot.id=".count)) }
                if part.hasPrefix("snapshot.name=") { name = String(part.dropFirst("snapshot.name=".count)) }
            }
        } else {
            bare = parameter
        }
    }

    public func find(in entries: [SnapshotEntry]) -> SnapshotEntry? {
        if let bare {
            return entries.first { $0.id == bare } ?? entries.first { $0.name == bare }
        }
        return entries.first { (id == nil || $0.id == id) && (name == nil || $0.name == name) }
    }
}
