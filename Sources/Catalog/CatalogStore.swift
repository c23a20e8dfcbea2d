/// Persistence for vmimg's catalog, independent of the database behind it.
///
/// The rules (retention, rebuild, quota, audit) live in Instances and talk only to this protocol;
/// SQLite through GRDB is the embedded default (``SQLiteCatalog``). Every closure given to
/// ``write(_:)`` runs in one transaction: all of it commits or none of it does.
public protocol CatalogStore: Sendable {
    /// Runs `body` in a read-only snapshot of the catalog.
    func read<T>(_ body: (any CatalogSession) throws -> T) throws -> T
    /// Runs `body` in one write transaction; a thrown error rolls all of it back.
    func write<T>(_ body: (any CatalogSession) throws -> T) throws -> T
}

/// The queries and updates a transaction offers. Lists come back in a stable order.
public protocol CatalogSession {
    func instances() throws -> [InstanceRecord]
    func instance(id: String) throws -> InstanceRecord?
    func instance(named name: String) throws -> InstanceRecord?
    /// Inserts or replaces by id. Throws ``CatalogError/conflict(_:)`` for a duplicate name.
    func save(_ instance: InstanceRecord) throws
    /// Deletes the instance and its snapshot rows.
    func deleteInstance(id: String) throws

    /// The instance's snapshots, oldest (lowest sequence) first.
    func snapshots(instanceID: String) throws -> [SnapshotRecord]
    func save(_ snapshot: SnapshotRecord) throws
    func deleteSnapshot(instanceID: String, name: String) throws

    func images() throws -> [ImageRecord]
    func image(id: String) throws -> ImageRecord?
    func image(named name: String) throws -> ImageRecord?
    func save(_ image: ImageRecord) throws
    func deleteImage(id: String) throws

    func config(_ key: String) throws -> String?
    /// Sets a value; nil removes the key.
    func setConfig(_ key: String, _ value: String?) throws

    /// Appends a journal row and returns its id.
    func addOperation(_ operation: OperationRecord) throws -> Int64
    func operations() throws -> [OperationRecord]
    func removeOperation(id: Int64) throws

    func appendAudit(_ entry: AuditRecord) throws
    /// Audit lines, oldest first; all of them when `instanceID` is nil.
    func auditLog(instanceID: String?) throws -> [AuditRecord]
}

/// Catalog failures, one line each.
public enum CatalogError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A unique name is already taken.
    case conflict(String)
    /// The database could not be opened, migrated, read or written.
    case storage(path: String, message: String)

    public var description: String {
        switch self {
        case .conflict(let what): "\(what) already exists"
        case .storage(let path, let message): "catalog \(path): \(message)"
        }
    }
}
