import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format

/// The default ``DriveEngine``: every call goes to vmimg's own engine (QCow2, ImageKit); no
/// QEMU tool runs on this path.
public struct EngineAdapter: DriveEngine {
    /// `images import --trust`: skip the backing-file, data-file and feature-bit checks, so an
    /// image the user vouches for is imported (flattened: its backing chain or data file is read
    /// into the new standalone qcow2). The declared format must still match.
    public var trustImports: Bool

    public init(trustImports: Bool = false) {
        self.trustImports = trustImports
    }

    /// Converts `source` (any chain, or a snapshot view) into a standalone qcow2 at `path`.
    func convert(_ source: any VirtualDisk, to path: String, operation: String) throws {
        do {
            try Converter.convert(ConvertSource(disk: source), to: ConvertTarget(path: path, format: .qcow2))
        } catch {
            throw InstancesError.engine(operation: operation, message: "\(error)")
        }
    }

    /// Opens a drive read-write for a snapshot operation, mapping errors to the instance layer's.
    func withDrive<T>(_ drive: String, operation: String, _ body: (QCow2Image) throws -> T) throws -> T {
        do {
            guard
                let image = try ImageOpener.open(drive, options: OpenOptions(format: "qcow2", writable: true))
                    as? QCow2Image
            else { throw InstancesError.engine(operation: operation, message: "\(drive) is not a qcow2 image") }
            let result = try body(image)
            try image.close()
            return result
        } catch let error as InstancesError {
            throw error
        } catch {
            throw InstancesError.engine(operation: operation, message: "\(error)")
        }
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
            if detected == "qcow2", !trustImports {
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
        let operation = "import \(source)"
        do {
            let options = OpenOptions(format: detected, allowDataFile: trustImports)
            try convert(ImageOpener.open(source, options: options), to: path, operation: operation)
        } catch let error as InstancesError {
            throw error
        } catch {
            throw InstancesError.engine(operation: operation, message: "\(error)")
        }
        return try virtualSize(of: path)
    }

    public func copyFlattened(from source: String, to path: String) throws {
        let operation = "copy \(source)"
        do {
            let disk = try ImageOpener.open(source, options: OpenOptions(format: "qcow2", forceShare: true))
            try convert(disk, to: path, operation: operation)
        } catch let error as InstancesError {
            throw error
        } catch {
            throw InstancesError.engine(operation: operation, message: "\(error)")
        }
    }

    public func exportSnapshot(drive: String, snapshotID: String, to path: String) throws {
        // Shared open: the snapshot's clusters are immutable while it exists, so reading them beside
        // a running VM is safe even though the active layer is changing.
        let operation = "export snapshot \(snapshotID) of \(drive)"
        do {
            guard
                let image = try ImageOpener.open(drive, options: OpenOptions(format: "qcow2", forceShare: true))
                    as? QCow2Image
            else { throw InstancesError.engine(operation: operation, message: "\(drive) is not a qcow2 image") }
            try convert(SnapshotView(image: image, selector: .id(snapshotID)), to: path, operation: operation)
        } catch let error as InstancesError {
            throw error
        } catch {
            throw InstancesError.engine(operation: operation, message: "\(error)")
        }
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
        try withDrive(drive, operation: "snapshot \(drive)") { _ = try $0.createSnapshot(name: name) }
    }

    public func applySnapshot(drive: String, snapshotID: String) throws {
        try withDrive(drive, operation: "revert \(drive)") { try $0.applySnapshot(.id(snapshotID)) }
    }

    public func deleteSnapshot(drive: String, id: String, name: String) throws {
        try withDrive(drive, operation: "delete snapshot '\(name)' of \(drive)") {
            try $0.deleteSnapshot(.idAndName(id: id, name: name))
        }
    }

    /// Data-only figures (quota counts guest data the active layer references, not its tables);
    /// the engine's `SnapshotSpace` also counts L1/L2 clusters, which `vmimg snapshot -l` shows.
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
            // A QEMU holds its lock bytes for as long as it runs; a holder seen only once is a
            // process between fork and exec (it briefly shares our own descriptors), so ask again.
            for attempt in 0..<3 {
                if try LockProbe(path: path).isUnlocked { return false }
                if attempt < 2 { Thread.sleep(forTimeInterval: 0.1) }
            }
            return true
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
