import BlockIO
import QCow2Format

/// Persistent dirty bitmaps in the reference walk (QEMU 7.2 `qcow2_check_bitmaps_refcounts`).
extension QCow2State {
    /// Limits from `qcow2-bitmap.c`.
    private enum BitmapLimits {
        static let maxTableSize: UInt64 = 0x800_0000
        static let maxPhysSize: UInt64 = 0x2000_0000
        static let granularityBits: ClosedRange<UInt8> = 9...31
        static let reservedFlags: UInt32 = ~3
        static let maxNameSize = 1023
        static let maxDirectorySize: UInt64 = 1024 * 65535
        static let tableReservedMask: UInt64 = 0xff00_0000_0000_01fe
        static let tableOffsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    }

    private struct BitmapTableRef {
        var offset: UInt64
        var size: UInt32
    }

    /// Counts the bitmap directory, each bitmap table and each bitmap data cluster. QEMU only
    /// knows the bitmaps when the autoclear `bitmaps` bit is set. A directory it cannot parse is a
    /// corruption that ends the check ("Invalid argument"), as in QEMU.
    mutating func checkBitmaps(_ run: inout CheckRun, file: any BlockDevice) throws {
        guard header.autoclearFeatures.contains(.bitmaps), let ext = extensions.bitmaps, ext.nbBitmaps > 0 else {
            return
        }
        try incRefcounts(&run, offset: ext.bitmapDirectoryOffset, size: ext.bitmapDirectorySize)
        guard let tables = try loadBitmapDirectory(ext, file: file) else {
            run.res.corruptions += 1
            throw CheckFailure.invalid
        }
        let cs = UInt64(geometry.clusterSize)
        for table in tables {
            try incRefcounts(&run, offset: table.offset, size: UInt64(table.size) * 8)
            let entries: [UInt64]
            do {
                entries = try file.readTable(at: table.offset, count: Int(table.size))
            } catch {
                run.res.corruptions += 1
                throw CheckFailure(error)
            }
            for entry in entries {
                let offset = entry & BitmapLimits.tableOffsetMask
                if entry & BitmapLimits.tableReservedMask != 0 || (offset != 0 && (entry & 1 != 0 || offset % cs != 0))
                {
                    run.res.corruptions += 1
                    continue
                }
                if offset != 0 { try incRefcounts(&run, offset: offset, size: cs) }
            }
        }
    }

    /// QEMU's `bitmap_list_load` + `check_dir_entry`: nil when the directory breaks a rule.
    private func loadBitmapDirectory(_ ext: BitmapsExtension, file: any BlockDevice) throws -> [BitmapTableRef]? {
        let size = ext.bitmapDirectorySize
        guard size > 0, size <= BitmapLimits.maxDirectorySize else { return nil }
        let dir = try file.read(count: Int(size), at: ext.bitmapDirectoryOffset)
        var tables: [BitmapTableRef] = []
        var pos = 0
        let cs = UInt64(geometry.clusterSize)
        while pos < dir.count {
            guard pos + 24 <= dir.count, tables.count < Int(ext.nbBitmaps) else { return nil }
            let tableOffset = dir.bigEndianUInt64(at: pos)
            let tableSize = UInt32(truncatingIfNeeded: dir.bigEndianUInt64(at: pos + 8) >> 32)
            let flags = UInt32(truncatingIfNeeded: dir.bigEndianUInt64(at: pos + 8))
            let type = dir[pos + 16]
            let granularity = dir[pos + 17]
            let nameSize = Int(dir[pos + 18]) << 8 | Int(dir[pos + 19])
            let extraSize = UInt32(truncatingIfNeeded: dir.bigEndianUInt64(at: pos + 16))
            let entrySize = (24 + nameSize + Int(extraSize) + 7) / 8 * 8
            guard pos + entrySize <= dir.count, extraSize == 0 else { return nil }
            let physBytes = UInt64(tableSize) * cs
            guard tableSize != 0, tableOffset != 0, tableOffset % cs == 0,
                UInt64(tableSize) <= BitmapLimits.maxTableSize,
                BitmapLimits.granularityBits.contains(granularity), flags & BitmapLimits.reservedFlags == 0,
                nameSize <= BitmapLimits.maxNameSize, type == 1, physBytes <= BitmapLimits.maxPhysSize,
                header.size <= (physBytes * 8) << UInt64(granularity)
            else { return nil }
            tables.append(BitmapTableRef(offset: tableOffset, size: tableSize))
            pos += entrySize
        }
        return tables.count == Int(ext.nbBitmaps) && pos == dir.count ? tables : nil
    }
}
