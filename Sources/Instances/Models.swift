import Foundation

/// Per-drive audit configuration (R5): what gets appended to the audit log.
public enum AuditMode: String, Codable, Sendable, CaseIterable {
    /// Nothing is logged.
    case off
    /// Operations that change the drive or its snapshots: create, snapshot, snapshot delete,
    /// pin, unpin, rebuild, duplicate, delete.
    case changes
    /// Every operation, including start and stop.
    case all

    func logs(_ operation: AuditedOperation) -> Bool {
        switch self {
        case .off: false
        case .changes: operation.changesDrive
        case .all: true
        }
    }
}

/// Operations written to the audit log.
public enum AuditedOperation: String, Sendable, CaseIterable {
    case create
    case snapshot = "snapshot-create"
    case snapshotDelete = "snapshot-delete"
    case pin, unpin, rebuild,
        duplicate, delete, start, stop
    case imageDelete = "image-delete"
    case export

    var changesDrive: Bool { self != .start && self != .stop }
}

/// Where a new instance's drive comes from.
public enum DriveSource: Sendable, Equatable {
    /// An empty drive of this many bytes.
    case empty(size: UInt64)
    /// A "my images" entry by name, or `INSTANCE@SNAPSHOT` for an instance snapshot (R6).
    case image(String)
}

/// `instance create` arguments.
public struct CreateInstanceRequest: Sendable, Equatable {
    public var name: String
    public var source: DriveSource
    /// Full copy instead of a copy-on-write overlay over the image.
    public var fullCopy: Bool
    public var quota: UInt64?
    public var maxSnapshots: Int
    public var audit: AuditMode

    public init(
        name: String, source: DriveSource, fullCopy: Bool = false, quota: UInt64? = nil,
        maxSnapshots: Int = 5,
        audit: AuditMode = .off
    ) {
        self.name = name
        self.source = source
        self.fullCopy = fullCopy
        self.quota = quota
        self.maxSnapshots = maxSnapshots
        self.audit = audit
    }
}

/// Whether an instance's QEMU runs.
public enum RunState: String, Sendable, Codable {
    case stopped, running
}

/// One line of `instance list`.
public struct InstanceSummary: Sendable, Equatable {
    public var id: String
    public var name: String
    public var state: RunState
    public var drivePath: String
    public var virtualSize: UInt64
    public var audit: AuditMode
    public var snapshotCount: Int
    public var baseImage: String?
}

/// Space figures of one snapshot, after ZFS (managers.md §3).
public struct SnapshotSpaceFigures: Sendable, Equatable {
    /// Data the snapshot references, shared or not (`referenced`).
    public var referenced: UInt64
    /// Data only this snapshot references: freed by deleting it alone (`used`).
    public var unique: UInt64
    /// Data referenced here but not by the previous (older) snapshot (`written`).
    public var written: UInt64
}

/// One snapshot as `snapshot list` and `show` print it.
public struct SnapshotDetails: Sendable, Equatable {
    public var name: String
    public var qcowID: String?
    public var createdAt: Date
    public var pinned: Bool
    /// The audit mode copied from the drive when it was taken.
    public var audit: AuditMode
    public var space: SnapshotSpaceFigures?
}

/// `instance show`.
public struct InstanceDetails: Sendable, Equatable {
    public var summary: InstanceSummary
    public var quota: UInt64?
    public var maxSnapshots: Int
    /// Bytes of data clusters the active layer references: what the quota counts (R4).
    public var activeBytes: UInt64
    /// Bytes only snapshots hold: shown, not counted against the quota.
    public var snapshotOnlyBytes: UInt64
    /// Host bytes the drive file occupies.
    public var fileBytes: UInt64
    public var overQuota: Bool { quota.map { activeBytes > $0 } ?? false }
    public var snapshots: [SnapshotDetails]
    public var pid: Int64?
    public var qmpSocket: String?
    /// Things reconciliation noticed (snapshots added or removed outside vmimg, a vanished QEMU).
    public var notices: [String]
}

/// The outcome of `snapshot create` (or its dry run).
public struct SnapshotCreateResult: Sendable, Equatable {
    public var instance: String
    public var snapshot: String
    public var dryRun: Bool
    /// Snapshots retention deleted (or would delete) to stay within `maxSnapshots` (R12).
    public var deleted: [String]
    /// Space those deletions freed (or would free): sum of their unique bytes.
    public var freedBytes: UInt64
    /// Taken through QMP on a running instance.
    public var live: Bool
    public var audit: AuditMode
    public var notices: [String]
}

/// The outcome of `snapshot delete` (or its dry run).
public struct SnapshotDeleteResult: Sendable, Equatable {
    public var instance: String
    public var snapshot: String
    public var dryRun: Bool
    public var freedBytes: UInt64
}

/// Where rebuild takes the drive's new content from.
public enum RebuildSource: Sendable, Equatable {
    /// The instance's own snapshot: revert, then delete every newer snapshot (R7, R13).
    case snapshot(String)
    /// Another "my images" entry (or `INSTANCE@SNAPSHOT`): the drive is replaced (R18).
    case image(String, fullCopy: Bool)
}

/// What a rebuild will do, shown before asking (R14).
public struct RebuildPlan: Sendable, Equatable {
    public var instance: String
    public var source: RebuildSource
    /// Snapshots the rebuild deletes, oldest first.
    public var snapshotsDestroyed: [String]
    /// Space their deletion frees (unique bytes).
    public var freedBytes: UInt64
    /// Active-layer bytes whose content is discarded.
    public var discardedActiveBytes: UInt64

    /// One line for prompts and `confirmationRequired`.
    public var summary: String {
        let what: String
        switch source {
        case .snapshot(let name): what = "revert '\(instance)' to snapshot '\(name)'"
        case .image(let name, let full):
            what =
                "replace the drive of '\(instance)' with \(full ? "a copy of" : "an overlay on") '\(name)'"
        }
        let gone =
            snapshotsDestroyed.isEmpty
            ? "no snapshots" : "snapshots " + snapshotsDestroyed.joined(separator: ", ")
        return
            "\(what); discards current content (\(formatBytes(Int64(discardedActiveBytes)))) and deletes \(gone)"
    }
}

/// `rebuild` without confirmation returns the plan; with it, the result.
public enum RebuildOutcome: Sendable, Equatable {
    case planned(RebuildPlan)
    case rebuilt(RebuildPlan)
}

/// `duplicate`.
public struct DuplicateResult: Sendable, Equatable {
    public var source: String
    public var snapshot: String
    public var newInstance: InstanceSummary
    /// The read-only base image exported into "my images" (thin clone), nil for `--full`.
    public var exportedImage: String?
}

/// `start` options.
public struct StartOptions: Sendable, Equatable {
    public var kernel: String?
    public var initrd: String?
    public var append: String?
    /// MiB.
    public var memory: Int
    /// `tcg` unless asked (KVM hangs on these hosts: guest.md).
    public var accel: String
    public var machine: String
    public var extraArguments: [String]

    public init(
        kernel: String? = nil, initrd: String? = nil, append: String? = nil, memory: Int = 256,
        accel: String = "tcg",
        machine: String = "q35", extraArguments: [String] = []
    ) {
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
        self.memory = memory
        self.accel = accel
        self.machine = machine
        self.extraArguments = extraArguments
    }
}

/// `start`.
public struct StartResult: Sendable, Equatable {
    public var instance: String
    public var pid: Int64
    public var qmpSocket: String
    public var consoleLog: String
    /// QEMU's `query-status` answer (`running`, `prelaunch`, …).
    public var status: String
}

/// `stop`.
public struct StopResult: Sendable, Equatable {
    public var instance: String
    /// The guest powered off after `system_powerdown`; false when `quit` (or a kill) was needed.
    public var graceful: Bool
}

/// An audit log line.
public struct AuditEntry: Sendable, Equatable {
    public var at: Date
    public var subject: String
    public var operation: String
    public var detail: String
    public var mode: AuditMode
}

/// Host-wide budget status (`config get budget`).
public struct BudgetStatus: Sendable, Equatable {
    public var budget: UInt64?
    /// Host bytes all vmimg images and drives occupy.
    public var inUse: UInt64
}

/// What startup recovery and reconciliation did.
public struct RecoveryReport: Sendable, Equatable {
    /// Journal entries finished or undone, one line each.
    public var recovered: [String] = []
    /// Drift noticed between the catalog and the drives.
    public var notices: [String] = []
}
