import Foundation
import Hummingbird
import Instances

// The API's bodies: Codable mirrors of the service's result structs (Formats/api.yaml, components).
// They convert; they decide nothing.

/// `InstanceSummary`.
public struct InstanceJSON: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var state: String
    public var drivePath: String
    public var virtualSize: UInt64
    public var audit: String
    public var snapshotCount: Int
    public var baseImage: String?

    init(_ s: InstanceSummary) {
        id = s.id
        name = s.name
        state = s.state.rawValue
        drivePath = s.drivePath
        virtualSize = s.virtualSize
        audit = s.audit.rawValue
        snapshotCount = s.snapshotCount
        baseImage = s.baseImage
    }
}

/// Per-snapshot space: ZFS's figures plus `shared` (referenced but not unique).
public struct SpaceJSON: Codable, Sendable, Equatable {
    public var referenced: UInt64
    public var unique: UInt64
    public var shared: UInt64
    public var written: UInt64
}

/// `SnapshotDetails`.
public struct SnapshotJSON: Codable, Sendable, Equatable {
    public var name: String
    public var id: String?
    public var createdAt: Date
    public var pinned: Bool
    public var audit: String
    public var space: SpaceJSON?

    init(_ s: SnapshotDetails) {
        name = s.name
        id = s.qcowID
        createdAt = s.createdAt
        pinned = s.pinned
        audit = s.audit.rawValue
        space = s.space.map {
            SpaceJSON(
                referenced: $0.referenced, unique: $0.unique, shared: $0.referenced - min($0.unique, $0.referenced),
                written: $0.written)
        }
    }
}

/// `InstanceDetails`.
public struct InstanceDetailsJSON: Codable, Sendable, Equatable {
    public var instance: InstanceJSON
    public var quota: UInt64?
    public var maxSnapshots: Int
    public var activeBytes: UInt64
    public var snapshotOnlyBytes: UInt64
    public var fileBytes: UInt64
    public var overQuota: Bool
    public var snapshots: [SnapshotJSON]
    public var pid: Int64?
    public var notices: [String]

    init(_ d: InstanceDetails) {
        instance = InstanceJSON(d.summary)
        quota = d.quota
        maxSnapshots = d.maxSnapshots
        activeBytes = d.activeBytes
        snapshotOnlyBytes = d.snapshotOnlyBytes
        fileBytes = d.fileBytes
        overQuota = d.overQuota
        snapshots = d.snapshots.map(SnapshotJSON.init)
        pid = d.pid
        notices = d.notices
    }
}

/// The snapshot list with the drive's space figures (R17, R4).
public struct SnapshotListJSON: Codable, Sendable, Equatable {
    public var instance: String
    public var maxSnapshots: Int
    public var quota: UInt64?
    public var activeBytes: UInt64
    public var snapshotOnlyBytes: UInt64
    public var snapshots: [SnapshotJSON]
}

/// `SnapshotCreateResult`.
public struct SnapshotCreateJSON: Codable, Sendable, Equatable {
    public var instance: String
    public var snapshot: String
    public var dryRun: Bool
    public var deleted: [String]
    public var freedBytes: UInt64
    public var live: Bool
    public var notices: [String]

    init(_ r: SnapshotCreateResult) {
        instance = r.instance
        snapshot = r.snapshot
        dryRun = r.dryRun
        deleted = r.deleted
        freedBytes = r.freedBytes
        live = r.live
        notices = r.notices
    }
}

/// `SnapshotDeleteResult`.
public struct SnapshotDeleteJSON: Codable, Sendable, Equatable {
    public var instance: String
    public var snapshot: String
    public var dryRun: Bool
    public var freedBytes: UInt64
}

/// `RebuildPlan`; `rebuilt` says whether it was carried out.
public struct RebuildPlanJSON: Codable, Sendable, Equatable {
    public var instance: String
    /// `snapshot` or `image`.
    public var sourceKind: String
    public var source: String
    public var fullCopy: Bool
    public var snapshotsDestroyed: [String]
    public var freedBytes: UInt64
    public var discardedActiveBytes: UInt64
    public var summary: String
    public var rebuilt: Bool

    init(_ plan: RebuildPlan, rebuilt: Bool) {
        instance = plan.instance
        switch plan.source {
        case .snapshot(let name): (sourceKind, source, fullCopy) = ("snapshot", name, false)
        case .image(let name, let full): (sourceKind, source, fullCopy) = ("image", name, full)
        }
        snapshotsDestroyed = plan.snapshotsDestroyed
        freedBytes = plan.freedBytes
        discardedActiveBytes = plan.discardedActiveBytes
        summary = plan.summary
        self.rebuilt = rebuilt
    }
}

/// `LibraryEntry`.
public struct ImageJSON: Codable, Sendable, Equatable {
    public var kind: String
    public var name: String
    public var virtualSize: UInt64
    public var createdAt: Date
    public var origin: String
    public var audit: String?

    init(_ e: LibraryEntry) {
        kind = e.kind.rawValue
        name = e.name
        virtualSize = e.virtualSize
        createdAt = e.createdAt
        origin = e.origin
        audit = e.audit?.rawValue
    }
}

/// `DuplicateResult`.
public struct DuplicateJSON: Codable, Sendable, Equatable {
    public var source: String
    public var snapshot: String
    public var newInstance: InstanceJSON
    public var exportedImage: String?
}

/// `AuditEntry`.
public struct AuditJSON: Codable, Sendable, Equatable {
    public var at: Date
    public var subject: String
    public var operation: String
    public var detail: String
    public var mode: String
}

/// `BudgetStatus`.
public struct BudgetJSON: Codable, Sendable, Equatable {
    public var budget: UInt64?
    public var inUse: UInt64
}

/// `StartResult` / `StopResult`, flattened.
public struct RunJSON: Codable, Sendable, Equatable {
    public var instance: String
    public var state: String
    public var pid: Int64?
    public var graceful: Bool?
}

// MARK: - Requests

/// `POST /instances`. `size` is bytes or a qemu-img size ("64M").
public struct CreateInstanceBody: Codable, Sendable {
    public var name: String
    public var size: SizeValue?
    public var image: String?
    public var fullCopy: Bool?
    public var quota: SizeValue?
    public var maxSnapshots: Int?
    public var audit: String?
}

/// A byte count given as a number or as a qemu-img size string (`64M`, `1G`; binary units).
public struct SizeValue: Codable, Sendable, Equatable {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt64.self) {
            bytes = number
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = SizeValue.parse(text) else {
            throw InstancesError.invalidArgument("invalid size '\(text)' (bytes, or a number with K, M, G or T)")
        }
        bytes = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bytes)
    }

    /// `512`, `64K`, `64M`, `1.5G`, `2T` (binary units, as qemu-img).
    public static func parse(_ text: String) -> UInt64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let last = trimmed.last else { return nil }
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        let factor = last.uppercased().first.flatMap { units[$0] }
        let digits = factor == nil ? trimmed : String(trimmed.dropLast())
        guard let value = Double(digits), value >= 0 else { return nil }
        let bytes = (value * (factor ?? 1)).rounded()
        guard bytes < 4.0e18 else { return nil }
        return UInt64(bytes)
    }
}

/// `POST /instances/{name}/snapshots`.
public struct CreateSnapshotBody: Codable, Sendable {
    public var name: String
    public var dryRun: Bool?
}

/// `POST /instances/{name}/rebuild`: exactly one of `snapshot` and `image`.
public struct RebuildBody: Codable, Sendable {
    public var snapshot: String?
    public var image: String?
    public var fullCopy: Bool?
    public var dryRun: Bool?
    public var confirm: Bool?

    func source() throws -> RebuildSource {
        switch (snapshot, image) {
        case (let name?, nil): return .snapshot(name)
        case (nil, let name?): return .image(name, fullCopy: fullCopy ?? false)
        default: throw InstancesError.invalidArgument("rebuild needs exactly one of 'snapshot' and 'image'")
        }
    }
}

/// `POST /instances/{name}/duplicate`.
public struct DuplicateBody: Codable, Sendable {
    public var name: String
    public var snapshot: String
    public var full: Bool?
}

/// `POST /instances/{name}/start`: memory only; kernels and extra QEMU arguments stay CLI-only
/// (they name host paths outside the home).
public struct StartBody: Codable, Sendable {
    public var memory: Int?
}
