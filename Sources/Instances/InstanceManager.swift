import Catalog
import Foundation

/// The instance service: create, list, show, delete instances; snapshots with retention and pins;
/// rebuild; duplicate; quota and budget; audit; start and stop. Every method is one operation
/// of `vmimg instance …` and returns a result struct the CLI renders.
///
/// All policies live here, independent of the ``DriveEngine`` (files) and the ``CatalogStore``
/// (records). Multi-step operations journal their intent first, so a process killed mid-way is
/// cleaned up by the next one (``recoveryReport``).
public final class InstanceManager: Sendable {
    let core: Core
    /// "My images", sharing this manager's catalog.
    public let library: ImageLibrary
    /// What opening the home recovered and noticed.
    public let recoveryReport: RecoveryReport

    /// Opens (creating if needed) the home, migrates the catalog, and recovers interrupted operations.
    /// - Parameters:
    ///   - home: the vmimg home (``VMImgHome/resolve(explicit:environment:)``).
    ///   - engine: the drive engine; ``EngineAdapter`` by default.
    ///   - store: the catalog; the home's SQLite file by default. Open one per file per process.
    ///   - qemuSystem: the QEMU binary used by ``start(_:options:)``.
    /// - Throws: ``InstancesError/io(path:message:)`` when the home cannot be made, ``CatalogError``.
    public init(
        home: VMImgHome, engine: any DriveEngine = EngineAdapter(), store: (any CatalogStore)? = nil,
        qemuSystem: String = "qemu-system-x86_64", hooks: InstanceHooks = InstanceHooks()
    ) throws {
        do {
            try home.createDirectories()
        } catch {
            throw InstancesError.io(path: home.root, message: "cannot create the vmimg home: \(error)")
        }
        let store = try store ?? SQLiteCatalog(path: home.catalogPath)
        let core = Core(home: home, store: store, engine: engine, hooks: hooks, qemuSystem: qemuSystem)
        self.core = core
        library = ImageLibrary(core: core)
        recoveryReport = try core.reading { recovered in
            var report = recovered
            for (_, notices, _) in try core.reconcileAll(core.store.read { try $0.instances() }) {
                report.notices += notices
            }
            return report
        }
    }

    public var home: VMImgHome { core.home }

    // MARK: - Instances

    /// `instance create NAME (--image IMAGE | --size SIZE) [--quota] [--max-snapshots] [--audit]`.
    /// - Throws: `alreadyExists`, `imageNotFound`, `snapshotNotFound`, `quotaExceeded` (full copy
    ///   over quota), `invalidName`, engine errors. Nothing is left behind on failure.
    public func create(_ request: CreateInstanceRequest) throws -> InstanceSummary {
        try Core.validateName(request.name, what: "instance")
        guard request.maxSnapshots >= 1 else {
            throw InstancesError.invalidArgument("--max-snapshots must be at least 1")
        }
        return try core.locked {
            guard try core.store.read({ try $0.instance(named: request.name) }) == nil else {
                throw InstancesError.alreadyExists(what: "instance", name: request.name)
            }
            let source = try resolveSource(request.source)
            let id = Core.newID()
            let drive = Core.newDrivePath(instanceID: id)
            let export =
                source.needsExport(fullCopy: request.fullCopy) ? "images/\(Core.newID()).qcow2" : nil
            return try core.withRollback(
                instanceID: id, created: ["instances/\(id)"] + (export.map { [$0] } ?? [])
            ) {
                op in
                try FileManager.default.createDirectory(
                    atPath: core.absolute("instances/\(id)"), withIntermediateDirectories: true)
                let made = try makeDrive(drive, from: source, fullCopy: request.fullCopy, export: export)
                core.step("create.drive-made")
                try checkQuota(name: request.name, quota: request.quota, drive: drive)
                let record = InstanceRecord(
                    id: id, name: request.name, drivePath: drive, virtualSize: Int64(made.virtualSize),
                    quota: request.quota.map(Int64.init), maxSnapshots: request.maxSnapshots,
                    audit: request.audit.rawValue, baseImageID: made.base?.id, createdAt: Date())
                try core.store.write { s in
                    if let image = made.exported { try s.save(image) }
                    try s.save(record)
                    try core.audit(
                        s, mode: request.audit, .create, instanceID: id, subject: request.name,
                        detail: made.description)
                    try s.removeOperation(id: op)
                }
                return try summary(record)
            }
        }
    }

    /// `instance list`, by name, after reconciling run state and snapshots. Shared lock: lists
    /// run side by side; unchanged drives are not reopened (``Core/driveStamp(_:)``).
    public func list() throws -> [InstanceSummary] {
        try core.reading { _ in
            let reconciled = try core.reconcileAll(core.store.read { try $0.instances() })
            let images = try core.store.read { s in
                Dictionary(try s.images().map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
            }
            return reconciled.map { record, _, count in
                summary(record, snapshotCount: count, baseImage: record.baseImageID.flatMap { images[$0] })
            }
        }
    }

    /// `instance show NAME`: drive path, state, virtual size, active-layer use vs quota,
    /// snapshots with space figures, and anything reconciliation noticed.
    public func show(_ name: String) throws -> InstanceDetails {
        try core.reading { _ in
            let (record, notices) = try core.reconcile(core.instance(named: name))
            let space = try core.space(record)
            return InstanceDetails(
                summary: try summary(record), quota: record.quota.map { UInt64($0) },
                maxSnapshots: record.maxSnapshots,
                activeBytes: space.activeBytes, snapshotOnlyBytes: space.snapshotOnlyBytes,
                fileBytes: space.fileBytes,
                snapshots: try snapshotDetails(record, space: space), pid: record.pid,
                qmpSocket: record.qmpSocket,
                notices: notices)
        }
    }

    /// `instance disk NAME`: the drive's absolute path.
    public func disk(_ name: String) throws -> String {
        try core.drivePath(core.instance(named: name))
    }

    /// `instance delete NAME`: refused while running or while it has pinned snapshots.
    public func delete(_ name: String) throws {
        try core.locked {
            let record = try core.instance(named: name)
            if core.isRunning(record) {
                throw InstancesError.instanceRunning(instance: name, operation: "delete")
            }
            let pinned = try core.store.read { try $0.snapshots(instanceID: record.id) }.filter(\.pinned)
                .map(\.name)
            guard pinned.isEmpty else {
                throw InstancesError.snapshotsPinned(instance: name, names: pinned, operation: "delete")
            }
            let garbage = ["instances/\(record.id)"]
            let op = try core.store.write { s in
                try s.deleteInstance(id: record.id)
                try core.audit(
                    s, mode: core.auditMode(record.audit), .delete, instanceID: record.id, subject: name,
                    detail: "deleted")
                return try s.journal(.cleanup, instanceID: record.id, JournalPayload(garbage: garbage))
            }
            core.step("delete.row-deleted")
            core.collectGarbage(operation: op, garbage)
        }
    }

    /// Sets the instance's quota (nil removes it).
    public func setQuota(_ name: String, _ quota: UInt64?) throws {
        try core.locked {
            var record = try core.instance(named: name)
            record.quota = quota.map(Int64.init)
            let updated = record
            try core.store.write { try $0.save(updated) }
        }
    }

    // MARK: - Config, audit

    /// `config set budget SIZE` (nil removes it): a host-wide limit checked before each snapshot.
    public func setBudget(_ bytes: UInt64?) throws {
        try core.locked {
            try core.store.write { try $0.setConfig("budget", bytes.map { String($0) }) }
        }
    }

    /// `config get budget`: the budget and the host bytes vmimg files use.
    public func budgetStatus() throws -> BudgetStatus {
        BudgetStatus(budget: try core.budget(), inUse: try core.bytesInUse())
    }

    /// The audit log, oldest first; all instances when `instance` is nil.
    public func auditLog(instance: String? = nil) throws -> [AuditEntry] {
        let id = try instance.map { try core.instance(named: $0).id }
        return try core.store.read { try $0.auditLog(instanceID: id) }.map {
            AuditEntry(
                at: $0.at, subject: $0.subject, operation: $0.operation, detail: $0.detail,
                mode: core.auditMode($0.mode))
        }
    }

    /// Re-reads every drive's snapshot table and QEMU state and fixes the catalog.
    public func reconcile() throws -> RecoveryReport {
        try core.locked(recovering: false) {
            var report = try core.recover()
            for record in try core.store.read({ try $0.instances() }) {
                report.notices += try core.reconcile(record).1
            }
            return report
        }
    }

    // MARK: - Helpers

    func summary(_ record: InstanceRecord) throws -> InstanceSummary {
        let (count, base) = try core.store.read { s in
            (
                try s.snapshots(instanceID: record.id).count,
                try record.baseImageID.flatMap { try s.image(id: $0)?.name }
            )
        }
        return summary(record, snapshotCount: count, baseImage: base)
    }

    func summary(_ record: InstanceRecord, snapshotCount: Int, baseImage: String?) -> InstanceSummary {
        InstanceSummary(
            id: record.id, name: record.name, state: core.isRunning(record) ? .running : .stopped,
            drivePath: core.absolute(record.drivePath), virtualSize: UInt64(record.virtualSize),
            audit: core.auditMode(record.audit), snapshotCount: snapshotCount, baseImage: baseImage)
    }

    func snapshotDetails(_ record: InstanceRecord, space: DriveSpace?) throws -> [SnapshotDetails] {
        try core.store.read { try $0.snapshots(instanceID: record.id) }.map { row in
            SnapshotDetails(
                name: row.name, qcowID: row.qcowID, createdAt: row.createdAt, pinned: row.pinned,
                audit: core.auditMode(row.audit), space: row.qcowID.flatMap { space?.snapshots[$0] })
        }
    }

    /// The quota counts only the active layer (R4).
    func checkQuota(name: String, quota: UInt64?, drive: String) throws {
        guard let quota else { return }
        let used = try core.engine.space(of: core.absolute(drive)).activeBytes
        if used > quota {
            throw InstancesError.quotaExceeded(instance: name, quota: Int64(quota), used: Int64(used))
        }
    }
}
