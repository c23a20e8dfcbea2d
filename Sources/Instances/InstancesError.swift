import Foundation

/// Everything the instance and image layer refuses or fails at, each printing as one line.
public enum InstancesError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Stable categories the CLI maps to exit codes.
    public enum Kind: Sendable, Equatable {
        case usage, notFound, conflict, refused, busy, io, engine
    }

    case invalidName(String, reason: String)
    case invalidArgument(String)
    case instanceNotFound(String)
    case imageNotFound(String)
    case snapshotNotFound(instance: String, snapshot: String)
    case alreadyExists(what: String, name: String)
    /// R15: the operation needs the instance powered off.
    case instanceRunning(instance: String, operation: String)
    case instanceNotRunning(String)
    /// Some QEMU (ours or not) holds the drive's image lock.
    case driveLocked(instance: String, path: String)
    /// R14: a destructive operation was asked without confirmation.
    case confirmationRequired(operation: String, summary: String)
    /// R20: every snapshot is pinned, so retention cannot make room.
    case allSnapshotsPinned(instance: String, maxSnapshots: Int)
    case snapshotsPinned(instance: String, names: [String], operation: String)
    case imageInUse(image: String, dependants: [String])
    case budgetExceeded(budget: Int64, inUse: Int64, needed: Int64)
    case quotaExceeded(instance: String, quota: Int64, used: Int64)
    case unsafeImage(path: String, reason: String)
    case driveMissing(instance: String, path: String)
    case engine(operation: String, message: String)
    case qmp(instance: String, message: String)
    case qemu(instance: String, message: String)
    case io(path: String, message: String)

    public var kind: Kind {
        switch self {
        case .invalidName, .invalidArgument, .confirmationRequired: .usage
        case .instanceNotFound, .imageNotFound, .snapshotNotFound, .driveMissing: .notFound
        case .alreadyExists: .conflict
        case .instanceRunning, .instanceNotRunning, .allSnapshotsPinned, .snapshotsPinned, .imageInUse,
            .budgetExceeded, .quotaExceeded, .unsafeImage:
            .refused
        case .driveLocked: .busy
        case .io: .io
        case .engine, .qmp, .qemu: .engine
        }
    }

    public var description: String {
        switch self {
        case .invalidName(let name, let reason): return "invalid name '\(name)': \(reason)"
        case .invalidArgument(let message): return message
        case .instanceNotFound(let name): return "no instance named '\(name)'"
        case .imageNotFound(let name): return "no image named '\(name)' in my images"
        case .snapshotNotFound(let instance, let snapshot):
            return "instance '\(instance)' has no snapshot '\(snapshot)'"
        case .alreadyExists(let what, let name): return "\(what) '\(name)' already exists"
        case .instanceRunning(let instance, let operation):
            return "cannot \(operation) '\(instance)': the instance is running; stop it first"
        case .instanceNotRunning(let name): return "instance '\(name)' is not running"
        case .driveLocked(let instance, let path):
            return "drive of '\(instance)' is locked by a QEMU process (\(path)); stop that process first"
        case .confirmationRequired(let operation, let summary):
            return "\(operation) needs confirmation (--yes): \(summary)"
        case .allSnapshotsPinned(let instance, let max):
            return "instance '\(instance)' has \(max) snapshots, all pinned; unpin or delete one first"
        case .snapshotsPinned(let instance, let names, let operation):
            return "cannot \(operation) '\(instance)': pinned snapshots would be destroyed: "
                + names.joined(separator: ", ") + " (unpin them first)"
        case .imageInUse(let image, let dependants):
            return "image '\(image)' is in use by " + dependants.joined(separator: ", ")
        case .budgetExceeded(let budget, let inUse, let needed):
            return "host budget \(formatBytes(budget)) would be exceeded: \(formatBytes(inUse)) in use, "
                + "the snapshot may pin up to \(formatBytes(needed)) more"
        case .quotaExceeded(let instance, let quota, let used):
            return
                "instance '\(instance)' is over its quota: active layer uses \(formatBytes(used)) of \(formatBytes(quota))"
        case .unsafeImage(let path, let reason): return "refusing to import '\(path)': \(reason)"
        case .driveMissing(let instance, let path): return "drive of '\(instance)' is missing: \(path)"
        case .engine(let operation, let message): return "\(operation): \(message)"
        case .qmp(let instance, let message): return "QMP (\(instance)): \(message)"
        case .qemu(let instance, let message): return "qemu for '\(instance)': \(message)"
        case .io(let path, let message): return "\(path): \(message)"
        }
    }
}

/// Human size in binary units, one decimal place ("1.5 GiB"), bytes below 1 KiB.
public func formatBytes(_ value: Int64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
    guard value >= 1024 || value <= -1024 else { return "\(value) B" }
    var v = Double(value) / 1024
    var unit = 0
    while abs(v) >= 1024, unit < units.count - 1 {
        v /= 1024
        unit += 1
    }
    return String(format: "%.1f", v) + " " + units[unit]
}
