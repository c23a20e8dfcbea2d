import Foundation
import GRDB

extension InstanceRecord: FetchableRecord, PersistableRecord {
    public static var databaseTableName: String { "instance" }
}
extension SnapshotRecord: FetchableRecord, MutablePersistableRecord {
    public static var databaseTableName: String { "snapshot" }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
extension ImageRecord: FetchableRecord, PersistableRecord {
    public static var databaseTableName: String { "image" }
}
extension OperationRecord: FetchableRecord, MutablePersistableRecord {
    public static var databaseTableName: String { "operation" }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
extension AuditRecord: FetchableRecord, MutablePersistableRecord {
    public static var databaseTableName: String { "audit" }
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The embedded catalog: one SQLite file in WAL mode, migrated on open.
///
/// Open one per file per process (GRDB's rule: a second `DatabaseQueue` on the same file in the
/// same process bypasses its serialization). Other processes may open the same file: SQLite's
/// locks serialize them, and a writer waits up to `busyTimeout` for another to finish.
public final class SQLiteCatalog: CatalogStore {
    public let path: String
    let queue: DatabaseQueue

    /// Opens (creating if needed) and migrates the catalog at `path`.
    /// - Throws: ``CatalogError/storage(path:message:)`` when SQLite refuses the file or a migration fails.
    public init(path: String, busyTimeout: TimeInterval = 30) throws {
        self.path = path
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(busyTimeout)
        config.foreignKeysEnabled = true
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try CatalogMigrations.migrator.migrate(queue)
        } catch let error as DatabaseError {
            throw CatalogError.storage(path: path, message: error.message ?? "\(error)")
        }
    }

    /// Names of the migrations applied, in order (tests and `Formats/catalog.md` check these).
    public func appliedMigrations() throws -> [String] {
        try queue.read { db in try CatalogMigrations.migrator.appliedMigrations(db) }
    }

    /// The journal mode SQLite reports (`wal` once opened).
    public func journalMode() throws -> String {
        try queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    public func read<T>(_ body: (any CatalogSession) throws -> T) throws -> T {
        try mapped { try queue.read { db in try body(SQLiteSession(db: db)) } }
    }

    public func write<T>(_ body: (any CatalogSession) throws -> T) throws -> T {
        try mapped { try queue.write { db in try body(SQLiteSession(db: db)) } }
    }

    private func mapped<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DatabaseError {
            throw CatalogError.storage(path: path, message: error.message ?? "\(error)")
        }
    }
}

/// One transaction's view, over GRDB's `Database`.
struct SQLiteSession: CatalogSession {
    let db: Database

    func instances() throws -> [InstanceRecord] {
        try InstanceRecord.order(Column("name")).fetchAll(db)
    }
    func instance(id: String) throws -> InstanceRecord? { try InstanceRecord.fetchOne(db, key: id) }
    func instance(named name: String) throws -> InstanceRecord? {
        try InstanceRecord.filter(Column("name") == name).fetchOne(db)
    }
    func save(_ instance: InstanceRecord) throws {
        try unique("instance '\(instance.name)'") { try instance.save(db) }
    }
    func deleteInstance(id: String) throws { _ = try InstanceRecord.deleteOne(db, key: id) }

    func snapshots(instanceID: String) throws -> [SnapshotRecord] {
        try SnapshotRecord.filter(Column("instanceID") == instanceID).order(
            Column("sequence"), Column("id")
        )
        .fetchAll(db)
    }
    func save(_ snapshot: SnapshotRecord) throws {
        var row = snapshot
        try unique("snapshot '\(snapshot.name)'") { try row.save(db) }
    }
    func deleteSnapshot(instanceID: String, name: String) throws {
        _ = try SnapshotRecord.filter(Column("instanceID") == instanceID && Column("name") == name)
            .deleteAll(db)
    }

    func images() throws -> [ImageRecord] { try ImageRecord.order(Column("name")).fetchAll(db) }
    func image(id: String) throws -> ImageRecord? { try ImageRecord.fetchOne(db, key: id) }
    func image(named name: String) throws -> ImageRecord? {
        try ImageRecord.filter(Column("name") == name).fetchOne(db)
    }
    func save(_ image: ImageRecord) throws {
        try unique("image '\(image.name)'") { try image.save(db) }
    }
    func deleteImage(id: String) throws { _ = try ImageRecord.deleteOne(db, key: id) }

    func config(_ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM config WHERE key = ?", arguments: [key])
    }
    func setConfig(_ key: String, _ value: String?) throws {
        if let value {
            try db.execute(
                sql:
                    "INSERT INTO config(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        } else {
            try db.execute(sql: "DELETE FROM config WHERE key = ?", arguments: [key])
        }
    }

    func addOperation(_ operation: OperationRecord) throws -> Int64 {
        var row = operation
        try row.insert(db)
        return row.id ?? db.lastInsertedRowID
    }
    func operations() throws -> [OperationRecord] {
        try OperationRecord.order(Column("id")).fetchAll(db)
    }
    func removeOperation(id: Int64) throws { _ = try OperationRecord.deleteOne(db, key: id) }

    func appendAudit(_ entry: AuditRecord) throws {
        var row = entry
        try row.insert(db)
    }
    func auditLog(instanceID: String?) throws -> [AuditRecord] {
        var request = AuditRecord.order(Column("id"))
        if let instanceID { request = request.filter(Column("instanceID") == instanceID) }
        return try request.fetchAll(db)
    }

    /// Turns a UNIQUE violation into ``CatalogError/conflict(_:)``.
    private func unique(_ what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw CatalogError.conflict(what)
        }
    }
}
