import Catalog
import Foundation

/// Where a drive's content comes from, resolved against the catalog.
enum SourcePlan {
    case empty(UInt64)
    case image(ImageRecord)
    /// Another instance's snapshot (`INSTANCE@SNAPSHOT`, R6): exported first unless copied in full.
    case snapshot(InstanceRecord, SnapshotRecord)

    func needsExport(fullCopy: Bool) -> Bool {
        if case .snapshot = self { return !fullCopy }
        return false
    }
}

/// A drive just made.
struct MadeDrive {
    var virtualSize: UInt64
    /// The image the drive is an overlay on.
    var base: ImageRecord?
    /// An image exported for it, to be committed with the instance.
    var exported: ImageRecord?
    var description: String
}

extension InstanceManager {
    func resolveSource(_ source: DriveSource) throws -> SourcePlan {
        switch source {
        case .empty(let size):
            guard size > 0 else { throw InstancesError.invalidArgument("--size must be more than 0") }
            return .empty(size)
        case .image(let reference):
            if let at = reference.firstIndex(of: "@") {
                let instanceName = String(reference[..<at])
                let snapshotName = String(reference[reference.index(after: at)...])
                let (record, _) = try core.reconcile(core.instance(named: instanceName))
                guard
                    let row = try core.store.read({ try $0.snapshots(instanceID: record.id) })
                        .first(where: { $0.name == snapshotName }), row.qcowID != nil
                else {
                    throw InstancesError.snapshotNotFound(instance: instanceName, snapshot: snapshotName)
                }
                return .snapshot(record, row)
            }
            guard let image = try core.store.read({ try $0.image(named: reference) }) else {
                throw InstancesError.imageNotFound(reference)
            }
            return .image(image)
        }
    }

    /// Makes the drive file `drive` (home-relative) from `plan`; `export` is where a snapshot
    /// source is exported as a read-only base image.
    func makeDrive(_ drive: String, from plan: SourcePlan, fullCopy: Bool, export: String?) throws
        -> MadeDrive
    {
        let engine = core.engine
        let target = core.absolute(drive)
        switch plan {
        case .empty(let size):
            try engine.createDrive(at: target, virtualSize: size, backing: nil, backingFormat: nil)
            return MadeDrive(virtualSize: size, description: "empty drive of \(formatBytes(Int64(size)))")
        case .image(let image):
            if fullCopy {
                try engine.copyFlattened(from: core.absolute(image.path), to: target)
                return MadeDrive(
                    virtualSize: try engine.virtualSize(of: target),
                    description: "full copy of image '\(image.name)'")
            }
            try engine.createDrive(
                at: target, virtualSize: UInt64(image.virtualSize), backing: relativeBacking(image.path),
                backingFormat: "qcow2")
            return MadeDrive(
                virtualSize: UInt64(image.virtualSize), base: image,
                description: "overlay on image '\(image.name)'")
        case .snapshot(let source, let row):
            let sourceDrive = try core.drivePath(source)
            let snapshotID = row.qcowID ?? row.name
            guard let export else {
                try engine.exportSnapshot(drive: sourceDrive, snapshotID: snapshotID, to: target)
                return MadeDrive(
                    virtualSize: try engine.virtualSize(of: target),
                    description: "full copy of snapshot '\(row.name)' of '\(source.name)'")
            }
            try engine.exportSnapshot(
                drive: sourceDrive, snapshotID: snapshotID, to: core.absolute(export))
            core.step("export.image-made")
            let size = try engine.virtualSize(of: core.absolute(export))
            let image = ImageRecord(
                id: String(export.dropFirst("images/".count).dropLast(".qcow2".count)),
                name: try uniqueImageName("\(source.name)-\(row.name)"), path: export, format: "qcow2",
                virtualSize: Int64(size), createdAt: Date(), origin: "snapshot",
                sourceInstanceID: source.id,
                sourceSnapshot: row.name, audit: row.audit)
            try engine.createDrive(
                at: target, virtualSize: size, backing: relativeBacking(export), backingFormat: "qcow2")
            return MadeDrive(
                virtualSize: size, base: image, exported: image,
                description:
                    "overlay on '\(image.name)', exported from snapshot '\(row.name)' of '\(source.name)'")
        }
    }

    /// Drives live two levels down (`instances/ID/disk.qcow2`); backing names are relative so
    /// the home can move.
    func relativeBacking(_ imagePath: String) -> String { "../../" + imagePath }

    func uniqueImageName(_ base: String) throws -> String {
        var name = base
        var n = 2
        while try core.store.read({ try $0.image(named: name) }) != nil {
            name = "\(base)-\(n)"
            n += 1
        }
        return name
    }
}
