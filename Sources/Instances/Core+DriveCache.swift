import BlockIO
import Catalog
import Foundation

/// The drive cache (catalog table `driveCache`): what reconciliation and the space figures last
/// read from a drive, valid while the drive's ``FileStamp`` is unchanged, so `list` and `show`
/// need not reopen every drive. Running instances always go to QEMU: it writes the file.
extension Core {
    /// The drive's path and stamp as a cache key, or nil when the stamp cannot be trusted: the file
    /// is missing, or changed within the racy window (a second write could keep the same stamp).
    /// Taken before the drive is read, so a write during the read only makes the next lookup miss.
    func driveStamp(_ record: InstanceRecord) -> String? {
        guard !isRunning(record), let stamp = try? FileStamp(path: absolute(record.drivePath)) else { return nil }
        guard !stamp.isRacy(now: Int64(Date().timeIntervalSince1970 * 1e9)) else { return nil }
        return record.drivePath + " " + stamp.text
    }

    /// The catalog rows reconciliation compares, length-prefixed so no two row lists read alike.
    static func rowsKey(_ rows: [SnapshotRecord]) -> String {
        rows.map { row in
            [String(row.id ?? -1), row.qcowID ?? "", row.name].map { "\($0.utf8.count):\($0)" }.joined()
        }.joined(separator: ";")
    }

    /// Whether the drive and the instance's snapshot rows are both as the last reconciliation left
    /// them in agreement (then reading the drive's table again would change nothing).
    func reconciledBefore(_ record: InstanceRecord, stamp: String) throws -> Bool {
        try store.read { session in
            guard let cache = session as? any DriveCacheCatalogSession,
                let saved = try cache.driveCache(instanceID: record.id)?.reconciledStamp
            else { return false }
            return saved == stamp + "\n" + Self.rowsKey(try session.snapshots(instanceID: record.id))
        }
    }

    /// Reconciles every record, reading the cache and the snapshot rows of all of them in one
    /// query each; only drives that miss are reconciled one by one (``reconcile(_:)``). Returns
    /// the records, what was noticed, and each instance's snapshot count.
    func reconcileAll(_ records: [InstanceRecord]) throws -> [(InstanceRecord, [String], Int)] {
        let batch = try store.read { session -> ([String: DriveCacheRecord], [String: [SnapshotRecord]])? in
            guard let cache = session as? any DriveCacheCatalogSession else { return nil }
            return (try cache.driveCaches(), try cache.snapshotsByInstance())
        }
        return try records.map { record -> (InstanceRecord, [String], Int) in
            if let batch, record.runState != RunState.running.rawValue, let stamp = driveStamp(record) {
                let rows = batch.1[record.id] ?? []
                if batch.0[record.id]?.reconciledStamp == stamp + "\n" + Self.rowsKey(rows) {
                    return (record, [], rows.count)
                }
            }
            let (current, notices) = try reconcile(record)
            let count = try store.read { try $0.snapshots(instanceID: current.id).count }
            return (current, notices, count)
        }
    }

    /// Records, in the reconciling transaction, that the rows now agree with the drive at `stamp`.
    func markReconciled(_ session: any CatalogSession, instanceID: String, stamp: String) throws {
        guard let cache = session as? any DriveCacheCatalogSession else { return }
        var row = try cache.driveCache(instanceID: instanceID) ?? DriveCacheRecord(instanceID: instanceID)
        row.reconciledStamp = stamp + "\n" + Self.rowsKey(try session.snapshots(instanceID: instanceID))
        try cache.save(row)
    }

    /// Space figures; on a running instance they are read beside QEMU and may lag by a flush.
    /// A stopped drive's figures come from the cache while its stamp is unchanged.
    func space(_ record: InstanceRecord) throws -> DriveSpace {
        let path = try drivePath(record)
        guard let stamp = driveStamp(record) else { return try engine.space(of: path) }
        let cached = try store.read { session -> String? in
            guard let row = try (session as? any DriveCacheCatalogSession)?.driveCache(instanceID: record.id),
                row.spaceStamp == stamp
            else { return nil }
            return row.space
        }
        if let cached, let space = CachedSpace.decode(cached) { return space }
        let space = try engine.space(of: path)
        if let text = CachedSpace.encode(space) {
            try store.write { session in
                guard let cache = session as? any DriveCacheCatalogSession,
                    try session.instance(id: record.id) != nil
                else { return }
                var row = try cache.driveCache(instanceID: record.id) ?? DriveCacheRecord(instanceID: record.id)
                row.spaceStamp = stamp
                row.space = text
                try cache.save(row)
            }
        }
        return space
    }
}

/// ``DriveSpace`` as the cache stores it.
private struct CachedSpace: Codable {
    var active: UInt64
    var snapshotOnly: UInt64
    var file: UInt64
    /// qcow2 snapshot ID → referenced, unique, written.
    var snapshots: [String: [UInt64]]

    static func encode(_ space: DriveSpace) -> String? {
        let value = CachedSpace(
            active: space.activeBytes, snapshotOnly: space.snapshotOnlyBytes, file: space.fileBytes,
            snapshots: space.snapshots.mapValues { [$0.referenced, $0.unique, $0.written] })
        return (try? JSONEncoder().encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }

    static func decode(_ text: String) -> DriveSpace? {
        guard let value = try? JSONDecoder().decode(CachedSpace.self, from: Data(text.utf8)) else { return nil }
        var snapshots: [String: SnapshotSpaceFigures] = [:]
        for (id, figures) in value.snapshots {
            guard figures.count == 3 else { return nil }
            snapshots[id] = SnapshotSpaceFigures(referenced: figures[0], unique: figures[1], written: figures[2])
        }
        return DriveSpace(
            activeBytes: value.active, snapshotOnlyBytes: value.snapshotOnly, snapshots: snapshots,
            fileBytes: value.file)
    }
}
