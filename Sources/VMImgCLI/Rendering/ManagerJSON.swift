import Foundation
import Instances

// JSON objects of the `instance`, `images` and `config` commands. Keys are kebab-case like
// qemu-img's and always present (null when unknown); `sayJSON` prints them sorted.

/// One `images list` entry.
struct ImageJSON: Encodable {
    var entry: LibraryEntry

    enum CodingKeys: String, CodingKey {
        case name, kind, virtualSize = "virtual-size", created, origin, audit, path
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(entry.name, forKey: .name)
        try c.encode(entry.kind.rawValue, forKey: .kind)
        try c.encode(entry.virtualSize, forKey: .virtualSize)
        try c.encode(jsonDate(entry.createdAt), forKey: .created)
        try c.encode(entry.origin, forKey: .origin)
        try c.encode(entry.audit?.rawValue, forKey: .audit)
        try c.encode(entry.path, forKey: .path)
    }
}

/// One `instance list` entry, and the first keys of `instance show`.
struct InstanceJSON: Encodable {
    var summary: InstanceSummary

    enum CodingKeys: String, CodingKey {
        case name, id, state, drive, virtualSize = "virtual-size", audit, snapshots, baseImage = "base-image"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(summary.name, forKey: .name)
        try c.encode(summary.id, forKey: .id)
        try c.encode(summary.state.rawValue, forKey: .state)
        try c.encode(summary.drivePath, forKey: .drive)
        try c.encode(summary.virtualSize, forKey: .virtualSize)
        try c.encode(summary.audit.rawValue, forKey: .audit)
        try c.encode(summary.snapshotCount, forKey: .snapshots)
        try c.encode(summary.baseImage, forKey: .baseImage)
    }
}

/// One snapshot in `snapshot list` and `instance show`.
struct SnapshotJSON: Encodable {
    var snapshot: SnapshotDetails

    enum CodingKeys: String, CodingKey {
        case name, id, created, pinned, audit, referenced, unique, written
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshot.name, forKey: .name)
        try c.encode(snapshot.qcowID, forKey: .id)
        try c.encode(jsonDate(snapshot.createdAt), forKey: .created)
        try c.encode(snapshot.pinned, forKey: .pinned)
        try c.encode(snapshot.audit.rawValue, forKey: .audit)
        try c.encode(snapshot.space?.referenced, forKey: .referenced)
        try c.encode(snapshot.space?.unique, forKey: .unique)
        try c.encode(snapshot.space?.written, forKey: .written)
    }
}

/// `instance show --output json`.
struct InstanceDetailsJSON: Encodable {
    var details: InstanceDetails

    enum CodingKeys: String, CodingKey {
        case name, id, state, drive, virtualSize = "virtual-size", audit, baseImage = "base-image", quota
        case activeBytes = "active-bytes", overQuota = "over-quota", snapshotOnlyBytes = "snapshot-only-bytes"
        case fileBytes = "file-bytes", maxSnapshots = "max-snapshots", pid, qmpSocket = "qmp-socket", snapshots
        case notices
    }

    func encode(to encoder: any Encoder) throws {
        let s = details.summary
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(s.name, forKey: .name)
        try c.encode(s.id, forKey: .id)
        try c.encode(s.state.rawValue, forKey: .state)
        try c.encode(s.drivePath, forKey: .drive)
        try c.encode(s.virtualSize, forKey: .virtualSize)
        try c.encode(s.audit.rawValue, forKey: .audit)
        try c.encode(s.baseImage, forKey: .baseImage)
        try c.encode(details.quota, forKey: .quota)
        try c.encode(details.activeBytes, forKey: .activeBytes)
        try c.encode(details.overQuota, forKey: .overQuota)
        try c.encode(details.snapshotOnlyBytes, forKey: .snapshotOnlyBytes)
        try c.encode(details.fileBytes, forKey: .fileBytes)
        try c.encode(details.maxSnapshots, forKey: .maxSnapshots)
        try c.encode(details.pid, forKey: .pid)
        try c.encode(details.qmpSocket, forKey: .qmpSocket)
        try c.encode(details.snapshots.map(SnapshotJSON.init), forKey: .snapshots)
        try c.encode(details.notices, forKey: .notices)
    }
}

/// `snapshot create --output json`.
struct SnapshotCreateJSON: Encodable {
    var result: SnapshotCreateResult

    enum CodingKeys: String, CodingKey {
        case instance, snapshot, dryRun = "dry-run", deleted, freedBytes = "freed-bytes", live, audit
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(result.instance, forKey: .instance)
        try c.encode(result.snapshot, forKey: .snapshot)
        try c.encode(result.dryRun, forKey: .dryRun)
        try c.encode(result.deleted, forKey: .deleted)
        try c.encode(result.freedBytes, forKey: .freedBytes)
        try c.encode(result.live, forKey: .live)
        try c.encode(result.audit.rawValue, forKey: .audit)
    }
}

/// One `instance audit` line.
struct AuditJSON: Encodable {
    var entry: AuditEntry

    enum CodingKeys: String, CodingKey { case at, subject, operation, detail, mode }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jsonDate(entry.at), forKey: .at)
        try c.encode(entry.subject, forKey: .subject)
        try c.encode(entry.operation, forKey: .operation)
        try c.encode(entry.detail, forKey: .detail)
        try c.encode(entry.mode.rawValue, forKey: .mode)
    }
}

/// `instance start --output json`.
struct StartJSON: Encodable {
    var result: StartResult

    enum CodingKeys: String, CodingKey {
        case instance, pid, qmpSocket = "qmp-socket", consoleLog = "console-log", status
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(result.instance, forKey: .instance)
        try c.encode(result.pid, forKey: .pid)
        try c.encode(result.qmpSocket, forKey: .qmpSocket)
        try c.encode(result.consoleLog, forKey: .consoleLog)
        try c.encode(result.status, forKey: .status)
    }
}

/// `config show --output json`.
struct ConfigJSON: Encodable {
    var home: String
    var status: BudgetStatus

    enum CodingKeys: String, CodingKey { case home, budget, inUse = "in-use" }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(home, forKey: .home)
        try c.encode(status.budget, forKey: .budget)
        try c.encode(status.inUse, forKey: .inUse)
    }
}
