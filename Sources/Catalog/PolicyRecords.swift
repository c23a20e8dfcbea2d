import Foundation
import GRDB

/// A drive's snapshot schedule and retention (`instance policy set`): one row per instance.
public struct SnapshotPolicyRecord: Codable, Equatable, Sendable {
    public var instanceID: String
    /// Seconds between scheduled snapshots (`--every`).
    public var everySeconds: Int64
    /// Newest snapshot of each of this many hours, days and ISO weeks is kept (`--keep-*`).
    public var keepHourly: Int
    public var keepDaily: Int
    public var keepWeekly: Int
    public var createdAt: Date

    public init(
        instanceID: String, everySeconds: Int64, keepHourly: Int, keepDaily: Int, keepWeekly: Int, createdAt: Date
    ) {
        self.instanceID = instanceID
        self.everySeconds = everySeconds
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.createdAt = createdAt
    }
}

extension SnapshotPolicyRecord: FetchableRecord, PersistableRecord {
    public static var databaseTableName: String { "snapshotPolicy" }
}

/// Policy rows, kept apart from ``CatalogSession`` so stores that have no policies need not change.
public protocol PolicyCatalogSession {
    func policy(instanceID: String) throws -> SnapshotPolicyRecord?
    /// Every policy, by instance ID.
    func policies() throws -> [SnapshotPolicyRecord]
    /// Inserts or replaces the instance's policy.
    func save(_ policy: SnapshotPolicyRecord) throws
    func deletePolicy(instanceID: String) throws
}

extension SQLiteSession: PolicyCatalogSession {
    func policy(instanceID: String) throws -> SnapshotPolicyRecord? {
        try SnapshotPolicyRecord.fetchOne(db, key: instanceID)
    }
    func policies() throws -> [SnapshotPolicyRecord] {
        try SnapshotPolicyRecord.order(Column("instanceID")).fetchAll(db)
    }
    func save(_ policy: SnapshotPolicyRecord) throws { try policy.save(db) }
    func deletePolicy(instanceID: String) throws { _ = try SnapshotPolicyRecord.deleteOne(db, key: instanceID) }
}

extension CatalogMigrations {
    /// v3: snapshot policies (issue 11). Registered after the shipped ones, never edited.
    static func registerPolicies(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-snapshot-policies") { db in
            try db.create(table: "snapshotPolicy") { t in
                t.primaryKey("instanceID", .text).references("instance", onDelete: .cascade)
                t.column("everySeconds", .integer).notNull()
                t.column("keepHourly", .integer).notNull()
                t.column("keepDaily", .integer).notNull()
                t.column("keepWeekly", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
            }
        }
    }
}
