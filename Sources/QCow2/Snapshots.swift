import BlockIO
import QCow2Format

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension SnapshotDate {
    /// The current wall-clock time at microsecond resolution, as `qemu-img snapshot -c` stores it.
    public static func now() -> SnapshotDate {
        let t = Date().timeIntervalSince1970
        let seconds = t.rounded(.down)
        let micros = min(999_999, max(0, ((t - seconds) * 1_000_000).rounded(.down)))
        return SnapshotDate(seconds: UInt32(clamping: Int64(seconds)), nanoseconds: UInt32(micros) * 1000)
    }
}

extension QCow2Image {
    /// qemu-img stores at most 255 bytes of a name and 127 of an ID (its 256/128-byte buffers).
    public static let maxSnapshotNameBytes = 255
    public static let maxSnapshotIDBytes = 127

    /// The snapshot `selector` picks, in table order (qcow2-format.md §6.2), or nil.
    public func findSnapshot(_ selector: SnapshotSelector) -> SnapshotEntry? {
        let all = snapshots
        return selector.index(in: all).map { all[$0] }
    }

    /// Creates an internal snapshot of the active layer (`qemu-img snapshot -c`).
    ///
    /// Stores what qemu-img stores: a new ID (1 + the largest numeric ID), `vm_state_size` 0,
    /// `disk_size` = the current size, `icount` 0, extra data 24 bytes. Names need not be unique.
    /// The snapshot keeps the current L1 table; the active layer moves to a new L1 whose private
    /// L2 tables are copies with COPIED cleared, and everything switches with one header write
    /// (see `commitSnapshotChange`), so a kill at any instant leaves the old or the new image.
    /// - Parameters:
    ///   - name: at most 255 bytes.
    ///   - date: `date_sec`/`date_nsec`; nil stores the current time (microseconds, as qemu-img).
    ///   - vmClockNanoseconds: `vm_clock_nsec` (qemu-img: 0).
    /// - Returns: the stored entry.
    /// - Throws: `SnapshotError.readOnly`, `.tooLong`, `.externalDataFile`, `.tooManySnapshots`,
    ///   `.idInUse`, `.refcountOverflow` (e.g. `refcount_bits=1`; nothing is written then); I/O errors.
    @discardableResult
    public func createSnapshot(name: String, date: SnapshotDate? = nil, vmClockNanoseconds: UInt64 = 0) throws
        -> SnapshotEntry
    {
        guard isWritable else { throw SnapshotError.readOnly(filename: filename) }
        guard name.utf8.count <= Self.maxSnapshotNameBytes else {
            throw SnapshotError.tooLong(
                field: "snapshot name", byteCount: name.utf8.count, limit: Self.maxSnapshotNameBytes)
        }
        let stamp = date ?? .now()
        return try state.withLock { s in
            if s.header.hasExternalDataFile { throw SnapshotError.externalDataFile(operation: "create", name: name) }
            guard s.snapshots.count < QCow2Geometry.maxSnapshots else {
                throw SnapshotError.tooManySnapshots(count: s.snapshots.count)
            }
            let id = SnapshotTable.nextID(s.snapshots)
            guard !s.snapshots.contains(where: { $0.id == id }) else { throw SnapshotError.idInUse(id: id, name: name) }
            guard id.utf8.count <= Self.maxSnapshotIDBytes else {
                throw SnapshotError.tooLong(
                    field: "snapshot id", byteCount: id.utf8.count, limit: Self.maxSnapshotIDBytes)
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            var change = SnapshotChange(size: s.header.size, snapshots: s.snapshots, cursor: s.freeClusterHint)
            // Every table of the active tree gains the snapshot's reference.
            var coefficients: [UInt64: Int64] = [:]
            s.tableCoefficients(s.l1, sign: 1, into: &coefficients)
            try s.addPaths(coefficients, &change, file: file)
            var l1 = s.l1
            try s.settleCopiedFlags(&l1, oldActive: Set(coefficients.keys), &change, file: file)
            change.activeL1 = l1
            let entry = SnapshotEntry(
                l1TableOffset: s.header.l1TableOffset, l1Size: s.header.l1Size, id: id, name: name,
                dateSeconds: stamp.seconds, dateNanoseconds: stamp.nanoseconds, vmClockNanoseconds: vmClockNanoseconds,
                vmStateSize: 0, diskSize: s.header.size, icount: 0)
            change.snapshots.append(entry)
            change.snapshotsChanged = true
            try s.commitSnapshotChange(&change, file: file)
            return entry
        }
    }

    /// Reverts the active layer to a snapshot (`qemu-img snapshot -a X`: ID first, then name).
    public func applySnapshot(_ idOrName: String) throws {
        try applySnapshot(.idOrName(idOrName))
    }

    /// Reverts the active layer to the snapshot `selector` picks (QEMU's `qcow2_snapshot_goto`).
    ///
    /// The guest size becomes the snapshot's `disk_size` (shrinking allowed; v2 images with
    /// snapshots cannot change size). The active L1 becomes a new table with the snapshot's
    /// entries, `l1_size` = max(current, needed for the size, the snapshot's); the snapshot itself
    /// is unchanged. One header write switches size, L1 and refcounts together.
    /// - Throws: `SnapshotError.notFound`, `.externalDataFile`, `.readOnly`,
    ///   `QCow2Error.unsupported` ("Can't resize a v2 image which has snapshots"), I/O errors.
    public func applySnapshot(_ selector: SnapshotSelector) throws {
        guard isWritable else { throw SnapshotError.readOnly(filename: filename) }
        try state.withLock { s in
            if s.header.hasExternalDataFile {
                throw SnapshotError.externalDataFile(operation: "apply", name: selector.description)
            }
            guard let index = selector.index(in: s.snapshots) else {
                throw SnapshotError.notFound(operation: "apply", selector: selector.description)
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            let snapshot = s.snapshots[index]
            let size = snapshot.diskSize ?? s.header.size
            if size != s.header.size {
                if s.header.version < 3 { throw QCow2Error.unsupported("Can't resize a v2 image which has snapshots") }
                try s.refuseResizeWithBitmaps(file: file)
                guard size <= s.geometry.maxVirtualSize else {
                    throw QCow2Error.tooLarge(
                        field: "snapshot \(snapshot.id) disk_size", value: size,
                        limit: s.geometry.maxVirtualSize)
                }
            }
            // Reverting changes what the guest reads, as a write does.
            try s.guardBitmaps(file: file)
            let snapshotL1 = try file.readTable(at: snapshot.l1TableOffset, count: Int(snapshot.l1Size))
            let count = max(s.l1.count, Int(s.geometry.l1EntriesNeeded(size: size)), snapshotL1.count)
            var l1 = snapshotL1 + [UInt64](repeating: 0, count: count - snapshotL1.count)
            var change = SnapshotChange(size: size, snapshots: s.snapshots, cursor: s.freeClusterHint)
            var coefficients: [UInt64: Int64] = [:]
            s.tableCoefficients(l1, sign: 1, into: &coefficients)
            var oldActive: [UInt64: Int64] = [:]
            s.tableCoefficients(s.l1, sign: -1, into: &oldActive)
            coefficients.merge(oldActive, uniquingKeysWith: +)
            try s.addPaths(coefficients, &change, file: file)
            s.releaseTable(at: s.header.l1TableOffset, byteCount: UInt64(s.header.l1Size) * 8, &change)
            try s.settleCopiedFlags(&l1, oldActive: Set(oldActive.keys), &change, file: file)
            change.activeL1 = l1
            try s.commitSnapshotChange(&change, file: file)
        }
    }

    /// Deletes the first snapshot whose **name** is `name` (`qemu-img snapshot -d`; IDs are not
    /// matched).
    public func deleteSnapshot(_ name: String) throws {
        try deleteSnapshot(.name(name))
    }

    /// Deletes the snapshot `selector` picks (QEMU's `qcow2_snapshot_delete`): the entry leaves the
    /// table, every reference through its L1 is dropped and its L1 freed. Active tables whose
    /// clusters become exclusive get COPIED set through fresh copies, and one header write
    /// switches table, refcounts and (if changed) the active L1.
    /// - Throws: `SnapshotError.notFound`, `.readOnly`, `.refcountUnderflow` on an inconsistent
    ///   image (nothing written then), I/O errors.
    public func deleteSnapshot(_ selector: SnapshotSelector) throws {
        guard isWritable else { throw SnapshotError.readOnly(filename: filename) }
        try state.withLock { s in
            guard let index = selector.index(in: s.snapshots) else {
                throw SnapshotError.notFound(operation: "delete", selector: selector.description)
            }
            try s.flushMetadata(file: file, dataFile: dataFile)
            let snapshot = s.snapshots[index]
            let snapshotL1 = try file.readTable(at: snapshot.l1TableOffset, count: Int(snapshot.l1Size))
            var change = SnapshotChange(size: s.header.size, snapshots: s.snapshots, cursor: s.freeClusterHint)
            var coefficients: [UInt64: Int64] = [:]
            s.tableCoefficients(snapshotL1, sign: -1, into: &coefficients)
            try s.addPaths(coefficients, &change, file: file)
            s.releaseTable(at: snapshot.l1TableOffset, byteCount: UInt64(snapshot.l1Size) * 8, &change)
            var active: [UInt64: Int64] = [:]
            s.tableCoefficients(s.l1, sign: 1, into: &active)
            var l1 = s.l1
            try s.settleCopiedFlags(&l1, oldActive: Set(active.keys), &change, file: file)
            if l1 != s.l1 {
                change.activeL1 = l1
                s.releaseTable(at: s.header.l1TableOffset, byteCount: UInt64(s.header.l1Size) * 8, &change)
            }
            change.snapshots.remove(at: index)
            change.snapshotsChanged = true
            try s.commitSnapshotChange(&change, file: file)
        }
    }
}
