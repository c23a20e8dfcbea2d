import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format

/// The default ``DriveEngine``: vmimg's own engine where main has the call, `qemu-img` where it
/// does not yet. This is the only file that runs `qemu-img`.
///
/// TODO(issue 4): when the `snap` branch lands, replace the `qemu-img snapshot -c/-a/-d` calls with
/// `QCow2Image.createSnapshot(name:)`, `applySnapshot(_:)` and `deleteSnapshot(_:)`, ``space(of:)``
/// with the engine's `SnapshotSpace`, and the `qemu-img convert` calls with ImageKit's convert.
public struct EngineAdapter: DriveEngine {
    /// The `qemu-img` used for the calls the engine does not have yet.
    public var qemuImg: String

    public init(qemuImg: String = "qemu-img") {
        self.qemuImg = qemuImg
    }

    public func createDrive(
        at path: String, virtualSize: UInt64, backing: String?, backingFormat: String?
    ) throws {
        var options = QCow2CreateOptions(size: virtualSize)
        options.backingFile = backing
        options.backingFormat = backingFormat
        do {
            let device = try BlockFile(path: path, writable: true, create: true, truncate: true)
            try QCow2Image.create(on: device, filename: path, options: options)
            try device.flush()
        } catch {
            throw InstancesError.engine(operation: "create \(path)", message: "\(error)")
        }
    }

    public func importImage(from source: String, format: String?, to path: String) throws -> UInt64 {
        guard FileManager.default.fileExists(atPath: source) else {
            throw InstancesError.io(path: source, message: "no such file")
        }
        let detected: String
        do {
            let device = try BlockFile(path: source, writable: false)
            detected = try ImageOpener.probe(device)
            if detected == "qcow2" {
                let (header, extensions) = try QCow2Image.readHeader(from: device)
                if header.backingFileOffset != 0 || extensions.backingFile != nil {
                    throw InstancesError.unsafeImage(path: source, reason: "it names a backing file")
                }
                if header.hasExternalDataFile {
                    throw InstancesError.unsafeImage(path: source, reason: "it uses an external data file")
                }
            }
        } catch let error as InstancesError {
            throw error
        } catch {
            throw InstancesError.unsafeImage(path: source, reason: "\(error)")
        }
        if let format, format != detected {
            throw InstancesError.unsafeImage(
                path: source, reason: "declared format '\(format)' but the file is \(detected)")
        }
        try ProcessRunner.check(
            qemuImg, ["convert", "-q", "-f", detected, "-O", "qcow2", source, path],
            operation: "import \(source)")
        return try virtualSize(of: path)
    }

    public func copyFlattened(from source: String, to path: String) throws {
        try ProcessRunner.check(
            qemuImg, ["convert", "-q", "-U", "-f", "qcow2", "-O", "qcow2", source, path],
            operation: "copy \(source)")
    }

    public func exportSnapshot(drive: String, snapshotID: String, to path: String) throws {
        // -U: the snapshot's clusters are immutable while it exists, so reading them beside a
        // running VM is safe even though the active layer is changing.
        try ProcessRunner.check(
            qemuImg,
            [
                "convert", "-q", "-U", "-f", "qcow2", "-l", "snapshot.id=\(snapshotID)", "-O", "qcow2",
                drive, path,
            ],
            operation: "export snapshot \(snapshotID) of \(drive)")
    }

    public func virtualSize(of path: String) throws -> UInt64 {
        do {
            return try ImageOpener.open(path, options: OpenOptions(openBacking: false)).virtualSize
        } catch {
            throw InstancesError.engine(operation: "open \(path)", message: "\(error)")
        }
    }

    public func snapshots(of drive: String) throws -> [DriveSnapshot] {
        do {
            return try QCow2Image(path: drive, writable: false).snapshots.map {
                DriveSnapshot(
                    id: $0.id, name: $0.name,
                    date: Date(
                        timeIntervalSince1970: TimeInterval($0.dateSeconds) + TimeInterval($0.dateNanoseconds)
                            / 1e9))
            }
        } catch {
            throw InstancesError.engine(operation: "read snapshots of \(drive)", message: "\(error)")
        }
    }

    public func createSnapshot(drive: String, name: String) throws {
        try ProcessRunner.check(
            qemuImg, ["snapshot", "-c", name, drive], operation: "snapshot \(drive)")
    }

    public func applySnapshot(drive: String, snapshotID: String) throws {
        try ProcessRunner.check(
            qemuImg, ["snapshot", "-a", snapshotID, drive], operation: "revert \(drive)")
    }

    public func deleteSnapshot(drive: String, id: String, name: String) throws {
        // qemu-img 7.2 `snapshot -d` matches names only (with duplicate names, the lowest ID).
        try ProcessRunner.check(
            qemuImg, ["snapshot", "-d", name, drive], operation: "delete snapshot '\(name)' of \(drive)")
    }

    public func space(of drive: String) throws -> DriveSpace {
        do {
            var usage = try ClusterUsage(path: drive)
            var space = try usage.space()
            space.fileBytes = try allocatedBytes(of: drive)
            return space
        } catch let error as InstancesError {
            throw error
        } catch {
            throw InstancesError.engine(operation: "space of \(drive)", message: "\(error)")
        }
    }

    public func isLocked(_ path: String) throws -> Bool {
        do {
            return try !LockProbe(path: path).isUnlocked
        } catch {
            throw InstancesError.io(path: path, message: "\(error)")
        }
    }

    public func allocatedBytes(of path: String) throws -> UInt64 {
        do {
            let file = try BlockFile(path: path, writable: false)
            let length = try file.length()
            var total: UInt64 = 0
            var offset: UInt64 = 0
            while offset < length, let data = try file.nextData(from: offset) {
                let hole = try file.nextHole(from: data)
                total += min(hole, length) - data
                offset = hole
            }
            return total
        } catch {
            throw InstancesError.io(path: path, message: "\(error)")
        }
    }
}
