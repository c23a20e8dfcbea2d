/// One entry of the bitmap directory (qcow2 spec, "Bitmap directory"): a persistent dirty
/// bitmap, its table of data clusters, and its name.
public struct BitmapDirectoryEntry: Equatable, Sendable {
    /// `in_use`: the bitmap was open for writing and never stored back; its bits cannot be trusted.
    public static let flagInUse: UInt32 = 1 << 0
    /// `auto`: enabled (it records writes while the image is in use).
    public static let flagAuto: UInt32 = 1 << 1

    public var bitmapTableOffset: UInt64
    public var bitmapTableSize: UInt32
    public var flags: UInt32
    public var granularityBits: UInt8
    /// The name as stored (no terminator; QEMU takes it as UTF-8).
    public var nameBytes: [UInt8]

    public init(
        bitmapTableOffset: UInt64, bitmapTableSize: UInt32, flags: UInt32, granularityBits: UInt8, nameBytes: [UInt8]
    ) {
        self.bitmapTableOffset = bitmapTableOffset
        self.bitmapTableSize = bitmapTableSize
        self.flags = flags
        self.granularityBits = granularityBits
        self.nameBytes = nameBytes
    }

    public var name: String { String(decoding: nameBytes, as: UTF8.self) }
    public var granularity: UInt64 { 1 << UInt64(granularityBits) }
    public var inUse: Bool { flags & Self.flagInUse != 0 }
    public var isAuto: Bool { flags & Self.flagAuto != 0 }

    /// Bytes of the bitmap of a disk of `virtualSize` (one bit per granule, QEMU's
    /// `get_bitmap_bytes_needed`).
    public static func dataBytes(virtualSize: UInt64, granularityBits: UInt8) -> UInt64 {
        let granule = UInt64(1) << UInt64(granularityBits)
        let bits = virtualSize / granule + (virtualSize % granule == 0 ? 0 : 1)
        return (bits + 7) / 8
    }

    /// Bytes of a directory entry with a name of `nameLength` bytes (`calc_dir_entry_size`).
    public static func entrySize(nameLength: Int) -> Int { (24 + nameLength + 7) / 8 * 8 }
}

/// The bitmap directory and bitmap table entries, with QEMU 7.2's limits (`qcow2-bitmap.c`).
public enum BitmapDirectory {
    public static let maxTableSize: UInt64 = 0x800_0000
    public static let maxPhysicalSize: UInt64 = 0x2000_0000
    public static let granularityBits: ClosedRange<UInt8> = 9...31
    public static let reservedFlags: UInt32 = ~3
    public static let maxNameSize = 1023
    public static let maxDirectorySize: UInt64 = 1024 * 65535
    /// Bitmap table entry: reserved bits, and the data cluster's offset.
    public static let tableReservedMask: UInt64 = 0xff00_0000_0000_01fe
    public static let tableOffsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    /// Table entry value for a data cluster of all ones (no cluster stored).
    public static let allOnes: UInt64 = 1

    /// Whether a bitmap table entry is one QEMU loads: no reserved bit, and a stored cluster
    /// aligned and without the all-ones bit.
    public static func isValidTableEntry(_ entry: UInt64, clusterSize: Int) -> Bool {
        let offset = entry & tableOffsetMask
        let misplaced = offset != 0 && (entry & allOnes != 0 || offset % UInt64(clusterSize) != 0)
        return entry & tableReservedMask == 0 && !misplaced
    }

    /// Decodes `count` entries (`bitmap_list_load` + `check_dir_entry`).
    /// - Throws: `QCow2Error.invalid` naming the rule an entry breaks.
    public static func decode(_ bytes: [UInt8], count: UInt32, clusterSize: Int, virtualSize: UInt64)
        throws(QCow2Error) -> [BitmapDirectoryEntry]
    {
        guard !bytes.isEmpty, UInt64(bytes.count) <= maxDirectorySize else {
            throw .invalid(field: "bitmap_directory_size", reason: "\(bytes.count) bytes is out of range")
        }
        let cs = UInt64(clusterSize)
        var entries: [BitmapDirectoryEntry] = []
        var pos = 0
        while pos < bytes.count {
            guard pos + 24 <= bytes.count, entries.count < Int(count) else {
                throw .invalid(field: "bitmap_directory", reason: "more entries than nb_bitmaps (\(count))")
            }
            let tableOffset = bytes.bigEndianUInt64(at: pos)
            let tableSize = UInt32(truncatingIfNeeded: bytes.bigEndianUInt64(at: pos + 8) >> 32)
            let flags = UInt32(truncatingIfNeeded: bytes.bigEndianUInt64(at: pos + 8))
            let type = bytes[pos + 16]
            let granularity = bytes[pos + 17]
            let nameSize = Int(bytes[pos + 18]) << 8 | Int(bytes[pos + 19])
            let extraSize = UInt32(truncatingIfNeeded: bytes.bigEndianUInt64(at: pos + 16))
            let entrySize = (24 + nameSize + Int(extraSize) + 7) / 8 * 8
            guard pos + entrySize <= bytes.count, extraSize == 0 else {
                throw .invalid(field: "bitmap_directory", reason: "entry at \(pos) runs past the directory")
            }
            let physical = UInt64(tableSize) * cs
            guard tableSize != 0, tableOffset != 0, tableOffset % cs == 0, UInt64(tableSize) <= maxTableSize,
                granularityBits.contains(granularity), flags & reservedFlags == 0, nameSize <= maxNameSize,
                type == 1, physical <= maxPhysicalSize, virtualSize <= (physical * 8) << UInt64(granularity)
            else {
                throw .invalid(field: "bitmap_directory", reason: "entry at \(pos) breaks a bitmap rule")
            }
            entries.append(
                BitmapDirectoryEntry(
                    bitmapTableOffset: tableOffset, bitmapTableSize: tableSize, flags: flags,
                    granularityBits: granularity, nameBytes: Array(bytes[(pos + 24)..<(pos + 24 + nameSize)])))
            pos += entrySize
        }
        guard entries.count == Int(count) else {
            throw .invalid(field: "nb_bitmaps", reason: "\(count) bitmaps, \(entries.count) in the directory")
        }
        return entries
    }

    /// The directory bytes for `entries` (names padded with zeros to 8 bytes).
    public static func encode(_ entries: [BitmapDirectoryEntry]) -> [UInt8] {
        var w = ByteWriter()
        for e in entries {
            w.uint64(e.bitmapTableOffset)
            w.uint32(e.bitmapTableSize)
            w.uint32(e.flags)
            w.uint8(1)  // type: dirty tracking bitmap
            w.uint8(e.granularityBits)
            w.uint16(UInt16(e.nameBytes.count))
            w.uint32(0)  // extra data size
            w.append(e.nameBytes)
            w.align(to: 8)
        }
        return w.bytes
    }
}
