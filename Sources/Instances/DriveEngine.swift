import Foundation

/// A snapshot in a drive's own qcow2 snapshot table.
public struct DriveSnapshot: Sendable, Equatable {
    /// qcow2 `id_str`.
    public var id: String
    public var name: String
    public var date: Date

    public init(id: String, name: String, date: Date) {
        self.id = id
        self.name = name
        self.date = date
    }
}

/// Space figures of a drive file, computed from its cluster references.
public struct DriveSpace: Sendable, Equatable {
    /// Data bytes the active layer references (what the quota counts).
    public var activeBytes: UInt64
    /// Data bytes referenced by snapshots and not by the active layer.
    public var snapshotOnlyBytes: UInt64
    /// Per snapshot, by qcow2 ID.
    public var snapshots: [String: SnapshotSpaceFigures]
    /// Host bytes the file occupies.
    public var fileBytes: UInt64

    public init(
        activeBytes: UInt64, snapshotOnlyBytes: UInt64, snapshots: [String: SnapshotSpaceFigures],
        fileBytes: UInt64
    ) {
        self.activeBytes = activeBytes
        self.snapshotOnlyBytes = snapshotOnlyBytes
        self.snapshots = snapshots
        self.fileBytes = fileBytes
    }
}

/// What the instance layer needs from the image engine, and nothing more. Every rule
/// (retention, pins, rebuild, quota, budget, audit) stays in Instances; an engine only does
/// what it is told, on a drive no VM is using (running instances go through QMP instead).
public protocol DriveEngine: Sendable {
    /// Creates a qcow2 drive: empty of `virtualSize` bytes, or an overlay on `backing`
    /// (a path relative to the drive's directory, format `backingFormat`).
    func createDrive(at path: String, virtualSize: UInt64, backing: String?, backingFormat: String?)
        throws
    /// Checks `source` against the import policy (declared format matches, no backing file, no
    /// external data file) and stores it as a standalone qcow2 at `path`. Returns the virtual size.
    func importImage(from source: String, format: String?, to path: String) throws -> UInt64
    /// Writes the guest view of `source` (through its backing chain) to a standalone qcow2 at `path`.
    func copyFlattened(from source: String, to path: String) throws
    /// Writes snapshot `snapshotID` of `drive` as a standalone qcow2 at `path`.
    func exportSnapshot(drive: String, snapshotID: String, to path: String) throws
    func virtualSize(of path: String) throws -> UInt64
    /// The drive's snapshot table, in table order.
    func snapshots(of drive: String) throws -> [DriveSnapshot]
    func createSnapshot(drive: String, name: String) throws
    /// Reverts the active layer to the snapshot; other snapshots stay (as `qemu-img snapshot -a`).
    func applySnapshot(drive: String, snapshotID: String) throws
    /// Deletes the snapshot `id` named `name` (qemu-img deletes by name: vmimg names are unique).
    func deleteSnapshot(drive: String, id: String, name: String) throws
    func space(of drive: String) throws -> DriveSpace
    /// Whether any process holds QEMU's lock bytes on the file.
    func isLocked(_ path: String) throws -> Bool
    /// Host bytes the file occupies.
    func allocatedBytes(of path: String) throws -> UInt64
}
