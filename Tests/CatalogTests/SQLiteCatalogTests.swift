import Catalog
import Foundation
import Testing

/// A fresh catalog file per test, migrated from empty.
final class CatalogDir {
    let path: String
    init() throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "vmimg-cat-\(UUID().uuidString)"
            ).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit {
        if ProcessInfo.processInfo.environment["VMIMG_KEEP_TMP"] != "1" {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
    var file: String { path + "/catalog.sqlite" }
}

func instance(_ name: String, id: String = UUID().uuidString) -> InstanceRecord {
    InstanceRecord(
        id: id, name: name, drivePath: "instances/\(id)/disk.qcow2", virtualSize: 1 << 20, quota: nil,
        maxSnapshots: 5,
        audit: "off", baseImageID: nil, createdAt: Date())
}

struct Boom: Error {}

@Test func migratesFromEmptyInWALMode() throws {
    let dir = try CatalogDir()
    let catalog = try SQLiteCatalog(path: dir.file)
    #expect(
        try catalog.appliedMigrations() == [
            "v1-instances-snapshots-images", "v2-journal-audit", "v3-snapshot-policies", "v4-drive-cache",
        ])
    #expect(try catalog.journalMode() == "wal")
    // Reopening applies nothing new and keeps the data.
    try catalog.write { try $0.save(instance("a")) }
    let again = try SQLiteCatalog(path: dir.file)
    #expect(try again.read { try $0.instances().map(\.name) } == ["a"])
}

@Test func duplicateNamesAreConflicts() throws {
    let dir = try CatalogDir()
    let catalog = try SQLiteCatalog(path: dir.file)
    try catalog.write { try $0.save(instance("a")) }
    let error = #expect(throws: CatalogError.self) {
        try catalog.write { try $0.save(instance("a")) }
    }
    #expect(error == .conflict("instance 'a'"))
}

@Test func aThrowingWriteCommitsNothing() throws {
    let dir = try CatalogDir()
    let catalog = try SQLiteCatalog(path: dir.file)
    #expect(throws: Boom.self) {
        try catalog.write { s in
            try s.save(instance("a"))
            _ = try s.addOperation(
                OperationRecord(kind: "rollback", instanceID: nil, payload: "{}", createdAt: Date(), pid: 1)
            )
            throw Boom()
        }
    }
    #expect(try catalog.read { try $0.instances().isEmpty && $0.operations().isEmpty })
}

@Test func snapshotsOrderBySequenceAndCascadeWithTheirInstance() throws {
    let dir = try CatalogDir()
    let catalog = try SQLiteCatalog(path: dir.file)
    let a = instance("a")
    try catalog.write { s in
        try s.save(a)
        for (name, seq) in [("late", 3), ("early", 1), ("mid", 2)] {
            try s.save(
                SnapshotRecord(
                    instanceID: a.id, name: name, qcowID: "\(seq)", createdAt: Date(), audit: "all",
                    sequence: Int64(seq)))
        }
    }
    #expect(
        try catalog.read { try $0.snapshots(instanceID: a.id).map(\.name) } == ["early", "mid", "late"])
    let error = #expect(throws: CatalogError.self) {
        try catalog.write {
            try $0.save(
                SnapshotRecord(
                    instanceID: a.id, name: "mid", qcowID: nil, createdAt: Date(), audit: "off", sequence: 9))
        }
    }
    #expect(error == .conflict("snapshot 'mid'"))
    try catalog.write { try $0.deleteInstance(id: a.id) }
    #expect(try catalog.read { try $0.snapshots(instanceID: a.id) }.isEmpty)
}

@Test func journalConfigAndAuditRoundTrip() throws {
    let dir = try CatalogDir()
    let catalog = try SQLiteCatalog(path: dir.file)
    let id = try catalog.write { s in
        try s.setConfig("budget", "1024")
        try s.appendAudit(
            AuditRecord(
                at: Date(), instanceID: "i", subject: "a", operation: "create", detail: "x", mode: "all"))
        try s.appendAudit(
            AuditRecord(
                at: Date(), instanceID: "j", subject: "b", operation: "start", detail: "y", mode: "all"))
        return try s.addOperation(
            OperationRecord(
                kind: "cleanup", instanceID: "i", payload: "{\"garbage\":[]}", createdAt: Date(), pid: 7))
    }
    let reopened = try SQLiteCatalog(path: dir.file)
    let (budget, auditI, auditAll, ops) = try reopened.read { s throws in
        (
            try s.config("budget"), try s.auditLog(instanceID: "i").map(\.operation),
            try s.auditLog(instanceID: nil).count,
            try s.operations().map(\.id)
        )
    }
    #expect(budget == "1024")
    #expect(auditI == ["create"])
    #expect(auditAll == 2)
    #expect(ops == [id])
    try reopened.write { s in
        try s.setConfig("budget", nil)
        try s.removeOperation(id: id)
    }
    #expect(try reopened.read { try $0.config("budget") == nil && $0.operations().isEmpty })
}

@Test func imagesAreFoundByNameAndID() throws {
    let dir = try CatalogDir()
    let catalog = try SQLiteCatalog(path: dir.file)
    let image = ImageRecord(
        id: "img1", name: "debian", path: "images/img1.qcow2", format: "qcow2", virtualSize: 1 << 30,
        createdAt: Date(),
        origin: "snapshot", sourceInstanceID: "i", sourceSnapshot: "s1", audit: "changes")
    try catalog.write { try $0.save(image) }
    #expect(try catalog.read { try $0.image(named: "debian")?.sourceSnapshot } == "s1")
    #expect(try catalog.read { try $0.image(id: "img1")?.audit } == "changes")
    try catalog.write { try $0.deleteImage(id: "img1") }
    #expect(try catalog.read { try $0.images() }.isEmpty)
}
