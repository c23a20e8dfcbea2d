/// One internal snapshot: qemu-img's QAPI `SnapshotInfo`, plus vmimg's space figures.
public struct SnapshotInfo: Sendable, Equatable, Encodable {
    /// Snapshot ID, a decimal string unique in the image (`id`, qcow2 `id_str`).
    public var id: String
    /// Snapshot name; several snapshots may share one (`name`).
    public var name: String
    /// Size of the saved VM state in bytes (`vm-state-size`).
    public var vmStateSize: Int64
    /// Creation time, seconds since the epoch (`date-sec`).
    public var dateSec: Int64
    /// Nanoseconds part of the creation time (`date-nsec`).
    public var dateNsec: Int64
    /// Guest clock at snapshot time in nanoseconds; JSON splits it into `vm-clock-sec` and
    /// `vm-clock-nsec`.
    public var vmClockNsec: UInt64
    /// Instruction count at snapshot time (`icount`); `nil` when the entry has none (v2 images).
    public var icount: Int64?
    /// vmimg extra: bytes referenced only by this snapshot (`vmimg-unique-bytes`).
    public var uniqueBytes: Int64?
    /// vmimg extra: bytes this snapshot shares with the active image or other snapshots
    /// (`vmimg-shared-bytes`).
    public var sharedBytes: Int64?
    /// vmimg extra: bytes written to the active image since this snapshot (`vmimg-written-bytes`).
    public var writtenBytes: Int64?

    /// Creates a snapshot description.
    public init(
        id: String, name: String, vmStateSize: Int64 = 0, dateSec: Int64, dateNsec: Int64 = 0,
        vmClockNsec: UInt64 = 0, icount: Int64? = nil, uniqueBytes: Int64? = nil,
        sharedBytes: Int64? = nil, writtenBytes: Int64? = nil
    ) {
        self.id = id
        self.name = name
        self.vmStateSize = vmStateSize
        self.dateSec = dateSec
        self.dateNsec = dateNsec
        self.vmClockNsec = vmClockNsec
        self.icount = icount
        self.uniqueBytes = uniqueBytes
        self.sharedBytes = sharedBytes
        self.writtenBytes = writtenBytes
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case vmStateSize = "vm-state-size"
        case dateSec = "date-sec"
        case dateNsec = "date-nsec"
        case vmClockSec = "vm-clock-sec"
        case vmClockNsec = "vm-clock-nsec"
        case icount
        case uniqueBytes = "vmimg-unique-bytes"
        case sharedBytes = "vmimg-shared-bytes"
        case writtenBytes = "vmimg-written-bytes"
    }

    /// Encodes in QAPI order; the vmimg extras follow qemu-img's keys.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(vmStateSize, forKey: .vmStateSize)
        try c.encode(dateSec, forKey: .dateSec)
        try c.encode(dateNsec, forKey: .dateNsec)
        try c.encode(Int64(vmClockNsec / 1_000_000_000), forKey: .vmClockSec)
        try c.encode(Int64(vmClockNsec % 1_000_000_000), forKey: .vmClockNsec)
        try c.encodeIfPresent(icount, forKey: .icount)
        try c.encodeIfPresent(uniqueBytes, forKey: .uniqueBytes)
        try c.encodeIfPresent(sharedBytes, forKey: .sharedBytes)
        try c.encodeIfPresent(writtenBytes, forKey: .writtenBytes)
    }
}
