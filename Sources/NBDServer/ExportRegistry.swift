import BlockIO
import ImageKit
import NBDProtocol
import QCow2

/// One opened export shared by every connection: the image, and the single writer slot.
final class OpenExport: Sendable {
    let export: NBDServer.Export
    let backend: NBDBackend
    let lock: ExportLock
    /// Whether a connection holds the writer slot. A writable export has one writer at a time;
    /// other connections get a read-only view (`NBD_FLAG_READ_ONLY`).
    let writerClaimed = Locked(false)

    init(export: NBDServer.Export, backend: NBDBackend, lock: ExportLock) {
        self.export = export
        self.backend = backend
        self.lock = lock
    }

    /// The descriptor for `NBD_OPT_INFO`/`LIST`, as a writer would see it.
    func descriptor(readOnly: Bool) -> NBDExportDescriptor {
        var flags: NBDTransmissionFlags = [.hasFlags, .sendFlush, .sendFUA]
        if readOnly {
            // Reads of a read-only export are coherent across connections.
            flags.formUnion([.readOnly, .canMultiConn])
        } else {
            flags.formUnion([.sendTrim, .sendWriteZeroes])
        }
        return NBDExportDescriptor(name: export.name, size: backend.size, flags: flags, description: export.path)
    }
}

/// Hook for the image lock the CLI takes (QEMU-compatible OFD locks, being written in BlockIO).
/// Held from open to close of an export.
struct ExportLock: Sendable {
    let path: String
    let writable: Bool

    // TODO(image locking, BlockIO): take QEMU's OFD locks here — shared read lock always, and the
    // write/resize permission bytes when writable — and fail like the CLI ("Failed to get
    // \"write\" lock") when another process holds them.
    static func acquire(path: String, writable: Bool) throws -> ExportLock {
        ExportLock(path: path, writable: writable)
    }

    func release() {}
}

/// The exports of one server, opened at start.
final class ExportRegistry: Sendable {
    let exports: [OpenExport]

    init(exports: [OpenExport]) {
        self.exports = exports
    }

    /// `name`, or the only export for the empty (default) name.
    func find(_ name: String) -> OpenExport? {
        if let found = exports.first(where: { $0.export.name == name }) { return found }
        if name.isEmpty, exports.count == 1 { return exports.first }
        return nil
    }

    /// Flushes writable exports and drops their locks.
    func close() {
        for open in exports {
            try? open.backend.flush()
            open.lock.release()
        }
    }
}

/// A connection's view of the registry: remembers the writer slot it took so closing returns it.
final class ConnectionCatalog: NBDExportCatalog {
    let registry: ExportRegistry
    /// The export this connection claimed, and whether as its writer.
    let claimed = Locked<(export: OpenExport, writer: Bool)?>(nil)

    init(registry: ExportRegistry) {
        self.registry = registry
    }

    func exportNames() -> [String] { registry.exports.map { $0.export.name } }

    func describe(_ name: String) -> NBDExportDescriptor? {
        guard let open = registry.find(name) else { return nil }
        return open.descriptor(readOnly: !open.backend.isWritable)
    }

    func claim(_ name: String) -> NBDExportDescriptor? {
        guard let open = registry.find(name) else { return nil }
        var writer = false
        if open.backend.isWritable {
            writer = open.writerClaimed.withLock { taken in
                if taken { return false }
                taken = true
                return true
            }
        }
        claimed.withLock { $0 = (open, writer) }
        return open.descriptor(readOnly: !writer)
    }

    /// The claimed export's backend.
    var backend: NBDBackend? { claimed.withLock { $0?.export.backend } }

    /// Gives back the writer slot, if taken.
    func release() {
        let previous = claimed.withLock { value in
            defer { value = nil }
            return value
        }
        if let previous, previous.writer {
            previous.export.writerClaimed.withLock { $0 = false }
        }
    }
}
