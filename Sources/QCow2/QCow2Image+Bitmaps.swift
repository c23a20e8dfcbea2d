import BlockIO
import QCow2Format

/// Persistent dirty bitmaps. vmimg reads them (info, measure, convert --bitmaps) and copies
/// them, but does not record guest writes in them. So before its first change of guest content it
/// does what QEMU does on opening an image for writing, and sets `in_use` on every enabled
/// (`auto`) bitmap; QEMU clears it when it stores the updated bitmap on close, vmimg never does,
/// so QEMU then treats those bitmaps as inconsistent (`qemu-img info` shows `in-use`) instead of
/// trusting bits that miss vmimg's writes. Disabled bitmaps record nothing and stay valid.
extension QCow2Image {
    /// The bitmap directory, empty when there is none or the autoclear `bitmaps` bit says it is
    /// not to be trusted (as QEMU reads it).
    /// - Throws: `QCow2Error.invalid` when the directory breaks one of QEMU's rules.
    public func persistentBitmaps() throws -> [BitmapDirectoryEntry] {
        try state.withLock { s in try s.bitmapDirectory(file: file) ?? [] }
    }

    /// The data of a bitmap in `clusterSize` pieces as another image stores it: piece `index`
    /// (`clusterSize` bytes, zero past the bitmap's end, bits past the disk's end cleared), nil
    /// when all zero.
    /// - Parameter table: the bitmap's table (``bitmapTable(_:)``).
    public func bitmapData(
        _ entry: BitmapDirectoryEntry, table: [UInt64], piece index: Int, clusterSize: Int
    ) throws -> [UInt8]? {
        let total = BitmapDirectoryEntry.dataBytes(virtualSize: virtualSize, granularityBits: entry.granularityBits)
        let start = UInt64(index) * UInt64(clusterSize)
        guard start < total else { return nil }
        let end = min(total, start + UInt64(clusterSize))
        var piece = [UInt8](repeating: 0, count: clusterSize)
        let cs = UInt64(geometry.clusterSize)
        var at = start
        while at < end {
            let k = Int(at / cs)
            let within = at % cs
            let n = min(end - at, cs - within)
            guard k < table.count else { break }
            let slot = Int(at - start)..<Int(at - start + n)
            switch table[k] {
            case 0: break
            case BitmapDirectory.allOnes: piece.replaceSubrange(slot, with: repeatElement(0xff, count: Int(n)))
            case let e: try file.read(into: &piece, range: slot, at: (e & BitmapDirectory.tableOffsetMask) + within)
            }
            at += n
        }
        // Bits past the last granule are not part of the bitmap (QEMU stores them as zeros).
        let granule = UInt64(1) << UInt64(entry.granularityBits)
        let bits = (virtualSize + granule - 1) / granule
        if end == total && bits % 8 != 0 {
            piece[Int(end - start) - 1] &= UInt8((1 << (bits % 8)) - 1)
        }
        return piece.contains(where: { $0 != 0 }) ? piece : nil
    }

    /// The bitmap table of `entry`, each entry checked as QEMU loads it.
    public func bitmapTable(_ entry: BitmapDirectoryEntry) throws -> [UInt64] {
        let table = try file.readTable(at: entry.bitmapTableOffset, count: Int(entry.bitmapTableSize))
        for (i, e) in table.enumerated() {
            if !BitmapDirectory.isValidTableEntry(e, clusterSize: geometry.clusterSize) {
                throw QCow2Error.invalid(
                    field: "bitmap '\(entry.name)' table entry \(i)", reason: "0x\(hex(e)) is corrupted")
            }
        }
        return table
    }

    /// Adds bitmaps after the image's own: for each, its data clusters (`data(bitmap, piece)`,
    /// nil for all-zero pieces, which get no cluster), its table, then one new directory; the
    /// header extension switches to it in one cluster-0 write and the old directory is freed.
    /// A crash before the switch leaves the image as it was, with leaked clusters at most.
    /// - Throws: `QCow2Error.unsupported` (qemu-img's "Bitmap already exists: NAME") for a name in use.
    public func addPersistentBitmaps(
        _ bitmaps: [(nameBytes: [UInt8], granularityBits: UInt8, flags: UInt32)],
        data: (Int, Int) throws -> [UInt8]?
    ) throws {
        guard isWritable else { throw QCow2Error.unsupported("\(filename): image is opened read-only") }
        try state.withLock { s in
            guard s.header.version >= 3 else {
                throw QCow2Error.unsupported("Format driver 'qcow2' does not support bitmaps")
            }
            var entries = try s.bitmapDirectory(file: file) ?? []
            for b in bitmaps where entries.contains(where: { $0.nameBytes == b.nameBytes }) {
                let name = String(decoding: b.nameBytes, as: UTF8.self)
                throw QCow2Error.unsupported("Failed to create bitmap \(name): Bitmap already exists: \(name)")
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            let cs = s.geometry.clusterSize
            for (i, b) in bitmaps.enumerated() {
                let bytes = BitmapDirectoryEntry.dataBytes(
                    virtualSize: s.header.size, granularityBits: b.granularityBits)
                let tableSize = Int((bytes + UInt64(cs) - 1) / UInt64(cs))
                var table = [UInt64](repeating: 0, count: tableSize)
                for k in 0..<tableSize {
                    try Cancellation.check()
                    guard let piece = try data(i, k) else { continue }
                    let offset = try s.allocateClusters(1, file: file)
                    try file.write(piece, at: offset)
                    table[k] = offset
                }
                let tableOffset = try s.allocateClusters((tableSize * 8 + cs - 1) / cs, file: file)
                try file.writeTable(table, at: tableOffset)
                entries.append(
                    BitmapDirectoryEntry(
                        bitmapTableOffset: tableOffset, bitmapTableSize: UInt32(tableSize), flags: b.flags,
                        granularityBits: b.granularityBits, nameBytes: b.nameBytes))
            }
            try s.storeBitmapDirectory(entries, freeing: [], file: file, dataFile: dataFile)
        }
    }

    /// `qemu-img bitmap`: applies `operations` in order to the bitmap `nameBytes`. The first that
    /// fails stops the rest; those before it are kept (as in qemu-img, which applies each at once).
    /// The new directory replaces the old in one cluster-0 write; freed clusters are released after.
    /// - Throws: `QCow2Error.unsupported` in qemu-img's words ("Operation remove on bitmap b failed:
    ///   Dirty bitmap 'b' not found").
    public func changeBitmap(_ nameBytes: [UInt8], _ operations: [BitmapOperation]) throws {
        guard isWritable else { throw QCow2Error.unsupported("\(filename): image is opened read-only") }
        try state.withLock { s in
            let name = String(decoding: nameBytes, as: UTF8.self)
            var entries = try s.bitmapDirectory(file: file) ?? []
            try s.flushMetadata(file: file, dataFile: dataFile)
            var freed: [UInt64] = []
            var failure: (any Error)?
            var changed = false
            for operation in operations {
                let index = entries.firstIndex { $0.nameBytes == nameBytes }
                let fail = { (reason: String) in
                    QCow2Error.unsupported("Operation \(operation.name) on bitmap \(name) failed: \(reason)")
                }
                let inconsistent =
                    "Bitmap '\(name)' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete "
                    + "this bitmap from disk"
                do {
                    switch operation {
                    case .add(let bits):
                        guard index == nil else { throw fail("Bitmap already exists: \(name)") }
                        guard s.header.version >= 3 else { throw fail("Cannot store dirty bitmaps in qcow2 v2 files") }
                        guard nameBytes.count <= BitmapDirectory.maxNameSize else {
                            throw fail("Bitmap name is too long")
                        }
                        let (offset, size) = try s.writeZeroBitmapTable(granularityBits: bits, file: file)
                        entries.append(
                            BitmapDirectoryEntry(
                                bitmapTableOffset: offset, bitmapTableSize: size, flags: BitmapDirectoryEntry.flagAuto,
                                granularityBits: bits, nameBytes: nameBytes))
                    case .remove:
                        guard let i = index else { throw fail("Dirty bitmap '\(name)' not found") }
                        freed += try s.bitmapClusters(entries[i], file: file)
                        entries.remove(at: i)
                    case .clear, .enable, .disable:
                        guard let i = index else { throw fail("Dirty bitmap '\(name)' not found") }
                        guard !entries[i].inUse else { throw fail(inconsistent) }
                        if operation == .clear {
                            freed += try s.bitmapClusters(entries[i], file: file)
                            let (offset, size) = try s.writeZeroBitmapTable(
                                granularityBits: entries[i].granularityBits, file: file)
                            entries[i].bitmapTableOffset = offset
                            entries[i].bitmapTableSize = size
                        } else if operation == .enable {
                            entries[i].flags |= BitmapDirectoryEntry.flagAuto
                        } else {
                            entries[i].flags &= ~BitmapDirectoryEntry.flagAuto
                        }
                    }
                    changed = true
                } catch {
                    failure = error
                    break
                }
            }
            if changed { try s.storeBitmapDirectory(entries, freeing: freed, file: file, dataFile: dataFile) }
            if let failure { throw failure }
        }
    }
}

/// One step of `qemu-img bitmap`.
public enum BitmapOperation: Sendable, Equatable {
    /// A new enabled bitmap with all bits clear.
    case add(granularityBits: UInt8)
    case remove, clear, enable, disable

    /// The word qemu-img's messages use.
    public var name: String {
        switch self {
        case .add: "add"
        case .remove: "remove"
        case .clear: "clear"
        case .enable: "enable"
        case .disable: "disable"
        }
    }
}

extension QCow2State {
    /// Writes `entries` as the new directory (none: the extension goes), switches the header to it
    /// in one cluster-0 write, then frees the old directory and `clusters` (host offsets).
    mutating func storeBitmapDirectory(
        _ entries: [BitmapDirectoryEntry], freeing clusters: [UInt64], file: any BlockDevice,
        dataFile: (any BlockDevice)?
    ) throws {
        let cs = geometry.clusterSize
        var ext: BitmapsExtension?
        if !entries.isEmpty {
            let directory = BitmapDirectory.encode(entries)
            let offset = try allocateClusters((directory.count + cs - 1) / cs, file: file)
            try file.write(directory, at: offset)
            ext = BitmapsExtension(
                nbBitmaps: UInt32(entries.count), bitmapDirectorySize: UInt64(directory.count),
                bitmapDirectoryOffset: offset)
        }
        // Data, tables, directory and their refcounts are durable before the header names them.
        try flushMetadata(file: file, dataFile: dataFile)
        try file.flush()
        let old = header.autoclearFeatures.contains(.bitmaps) ? extensions.bitmaps : nil
        extensions.bitmaps = ext
        if ext == nil { header.autoclearFeatures.remove(.bitmaps) } else { header.autoclearFeatures.insert(.bitmaps) }
        try rewriteCluster0(file: file)
        // A later write in this session must mark the enabled bitmaps too.
        bitmapsGuarded = false
        var free = clusters
        if let old, old.bitmapDirectorySize > 0 {
            let first = old.bitmapDirectoryOffset / UInt64(cs)
            let last = (old.bitmapDirectoryOffset + old.bitmapDirectorySize - 1) / UInt64(cs)
            free += (first...last).map { $0 * UInt64(cs) }
        }
        for offset in free { try setRefcount(ofCluster: offset / UInt64(cs), to: 0, file: file) }
        try flushMetadata(file: file, dataFile: dataFile)
    }

    /// A table of zeros (every bit clear, no data cluster) for a bitmap of this disk.
    mutating func writeZeroBitmapTable(granularityBits: UInt8, file: any BlockDevice) throws -> (UInt64, UInt32) {
        let cs = geometry.clusterSize
        let bytes = BitmapDirectoryEntry.dataBytes(virtualSize: header.size, granularityBits: granularityBits)
        let size = Int((bytes + UInt64(cs) - 1) / UInt64(cs))
        let clusters = (size * 8 + cs - 1) / cs
        let offset = try allocateClusters(clusters, file: file)
        try file.write([UInt8](repeating: 0, count: clusters * cs), at: offset)
        return (offset, UInt32(size))
    }

    /// The host clusters a bitmap holds: its data clusters and its table.
    func bitmapClusters(_ entry: BitmapDirectoryEntry, file: any BlockDevice) throws -> [UInt64] {
        let cs = UInt64(geometry.clusterSize)
        let table = try file.readTable(at: entry.bitmapTableOffset, count: Int(entry.bitmapTableSize))
        var clusters = table.filter { BitmapDirectory.isValidTableEntry($0, clusterSize: Int(cs)) }
            .map { $0 & BitmapDirectory.tableOffsetMask }.filter { $0 != 0 }
        let tableClusters = (UInt64(entry.bitmapTableSize) * 8 + cs - 1) / cs
        clusters += (0..<tableClusters).map { entry.bitmapTableOffset + $0 * cs }
        return clusters
    }

    /// The directory as QEMU reads it: nil without the extension or the autoclear bit.
    func bitmapDirectory(file: any BlockDevice) throws -> [BitmapDirectoryEntry]? {
        guard header.autoclearFeatures.contains(.bitmaps), let ext = extensions.bitmaps, ext.nbBitmaps > 0 else {
            return nil
        }
        guard ext.bitmapDirectorySize > 0, ext.bitmapDirectorySize <= BitmapDirectory.maxDirectorySize else {
            throw QCow2Error.invalid(
                field: "bitmap_directory_size", reason: "\(ext.bitmapDirectorySize) bytes is out of range")
        }
        let bytes = try file.read(count: Int(ext.bitmapDirectorySize), at: ext.bitmapDirectoryOffset)
        return try BitmapDirectory.decode(
            bytes, count: ext.nbBitmaps, clusterSize: geometry.clusterSize, virtualSize: header.size)
    }

    /// Before the first change of guest content: every enabled bitmap gets `in_use`, written in
    /// place (the directory keeps its size) and flushed (see the note on `QCow2Image`'s bitmap
    /// extension). A directory QEMU would refuse is left alone (QEMU refuses the image anyway).
    mutating func guardBitmaps(file: any BlockDevice) throws {
        guard !bitmapsGuarded else { return }
        bitmapsGuarded = true
        guard let ext = extensions.bitmaps, var entries = try? bitmapDirectory(file: file) else { return }
        var changed = false
        for i in entries.indices where entries[i].isAuto && !entries[i].inUse {
            entries[i].flags |= BitmapDirectoryEntry.flagInUse
            changed = true
        }
        guard changed else { return }
        try file.write(BitmapDirectory.encode(entries), at: ext.bitmapDirectoryOffset)
        try file.flush()
    }

    /// Refuses a change of virtual size while QEMU keeps bitmaps for the image: each bitmap's
    /// table is sized for the disk, and QEMU refuses to open an image whose bitmap no longer
    /// covers it ("doesn't satisfy the constraints"). vmimg does not resize bitmaps.
    func refuseResizeWithBitmaps(file: any BlockDevice) throws {
        guard let entries = try? bitmapDirectory(file: file), !entries.isEmpty else { return }
        throw QCow2Error.unsupported(
            "Cannot change the size of an image with persistent dirty bitmaps ("
                + entries.map { "'\($0.name)'" }.joined(separator: ", ")
                + "): vmimg does not resize them; remove them first (vmimg bitmap --remove FILE NAME)")
    }
}
