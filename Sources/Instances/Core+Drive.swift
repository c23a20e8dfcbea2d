import Catalog
import Foundation

/// Drive access that picks the right path: QMP when the instance's QEMU runs (it owns the file),
/// the engine otherwise.
extension Core {
    /// Whether the recorded QEMU is still alive.
    func isRunning(_ record: InstanceRecord) -> Bool {
        guard record.runState == RunState.running.rawValue, let pid = record.pid else { return false }
        return QemuProcess.isAlive(pid: pid, processStart: record.processStart)
    }

    func qmp(_ record: InstanceRecord) throws -> QMPClient {
        guard let socket = record.qmpSocket else {
            throw InstancesError.instanceNotRunning(record.name)
        }
        do {
            return try QMPClient(socketPath: socket)
        } catch let InstancesError.qmp(_, message) {
            throw InstancesError.qmp(instance: record.name, message: message)
        }
    }

    func drivePath(_ record: InstanceRecord) throws -> String {
        let path = absolute(record.drivePath)
        guard FileManager.default.fileExists(atPath: path) else {
            throw InstancesError.driveMissing(instance: record.name, path: path)
        }
        return path
    }

    func driveSnapshots(_ record: InstanceRecord) throws -> [DriveSnapshot] {
        if isRunning(record) { return try qmp(record).snapshots(device: QemuProcess.driveDevice) }
        return try engine.snapshots(of: drivePath(record))
    }

    func createDriveSnapshot(_ record: InstanceRecord, name: String) throws {
        if isRunning(record) {
            try qmp(record).createSnapshot(device: QemuProcess.driveDevice, name: name)
        } else {
            let path = try drivePath(record)
            try refuseIfLocked(record, path: path)
            try engine.createSnapshot(drive: path, name: name)
        }
    }

    func deleteDriveSnapshot(_ record: InstanceRecord, id: String, name: String) throws {
        if isRunning(record) {
            try qmp(record).deleteSnapshot(device: QemuProcess.driveDevice, id: id, name: name)
        } else {
            let path = try drivePath(record)
            try refuseIfLocked(record, path: path)
            try engine.deleteSnapshot(drive: path, id: id, name: name)
        }
    }

    /// A QEMU we did not start (or lost track of) holds the file: never write under it.
    func refuseIfLocked(_ record: InstanceRecord, path: String) throws {
        if try engine.isLocked(path) {
            throw InstancesError.driveLocked(instance: record.name, path: path)
        }
    }

    /// R15: refuse while the instance runs or any QEMU holds its drive.
    func requireStopped(_ record: InstanceRecord, operation: String) throws {
        if isRunning(record) {
            throw InstancesError.instanceRunning(instance: record.name, operation: operation)
        }
        try refuseIfLocked(record, path: try drivePath(record))
    }

    /// Host bytes all images and drives occupy (for the budget).
    func bytesInUse() throws -> UInt64 {
        var total: UInt64 = 0
        for dir in [home.imagesDirectory, home.instancesDirectory] {
            guard let walker = FileManager.default.enumerator(atPath: dir) else { continue }
            while let relative = walker.nextObject() as? String {
                let path = dir + "/" + relative
                let type =
                    (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
                guard type == .typeRegular else { continue }
                total += (try? engine.allocatedBytes(of: path)) ?? 0
            }
        }
        return total
    }

    func budget() throws -> UInt64? {
        try store.read { try $0.config("budget") }.flatMap(UInt64.init)
    }
}
