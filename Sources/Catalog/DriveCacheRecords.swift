import Foundation
import GRDB

/// What vmimg last learned from an instance's drive file, keyed by the file's stamp (inode, size,
/// mtime, ctime), so listing and showing instances need not reopen every drive: while the stamp
/// is unchanged, the drive's snapshot table and cluster references are too.
public struct DriveCacheRecord: Codable, Equatable, Sendable {
    public var instanceID: String
    /// Drive stamp and catalog snapshot rows at the last reconciliation that found them in
    /// agreement; nil = reconcile again.
    public var reconciledStamp: String?
    /// Drive stamp the `space` figures were computed at.
    public var spaceStamp: String?
    /// The space figures (JSON the instance layer writes and reads).
    public var space: String?

    public init(instanceID: String, reconciledStamp: String? = nil, spaceStamp: String? = nil, space: String? = nil) {
        self.instanceID = instanceID
        self.reconciledStamp = reconciledStamp
        self.spaceStamp = spaceStamp
        self.space = space
    }
}

extension DriveCacheRecord: FetchableRecord, PersistableRecord {
    public static var databaseTableName: String { "driveCache" }
}

/// Drive cache rows, kept apart from ``CatalogSession`` so stores without a cache need not change
/// (the instance layer then reads the drives every time).
public protocol DriveCacheCatalogSession {
    func driveCache(instanceID: String) throws -> DriveCacheRecord?
    /// Every row, by instance ID (one query for a whole list).
    func driveCaches() throws -> [String: DriveCacheRecord]
    /// Every snapshot row grouped by instance ID, each group in ``CatalogSession/snapshots(instanceID:)``'s order.
    func snapshotsByInstance() throws -> [String: [SnapshotRecord]]
    /// Inserts or replaces the instance's row.
    func save(_ cache: DriveCacheRecord) throws
}

extension SQLiteSession: DriveCacheCatalogSession {
    func driveCache(instanceID: String) throws -> DriveCacheRecord? {
        try DriveCacheRecord.fetchOne(db, key: instanceID)
    }
    func driveCaches() throws -> [String: DriveCacheRecord] {
        Dictionary(try DriveCacheRecord.fetchAll(db).map { ($0.instanceID, $0) }, uniquingKeysWith: { a, _ in a })
    }
    func snapshotsByInstance() throws -> [String: [SnapshotRecord]] {
        let rows = try SnapshotRecord.order(Column("instanceID"), Column("sequence"), Column("id")).fetchAll(db)
        return Dictionary(grouping: rows, by: \.instanceID)
    }
    func save(_ cache: DriveCacheRecord) throws { try cache.save(db) }
}

extension CatalogMigrations {
    /// v4: the drive cache. Registered after the shipped ones, never edited.
    static func registerDriveCache(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-drive-cache") { db in
            try db.create(table: "driveCache") { t in
                t.primaryKey("instanceID", .text).references("instance", onDelete: .cascade)
                t.column("reconciledStamp", .text)
                t.column("spaceStamp", .text)
                t.column("space", .text)
            }
        }
    }
}
