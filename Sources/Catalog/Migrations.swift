import GRDB

/// The catalog schema, one migration per shipped change. A shipped migration is never edited:
/// add a new one (Formats/catalog.md lists them).
enum CatalogMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-instances-snapshots-images") { db in
            try db.create(table: "instance") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull().unique()
                t.column("drivePath", .text).notNull()
                t.column("virtualSize", .integer).notNull()
                t.column("quota", .integer)
                t.column("maxSnapshots", .integer).notNull()
                t.column("audit", .text).notNull()
                t.column("baseImageID", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("runState", .text).notNull()
                t.column("pid", .integer)
                t.column("qmpSocket", .text)
                t.column("processStart", .integer)
            }
            try db.create(table: "snapshot") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("instanceID", .text).notNull().references("instance", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("qcowID", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("pinned", .boolean).notNull()
                t.column("audit", .text).notNull()
                t.column("sequence", .integer).notNull()
                t.uniqueKey(["instanceID", "name"])
            }
            try db.create(table: "image") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull().unique()
                t.column("path", .text).notNull()
                t.column("format", .text).notNull()
                t.column("virtualSize", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("origin", .text).notNull()
                t.column("sourceInstanceID", .text)
                t.column("sourceSnapshot", .text)
                t.column("audit", .text)
                t.column("backingImageID", .text)
            }
            try db.create(table: "config") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("v2-journal-audit") { db in
            try db.create(table: "operation") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("kind", .text).notNull()
                t.column("instanceID", .text)
                t.column("payload", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("pid", .integer).notNull()
            }
            try db.create(table: "audit") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("instanceID", .text).indexed()
                t.column("subject", .text).notNull()
                t.column("operation", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("mode", .text).notNull()
            }
        }
        registerPolicies(&migrator)
        registerDriveCache(&migrator)
        return migrator
    }
}
