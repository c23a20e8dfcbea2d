import BlockIO
import ImageKit
import QCow2
import QCow2Format

/// Bounds that keep one input within libFuzzer's per-input timeout: guest bytes read, block-status
/// calls, extents mapped. Errors are expected; traps, hangs and huge allocations are the bugs.
public enum FuzzLimits {
    public static let guestReadBytes: UInt64 = 16 << 20
    public static let statusCalls = 20_000
    public static let mapLength: UInt64 = 64 << 20
    public static let cacheBytes = 1 << 20
}

/// Opens `bytes` as a qcow2 image on a memory device, as the CLI would open a file.
public func openImage(_ bytes: [UInt8], writable: Bool) -> QCow2Image? {
    let device = CappedDevice(bytes: bytes, name: "fuzz.qcow2", writable: writable)
    do {
        let (header, extensions) = try QCow2Image.readHeader(from: device)
        return try QCow2Image(
            device: device, filename: "fuzz.qcow2", header: header, extensions: extensions, writable: writable,
            cache: QCow2CacheOptions(cacheSize: UInt64(FuzzLimits.cacheBytes)), requireDataFile: false)
    } catch {
        return nil
    }
}

/// FuzzImage's body: open read-only, read every allocated guest byte (bounded), block status,
/// map, snapshots, info, check.
public enum ImageTarget {
    public static func run(_ bytes: [UInt8]) {
        _ = try? ImageOpener.probe(MemoryDevice(bytes: bytes, name: "fuzz", writable: false))
        guard let image = openImage(bytes, writable: false) else { return }
        exercise(image)
        _ = try? ImageInspector.describe(image, chain: true)
        exerciseBitmaps(image)
        for snapshot in image.snapshots.prefix(4) {
            guard let disk = try? SnapshotView(image: image, selector: .id(snapshot.id)) else { continue }
            exercise(disk)
        }
        _ = try? image.check()
    }

    /// Persistent bitmaps as `convert --bitmaps` reads them: each table, and its first pieces
    /// cut to a smaller and a larger cluster than the image's.
    static func exerciseBitmaps(_ image: QCow2Image) {
        guard let bitmaps = try? image.persistentBitmaps() else { return }
        for entry in bitmaps.prefix(4) {
            guard let table = try? image.bitmapTable(entry) else { continue }
            for clusterSize in [512, 1 << 16] {
                for piece in 0..<4 {
                    _ = try? image.bitmapData(entry, table: table, piece: piece, clusterSize: clusterSize)
                }
            }
        }
    }

    /// Reads what block status says is there, then a few unaligned reads, then `map`.
    public static func exercise(_ disk: any VirtualDisk) {
        let size = disk.virtualSize
        var buffer = [UInt8](repeating: 0, count: 1 << 17)
        var budget = FuzzLimits.guestReadBytes
        var offset: UInt64 = 0
        var calls = 0
        while offset < size, budget > 0, calls < FuzzLimits.statusCalls {
            calls += 1
            guard let status = try? disk.blockStatus(at: offset, maxLength: size - offset) else { break }
            require(status.length > 0, "block status at \(offset) of \(size) returned an empty run")
            require(status.length <= size - offset, "block status at \(offset) runs past the end: \(status.length)")
            if !status.isUnallocated {
                var pos = offset
                let end = offset + min(status.length, budget)
                while pos < end {
                    let n = Int(min(UInt64(buffer.count), end - pos))
                    if (try? disk.read(into: &buffer, range: 0..<n, at: pos)) == nil { break }
                    pos += UInt64(n)
                }
                budget -= end - offset
            }
            offset += status.length
        }
        // Unaligned reads across cluster and L2 boundaries, and one past the end.
        for (at, count) in [(UInt64(0), 4097), (size / 2 | 511, 70_001), (size &- 3, 4096), (size &+ 512, 512)] {
            guard count <= buffer.count else { continue }
            _ = try? disk.read(into: &buffer, range: 7..<(7 + min(count, buffer.count - 7)), at: at)
        }
        if let extents = try? disk.mapExtents(start: 0, length: min(size, FuzzLimits.mapLength)) {
            var next: UInt64 = 0
            for e in extents {
                require(e.start == next && e.length > 0, "map extents not contiguous at \(e.start)")
                next = e.start + e.length
            }
        }
    }
}
