import Catalog
import Foundation

/// One line of `images list`: an imported or exported image, or an instance snapshot (R6), which
/// can be given as `INSTANCE@SNAPSHOT` wherever an image is asked for.
public struct LibraryEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case image
        case instanceSnapshot = "instance-snapshot"
    }
    public var kind: Kind
    /// The name to pass to `--image`.
    public var name: String
    public var virtualSize: UInt64
    public var createdAt: Date
    /// `import`, `snapshot` (exported), or the instance a snapshot belongs to.
    public var origin: String
    /// Audit mode inherited from the drive it came from (R5); nil for imports.
    public var audit: AuditMode?
    /// Absolute path for images; nil for instance snapshots (they live in the drive).
    public var path: String?
}

/// "My images": imported images (stored as qcow2) and snapshots exported from instances.
public final class ImageLibrary: Sendable {
    let core: Core

    init(core: Core) { self.core = core }

    /// `images import NAME FILE [-f raw|qcow2]`: checks the file (declared format matches, no
    /// backing file, no external data file) and stores it as a standalone qcow2.
    /// - Throws: `alreadyExists`, `unsafeImage`, `io`, engine errors; nothing is left behind.
    public func importImage(name: String, file: String, format: String? = nil) throws -> LibraryEntry {
        try Core.validateName(name, what: "image")
        if let format, !["raw", "qcow2"].contains(format) {
            throw InstancesError.invalidArgument("-f must be raw or qcow2, not '\(format)'")
        }
        return try core.locked {
            guard try core.store.read({ try $0.image(named: name) }) == nil else {
                throw InstancesError.alreadyExists(what: "image", name: name)
            }
            let id = Core.newID()
            let path = "images/\(id).qcow2"
            return try core.withRollback(instanceID: nil, created: [path]) { op in
                let size = try core.engine.importImage(from: file, format: format, to: core.absolute(path))
                core.step("import.image-made")
                let record = ImageRecord(
                    id: id, name: name, path: path, format: "qcow2", virtualSize: Int64(size),
                    createdAt: Date(),
                    origin: "import")
                try core.store.write { s in
                    try s.save(record)
                    try s.removeOperation(id: op)
                }
                return entry(record)
            }
        }
    }

    /// `images list`: images by name, then every instance snapshot as `INSTANCE@SNAPSHOT`.
    /// Shared lock, like `instance list`.
    public func list() throws -> [LibraryEntry] {
        try core.reading { _ in
            var entries = try core.store.read { try $0.images() }.map(entry)
            for record in try core.store.read({ try $0.instances() }) {
                let (current, _) = try core.reconcile(record)
                for row in try core.store.read({ try $0.snapshots(instanceID: current.id) }) {
                    entries.append(
                        LibraryEntry(
                            kind: .instanceSnapshot, name: "\(current.name)@\(row.name)",
                            virtualSize: UInt64(current.virtualSize), createdAt: row.createdAt,
                            origin: current.name,
                            audit: core.auditMode(row.audit), path: nil))
                }
            }
            return entries
        }
    }

    /// `images delete NAME`: refused while an instance's drive or another image is an overlay on it.
    public func delete(name: String) throws {
        try core.locked {
            guard let image = try core.store.read({ try $0.image(named: name) }) else {
                throw InstancesError.imageNotFound(name)
            }
            let dependants = try core.store.read { s in
                try s.instances().filter { $0.baseImageID == image.id }.map { "instance '\($0.name)'" }
                    + s.images().filter { $0.backingImageID == image.id }.map { "image '\($0.name)'" }
            }
            guard dependants.isEmpty else {
                throw InstancesError.imageInUse(image: name, dependants: dependants)
            }
            let op = try core.store.write { s in
                try s.deleteImage(id: image.id)
                try core.audit(
                    s, mode: core.auditMode(image.audit), .imageDelete, instanceID: image.sourceInstanceID,
                    subject: name, detail: "image deleted")
                return try s.journal(.cleanup, instanceID: nil, JournalPayload(garbage: [image.path]))
            }
            core.collectGarbage(operation: op, [image.path])
        }
    }

    /// One image by name.
    public func show(name: String) throws -> LibraryEntry {
        guard let image = try core.store.read({ try $0.image(named: name) }) else {
            throw InstancesError.imageNotFound(name)
        }
        return entry(image)
    }

    private func entry(_ image: ImageRecord) -> LibraryEntry {
        LibraryEntry(
            kind: .image, name: image.name, virtualSize: UInt64(image.virtualSize),
            createdAt: image.createdAt,
            origin: image.origin, audit: image.audit.flatMap(AuditMode.init(rawValue:)),
            path: core.absolute(image.path))
    }
}
