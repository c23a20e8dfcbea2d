/// One internal snapshot table entry (§6.1). Unknown extra data past the 24 bytes we know is kept.
public struct SnapshotEntry: Equatable, Sendable {
    public var l1TableOffset: UInt64
    public var l1Size: UInt32
    public var id: String
    public var name: String
    public var dateSeconds: UInt32
    public var dateNanoseconds: UInt32
    public var vmClockNanoseconds: UInt64
    /// VM state size: the 64-bit extra-data field when present, else the 32-bit one.
    public var vmStateSize: UInt64
    /// Guest size when the snapshot was taken; nil when the entry does not record it.
    public var diskSize: UInt64?
    /// Instruction count; nil when not recorded (reads as −1).
    public var icount: UInt64?
    /// The `extra_data_size` as stored (so check can flag incomplete v3 entries).
    public var storedExtraDataSize: UInt32
    public var unknownExtraData: [UInt8]

    public init(
        l1TableOffset: UInt64, l1Size: UInt32, id: String, name: String, dateSeconds: UInt32 = 0,
        dateNanoseconds: UInt32 = 0, vmClockNanoseconds: UInt64 = 0, vmStateSize: UInt64 = 0,
        diskSize: UInt64?, icount: UInt64? = 0
    ) {
        self.l1TableOffset = l1TableOffset
        self.l1Size = l1Size
        self.id = id
        self.name = name
        self.dateSeconds = dateSeconds
        self.dateNanoseconds = dateNanoseconds
        self.vmClockNanoseconds = vmClockNanoseconds
        self.vmStateSize = vmStateSize
        self.diskSize = diskSize
        self.icount = icount
        storedExtraDataSize = 24
        unknownExtraData = []
    }
}

/// The snapshot table: decode from the bytes at `snapshots_offset`, encode as QEMU writes it.
public enum SnapshotTable {
    /// Decodes `count` entries; `bytes` holds the table (it may be longer). Checks QEMU's caps.
    /// - Returns: the entries and the table's byte length (end of the last entry, no padding).
    public static func decode(_ bytes: [UInt8], count: Int) throws(QCow2Error) -> (
        entries: [SnapshotEntry], byteLength: Int
    ) {
        guard count <= QCow2Geometry.maxSnapshots else {
            throw .tooLarge(field: "nb_snapshots", value: UInt64(count), limit: UInt64(QCow2Geometry.maxSnapshots))
        }
        var entries: [SnapshotEntry] = []
        var r = ByteReader(bytes, structure: "snapshot table")
        var end = 0
        for index in 0..<count {
            let rest = r.position % 8
            if rest != 0 { try r.skip(8 - rest) }
            let start = r.position
            let l1Offset = try r.uint64()
            let l1Size = try r.uint32()
            let idSize = Int(try r.uint16())
            let nameSize = Int(try r.uint16())
            let dateSec = try r.uint32()
            let dateNsec = try r.uint32()
            let vmClock = try r.uint64()
            let vmState32 = try r.uint32()
            let extraSize = try r.uint32()
            guard extraSize <= UInt32(QCow2Geometry.maxSnapshotExtraData) else {
                throw .tooLarge(
                    field: "snapshot table entry \(index) extra_data_size", value: UInt64(extraSize),
                    limit: UInt64(QCow2Geometry.maxSnapshotExtraData))
            }
            let extra = try r.bytes(Int(extraSize))
            let id = String(decoding: try r.bytes(idSize), as: UTF8.self)
            let name = String(decoding: try r.bytes(nameSize), as: UTF8.self)
            end = r.position
            guard end - start <= QCow2Geometry.maxSnapshotTableBytes, end <= QCow2Geometry.maxSnapshotTableBytes
            else {
                throw .tooLarge(
                    field: "snapshot table", value: UInt64(end), limit: UInt64(QCow2Geometry.maxSnapshotTableBytes))
            }
            var e = SnapshotEntry(
                l1TableOffset: l1Offset, l1Size: l1Size, id: id, name: name, dateSeconds: dateSec,
                dateNanoseconds: dateNsec, vmClockNanoseconds: vmClock, vmStateSize: UInt64(vmState32),
                diskSize: nil, icount: nil)
            e.storedExtraDataSize = extraSize
            if extra.count >= 8 { e.vmStateSize = extra.bigEndianUInt64(at: 0) }
            if extra.count >= 16 { e.diskSize = extra.bigEndianUInt64(at: 8) }
            if extra.count >= 24 {
                let value = extra.bigEndianUInt64(at: 16)
                e.icount = value == UInt64.max ? nil : value
            }
            e.unknownExtraData = extra.count > 24 ? Array(extra[24...]) : []
            entries.append(e)
        }
        return (entries, end)
    }

    /// Encodes entries as QEMU's `qcow2_write_snapshots` does: extra_data_size = max(24, stored),
    /// the three known fields, preserved unknown extra data; each entry 8-byte aligned; no trailing pad.
    public static func encode(_ entries: [SnapshotEntry]) -> [UInt8] {
        var w = ByteWriter()
        for e in entries {
            w.align(to: 8)
            let extraSize = 24 + e.unknownExtraData.count
            w.uint64(e.l1TableOffset)
            w.uint32(e.l1Size)
            w.uint16(UInt16(truncatingIfNeeded: e.id.utf8.count))
            w.uint16(UInt16(truncatingIfNeeded: e.name.utf8.count))
            w.uint32(e.dateSeconds)
            w.uint32(e.dateNanoseconds)
            w.uint64(e.vmClockNanoseconds)
            w.uint32(e.vmStateSize > UInt64(UInt32.max) ? 0 : UInt32(e.vmStateSize))
            w.uint32(UInt32(extraSize))
            w.uint64(e.vmStateSize)
            w.uint64(e.diskSize ?? 0)
            w.uint64(e.icount ?? UInt64.max)
            w.append(e.unknownExtraData)
            w.append(Array(e.id.utf8))
            w.append(Array(e.name.utf8))
        }
        return w.bytes
    }

    /// Next ID as QEMU generates it: 1 + the largest numeric ID (non-numeric counts as 0), in
    /// `unsigned long` arithmetic, so an ID of 2^64 − 1 wraps to "0" (the caller refuses an ID in use).
    public static func nextID(_ entries: [SnapshotEntry]) -> String {
        let highest = entries.map { UInt64(numericPrefix($0.id)) }.max() ?? 0
        return String(highest &+ 1)
    }

    /// strtoul-style: leading decimal digits, 0 if none.
    private static func numericPrefix(_ s: String) -> UInt64 {
        var value: UInt64 = 0
        for c in s.utf8 {
            guard c >= 48, c <= 57 else { break }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - 48))
            if o1 || o2 { return .max }  // strtoul saturates at ULONG_MAX (64-bit on x86_64)
            value = a
        }
        return value
    }
}
