import Foundation

/// One instance and its drive (vmimg instances have exactly one drive, `disk0`).
///
/// Paths are relative to the vmimg home so a home directory can be moved as a whole.
public struct InstanceRecord: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    /// The drive's qcow2 file, relative to the home.
    public var drivePath: String
    public var virtualSize: Int64
    /// Limit on bytes the active layer references; nil = none.
    public var quota: Int64?
    public var maxSnapshots: Int
    /// The drive's audit mode (`off`, `changes`, `all`), a plain string to the catalog.
    public var audit: String
    /// The "my images" entry the drive is a copy-on-write overlay of, if any.
    public var baseImageID: String?
    public var createdAt: Date
    /// `stopped` or `running`; running also fills `pid`, `qmpSocket` and `processStart`.
    public var runState: String
    public var pid: Int64?
    public var qmpSocket: String?
    /// Start time of `pid` (field 22 of /proc/PID/stat) so a reused pid is not taken for ours.
    public var processStart: Int64?

    public init(
        id: String, name: String, drivePath: String, virtualSize: Int64, quota: Int64?,
        maxSnapshots: Int,
        audit: String, baseImageID: String?, createdAt: Date, runState: String = "stopped",
        pid: Int64? = nil,
        qmpSocket: String? = nil, processStart: Int64? = nil
    ) {
        self.id = id
        self.name = name
        self.drivePath = drivePath
        self.virtualSize = virtualSize
        self.quota = quota
        self.maxSnapshots = maxSnapshots
        self.audit = audit
        self.baseImageID = baseImageID
        self.createdAt = createdAt
        self.runState = runState
        self.pid = pid
        self.qmpSocket = qmpSocket
        self.processStart = processStart
    }
}

/// A snapshot of an instance's drive as vmimg knows it; the drive's own qcow2 snapshot table is the
/// truth and these rows are reconciled against it.
public struct SnapshotRecord: Codable, Equatable, Sendable {
    public var id: Int64?
    public var instanceID: String
    public var name: String
    /// The qcow2 snapshot ID (`id_str`) when known.
    public var qcowID: String?
    public var createdAt: Date
    public var pinned: Bool
    /// The drive's audit mode copied when the snapshot was taken (R5).
    public var audit: String
    /// Creation order within the instance; retention deletes the lowest unpinned first.
    public var sequence: Int64

    public init(
        id: Int64? = nil, instanceID: String, name: String, qcowID: String?, createdAt: Date,
        pinned: Bool = false,
        audit: String, sequence: Int64
    ) {
        self.id = id
        self.instanceID = instanceID
        self.name = name
        self.qcowID = qcowID
        self.createdAt = createdAt
        self.pinned = pinned
        self.audit = audit
        self.sequence = sequence
    }
}

/// An entry of "my images": an imported file or a snapshot exported as a standalone image.
public struct ImageRecord: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    /// The image file, relative to the home.
    public var path: String
    public var format: String
    public var virtualSize: Int64
    public var createdAt: Date
    /// `import` or `snapshot` (exported from an instance snapshot).
    public var origin: String
    public var sourceInstanceID: String?
    public var sourceSnapshot: String?
    /// Audit mode inherited from the drive it was made from; nil for imports.
    public var audit: String?
    /// Another image this one is an overlay of.
    public var backingImageID: String?

    public init(
        id: String, name: String, path: String, format: String, virtualSize: Int64, createdAt: Date,
        origin: String,
        sourceInstanceID: String? = nil, sourceSnapshot: String? = nil, audit: String? = nil,
        backingImageID: String? = nil
    ) {
        self.id = id
        self.name = name
        self.path = path
        self.format = format
        self.virtualSize = virtualSize
        self.createdAt = createdAt
        self.origin = origin
        self.sourceInstanceID = sourceInstanceID
        self.sourceSnapshot = sourceSnapshot
        self.audit = audit
        self.backingImageID = backingImageID
    }
}

/// A journal row: written before a multi-step operation touches any file, removed (or replaced)
/// in the transaction that commits it. Rows found by a later run are recovered.
public struct OperationRecord: Codable, Equatable, Sendable {
    public var id: Int64?
    /// What to do on recovery, e.g. `rollback` (delete `payload`'s created files) or `cleanup`.
    public var kind: String
    public var instanceID: String?
    /// JSON understood by the layer that wrote the row.
    public var payload: String
    public var createdAt: Date
    public var pid: Int64

    public init(
        id: Int64? = nil, kind: String, instanceID: String?, payload: String, createdAt: Date,
        pid: Int64
    ) {
        self.id = id
        self.kind = kind
        self.instanceID = instanceID
        self.payload = payload
        self.createdAt = createdAt
        self.pid = pid
    }
}

/// One appended audit line.
public struct AuditRecord: Codable, Equatable, Sendable {
    public var id: Int64?
    public var at: Date
    public var instanceID: String?
    /// Instance or image name at the time of the operation.
    public var subject: String
    public var operation: String
    public var detail: String
    /// The audit mode that caused the line to be written.
    public var mode: String

    public init(
        id: Int64? = nil, at: Date, instanceID: String?, subject: String, operation: String,
        detail: String,
        mode: String
    ) {
        self.id = id
        self.at = at
        self.instanceID = instanceID
        self.subject = subject
        self.operation = operation
        self.detail = detail
        self.mode = mode
    }
}
