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
        // A directory breaking QEMU's rules (`QCow2Error`) is a corruption; a failed read is not.
        let directory: [BitmapDirectoryEntry]?
        do {
            directory = try bitmapDirectory(file: file)
        } catch is QCow2Error {
            directory = nil
        }
        guard let tables = directory else {
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
}
