import QCow2Format

/// Why an internal snapshot operation was refused. Each case names the field or snapshot and the
/// value, and prints as one line in qemu-img's words where qemu-img has some.
public enum SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No snapshot matched (`operation` is "apply", "delete" or "load").
    case notFound(operation: String, selector: String)
    /// Internal snapshots are not possible with an external data file (QEMU: ENOTSUP).
    case externalDataFile(operation: String, name: String)
    /// 65536 snapshots exist already (QEMU: EFBIG).
    case tooManySnapshots(count: Int)
    /// A name or ID longer than qemu-img stores (255 / 127 bytes).
    case tooLong(field: String, byteCount: Int, limit: Int)
    /// A refcount would exceed `2^refcount_bits − 1` (with `refcount_bits=1` every snapshot does).
    case refcountOverflow(cluster: UInt64, refcount: UInt64, limit: UInt64)
    /// A refcount would drop below 0: the image is already inconsistent.
    case refcountUnderflow(cluster: UInt64, refcount: UInt64, change: Int64)
    /// The image is opened read-only.
    case readOnly(filename: String)
    /// The generated ID is already taken (the highest ID was 2^64 − 1 and wrapped); QEMU would
    /// store a duplicate.
    case idInUse(id: String, name: String)

    public var description: String {
        switch self {
        case .notFound(let operation, let selector):
            switch operation {
            case "apply":
                return "Could not apply snapshot '\(selector)': Failed to load snapshot: No such file or directory"
            case "delete": return "Could not delete snapshot '\(selector)': snapshot not found"
            default: return "Failed to load snapshot '\(selector)': snapshot not found"
            }
        case .externalDataFile(let operation, let name):
            let verb = operation == "create" ? "create" : operation == "apply" ? "apply" : "delete"
            return "Could not \(verb) snapshot '\(name)': -95 (Operation not supported)"
        case .tooManySnapshots(let count):
            return "nb_snapshots: \(count) snapshots exist; the limit is \(QCow2Geometry.maxSnapshots)"
        case .tooLong(let field, let byteCount, let limit):
            return "\(field): \(byteCount) bytes exceeds the limit of \(limit)"
        case .refcountOverflow(let cluster, let refcount, let limit):
            return "refcount of cluster \(cluster): \(refcount) would exceed \(limit) (Invalid argument)"
        case .refcountUnderflow(let cluster, let refcount, let change):
            return "refcount of cluster \(cluster): \(refcount) cannot change by \(change)"
        case .readOnly(let filename):
            return "\(filename): image is opened read-only"
        case .idInUse(let id, let name):
            return "Could not create snapshot '\(name)': snapshot id: generated ID \(id) is already in use"
        }
    }
}

/// How `convert -l` / `snapshot -a` / `snapshot -d` pick a snapshot (qcow2-format.md §6.2).
public enum SnapshotSelector: Equatable, Sendable, CustomStringConvertible {
    /// A bare value: the first entry whose ID matches, else the first whose name matches
    /// (`snapshot -a X`, `convert -l X`).
    case idOrName(String)
    /// `snapshot.id=X`: ID only.
    case id(String)
    /// `snapshot.name=X`: name only (`snapshot -d X` looks up this way).
    case name(String)
    /// `snapshot.id=X,snapshot.name=Y`: both must match the same entry.
    case idAndName(id: String, name: String)

    public var description: String {
        switch self {
        case .idOrName(let v), .id(let v), .name(let v): return v
        case .idAndName(let id, let name): return "\(id)/\(name)"
        }
    }

    /// Parses a `convert -l` argument: `snapshot.id=…`, `snapshot.name=…` (comma separated, either
    /// or both), or a bare ID-or-name.
    public init(convertArgument text: String) {
        guard text.hasPrefix("snapshot.") else {
            self = .idOrName(text)
            return
        }
        var id: String?
        var name: String?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            if part.hasPrefix("snapshot.id=") {
                id = String(part.dropFirst("snapshot.id=".count))
            } else if part.hasPrefix("snapshot.name=") {
                name = String(part.dropFirst("snapshot.name=".count))
            }
        }
        switch (id, name) {
        case (let i?, let n?): self = .idAndName(id: i, name: n)
        case (let i?, nil): self = .id(i)
        case (nil, let n?): self = .name(n)
        case (nil, nil): self = .idOrName(text)
        }
    }

    /// Index of the matching entry in table order, or nil.
    public func index(in snapshots: [SnapshotEntry]) -> Int? {
        switch self {
        case .idOrName(let v):
            return snapshots.firstIndex { $0.id == v } ?? snapshots.firstIndex { $0.name == v }
        case .id(let v):
            return snapshots.firstIndex { $0.id == v }
        case .name(let v):
            return snapshots.firstIndex { $0.name == v }
        case .idAndName(let id, let name):
            return snapshots.firstIndex { $0.id == id && $0.name == name }
        }
    }
}

/// A snapshot's creation time as stored (`date_sec`, `date_nsec`).
public struct SnapshotDate: Equatable, Sendable {
    public var seconds: UInt32
    public var nanoseconds: UInt32

    public init(seconds: UInt32, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}
