import Catalog
import Foundation

/// Test and fault-injection hooks. `afterStep` is called with a step name (`create.drive-made`,
/// `snapshot.made`, …) after each file step and before the catalog commits it.
public struct InstanceHooks: Sendable {
    public var afterStep: @Sendable (String) -> Void

    public init(afterStep: @escaping @Sendable (String) -> Void = { _ in }) {
        self.afterStep = afterStep
    }
}

/// What InstanceManager and ImageLibrary share: the home, the catalog, the engine, the lock.
final class Core: Sendable {
    let home: VMImgHome
    let store: any CatalogStore
    let engine: any DriveEngine
    let hooks: InstanceHooks
    let qemuSystem: String

    init(
        home: VMImgHome, store: any CatalogStore, engine: any DriveEngine, hooks: InstanceHooks,
        qemuSystem: String
    ) {
        self.home = home
        self.store = store
        self.engine = engine
        self.hooks = hooks
        self.qemuSystem = qemuSystem
    }

    func absolute(_ relative: String) -> String { home.path(relative) }

    /// Runs a mutating operation under the home lock, after finishing whatever a killed
    /// process left in the journal.
    func locked<T>(recovering: Bool = true, _ body: () throws -> T) throws -> T {
        let lock = try HomeLock(path: home.lockPath)
        defer { withExtendedLifetime(lock) {} }
        if recovering { _ = try recover() }
        return try body()
    }

    /// Runs an operation that only reads (and reconciles the catalog with the drives, which is
    /// idempotent) under the shared home lock, so reads run side by side. A journal row means a
    /// killed process left work behind: then it takes the exclusive lock and recovers first,
    /// handing `body` what recovery did.
    func reading<T>(_ body: (RecoveryReport) throws -> T) throws -> T {
        let shared = try HomeLock(path: home.lockPath, shared: true)
        if try store.read({ try $0.operations() }).isEmpty {
            return try withExtendedLifetime(shared) { try body(RecoveryReport()) }
        }
        shared.unlock()
        return try locked(recovering: false) { try body(recover()) }
    }

    func step(_ name: String) { hooks.afterStep(name) }

    func instance(named name: String) throws -> InstanceRecord {
        guard let record = try store.read({ try $0.instance(named: name) }) else {
            throw InstancesError.instanceNotFound(name)
        }
        return record
    }

    func auditMode(_ text: String?) -> AuditMode { text.flatMap(AuditMode.init(rawValue:)) ?? .off }

    /// Appends an audit line when `mode` asks for `operation`.
    func audit(
        _ session: any CatalogSession, mode: AuditMode, _ operation: AuditedOperation,
        instanceID: String?,
        subject: String, detail: String
    ) throws {
        guard mode.logs(operation) else { return }
        try session.appendAudit(
            AuditRecord(
                at: Date(), instanceID: instanceID, subject: subject, operation: operation.rawValue,
                detail: detail,
                mode: mode.rawValue))
    }

    /// Deletes a home-relative file or directory; a missing one is fine.
    func remove(_ relative: String) {
        let path = absolute(relative)
        if FileManager.default.fileExists(atPath: path) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// Undoes an operation that failed before committing: deletes what it made and its journal row.
    func rollBack(operation id: Int64, _ payload: JournalPayload) {
        for path in payload.created.reversed() { remove(path) }
        _ = try? store.write { try $0.removeOperation(id: id) }
    }

    /// Runs `body` after writing a rollback journal row for `created`; on any error the files
    /// are deleted and the row removed. `body` must remove the row in its commit transaction.
    func withRollback<T>(instanceID: String?, created: [String], _ body: (Int64) throws -> T) throws
        -> T
    {
        let payload = JournalPayload(created: created)
        let id = try store.write { try $0.journal(.rollback, instanceID: instanceID, payload) }
        do {
            return try body(id)
        } catch {
            rollBack(operation: id, payload)
            throw error
        }
    }

    /// Finishes a commit that left `garbage` to delete: the row was written in the commit.
    func collectGarbage(operation id: Int64, _ garbage: [String]) {
        for path in garbage { remove(path) }
        _ = try? store.write { try $0.removeOperation(id: id) }
    }

    static func validateName(_ name: String, what: String) throws {
        let allowed = CharacterSet(
            charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 64 else {
            throw InstancesError.invalidName(name, reason: "\(what) names have 1 to 64 characters")
        }
        guard name.unicodeScalars.allSatisfy(allowed.contains), let first = name.first, first != ".",
            first != "-"
        else {
            throw InstancesError.invalidName(
                name, reason: "use letters, digits, '.', '_' and '-', not starting with '.' or '-'")
        }
    }

    /// Snapshot names must not look like qcow2 snapshot IDs, which qemu-img matches first.
    /// Snapshot names may also hold inner spaces ("test snapshot", as in the seed's console): they
    /// never become file names.
    static func validateSnapshotName(_ name: String) throws {
        do {
            guard name.trimmingCharacters(in: .whitespaces) == name else {
                throw InstancesError.invalidName(name, reason: "no leading or trailing spaces")
            }
            try validateName(name.replacingOccurrences(of: " ", with: "_"), what: "snapshot")
        } catch InstancesError.invalidName(_, let reason) {
            throw InstancesError.invalidName(name, reason: reason)
        }
        guard !name.allSatisfy(\.isNumber) else {
            throw InstancesError.invalidName(
                name, reason: "a snapshot name needs a non-digit (digits alone are qcow2 IDs)")
        }
    }

    static func newID() -> String { UUID().uuidString.lowercased() }

    /// A fresh drive file name inside an instance directory (a rebuild writes a new one beside the old).
    static func newDrivePath(instanceID: String) -> String {
        "instances/\(instanceID)/disk-\(newID().prefix(8)).qcow2"
    }
}
