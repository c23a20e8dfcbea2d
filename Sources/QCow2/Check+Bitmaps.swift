import BlockIO
import QCow2Format

/// Persistent dirty bitmaps in the reference walk (QEMU 7.2 `qcow2_check_bitmaps_refcounts`).
extension QCow2State {
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
            try incRefcounts(&run, offset: table.bitmapTableOffset, size: UInt64(table.bitmapTableSize) * 8)
            let entries: [UInt64]
            do {
                entries = try file.readTable(at: table.bitmapTableOffset, count: Int(table.bitmapTableSize))
            } catch {
                run.res.corruptions += 1
                throw CheckFailure(error)
            }
            for entry in entries {
                let offset = entry & BitmapDirectory.tableOffsetMask
                if !BitmapDirectory.isValidTableEntry(entry, clusterSize: Int(cs)) {
                    run.res.corruptions += 1
                    continue
                }
                if offset != 0 { try incRefcounts(&run, offset: offset, size: cs) }
            }
        }
    }

    /// QEMU's `bitmap_list_load` + `check_dir_entry`: nil when the directory breaks a rule.
    private func loadBitmapDirectory(_ ext: BitmapsExtension, file: any BlockDevice) throws
        -> [BitmapDirectoryEntry]?
    {
        let size = ext.bitmapDirectorySize
        guard size > 0, size <= BitmapDirectory.maxDirectorySize else { return nil }
        let dir = try file.read(count: Int(size), at: ext.bitmapDirectoryOffset)
        return try? BitmapDirectory.decode(
            dir, count: ext.nbBitmaps, clusterSize: geometry.clusterSize, virtualSize: header.size)
    }
}
