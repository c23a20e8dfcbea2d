import Catalog
import Foundation

/// The operations journal: a row is written before a multi-step operation touches a file, and the
/// transaction that commits the operation removes it. A row found by a later run (the writer was
/// killed) is recovered: creations are rolled back, deletions and confirmed reverts rolled forward.
enum JournalKind: String {
    /// Delete `created` files: the operation never committed.
    case rollback
    /// Delete `garbage` files: the catalog already forgot them.
    case cleanup
    /// A snapshot `snapshot` may have been made; `victims` are due for retention.
    case snapshotCreate = "snapshot-create"
    /// Delete snapshot `victims` (user asked: roll forward).
    case snapshotDelete = "snapshot-delete"
    /// Revert to `target`, then delete `victims` (confirmed rebuild: roll forward).
    case revert
}

/// One snapshot as the journal names it.
struct JournalSnapshot: Codable, Equatable {
    var id: String
    var name: String
}

struct JournalPayload: Codable {
    /// Home-relative paths made by the operation.
    var created: [String] = []
    /// Home-relative paths to delete once committed.
    var garbage: [String] = []
    var snapshot: String?
    var target: JournalSnapshot?
    var victims: [JournalSnapshot] = []
    var audit: String?

    func encoded() -> String {
        (try? JSONEncoder().encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ text: String) -> JournalPayload {
        (try? JSONDecoder().decode(JournalPayload.self, from: Data(text.utf8))) ?? JournalPayload()
    }
}

extension CatalogSession {
    /// Writes a journal row of `kind` for `instanceID`; returns its id.
    func journal(_ kind: JournalKind, instanceID: String?, _ payload: JournalPayload) throws -> Int64 {
        try addOperation(
            OperationRecord(
                kind: kind.rawValue, instanceID: instanceID, payload: payload.encoded(), createdAt: Date(),
                pid: Int64(ProcessInfo.processInfo.processIdentifier)))
    }
}
