/// Open-time checks of where the header's tables lie (QEMU's `qcow2_validate_table` and its
/// callers), done before anything is allocated for them.
extension QCow2Header {
    /// Checks that a table of `entries` × `entrySize` bytes at `offset` is aligned, under `maxBytes`
    /// and inside a file of `fileSize` bytes.
    public func validateTable(
        _ name: String, offsetField: String, offset: UInt64, entries: UInt64, entrySize: UInt64,
        maxBytes: UInt64, fileSize: UInt64
    ) throws(QCow2Error) {
        let (bytes, overflow) = entries.multipliedReportingOverflow(by: entrySize)
        guard !overflow, bytes <= maxBytes else {
            throw .tooLarge(field: name, value: overflow ? UInt64.max : bytes, limit: maxBytes)
        }
        guard offset & UInt64(clusterSize - 1) == 0 else {
            throw .misaligned(field: offsetField, value: offset, alignment: UInt64(clusterSize))
        }
        guard bytes > 0 else { return }
        let (end, overflowEnd) = offset.addingReportingOverflow(bytes)
        guard !overflowEnd, end <= fileSize, offset != 0 || bytes == 0 else {
            throw .tableOutsideFile(table: name, offset: offset, byteCount: bytes, fileSize: fileSize)
        }
    }

    /// All header-level table checks in QEMU's order: refcount table, snapshot table, L1.
    public func validateLayout(fileSize: UInt64) throws(QCow2Error) {
        let geometry = QCow2Geometry(header: self)
        guard refcountTableClusters > 0 else {
            throw .invalid(field: "refcount_table_clusters", reason: "Image does not contain a reference count table")
        }
        try validateTable(
            "refcount table", offsetField: "refcount_table_offset", offset: refcountTableOffset,
            entries: UInt64(refcountTableClusters) << UInt64(clusterBits), entrySize: 1,
            maxBytes: UInt64(QCow2Geometry.maxRefcountTableBytes), fileSize: fileSize)
        guard nbSnapshots <= UInt32(QCow2Geometry.maxSnapshots) else {
            throw .tooLarge(
                field: "nb_snapshots", value: UInt64(nbSnapshots), limit: UInt64(QCow2Geometry.maxSnapshots))
        }
        if nbSnapshots > 0 {
            // Entries are at least 40 bytes; the exact length is known once they are parsed.
            try validateTable(
                "snapshot table", offsetField: "snapshots_offset", offset: snapshotsOffset,
                entries: UInt64(nbSnapshots), entrySize: 40,
                maxBytes: UInt64(QCow2Geometry.maxSnapshotTableBytes), fileSize: fileSize)
        } else if snapshotsOffset & UInt64(clusterSize - 1) != 0 {
            throw .misaligned(field: "snapshots_offset", value: snapshotsOffset, alignment: UInt64(clusterSize))
        }
        guard l1Size <= UInt32(QCow2Geometry.maxL1Entries) else {
            throw .tooLarge(field: "l1_size", value: UInt64(l1Size), limit: UInt64(QCow2Geometry.maxL1Entries))
        }
        try validateTable(
            "active L1 table", offsetField: "l1_table_offset", offset: l1TableOffset, entries: UInt64(l1Size),
            entrySize: 8, maxBytes: UInt64(QCow2Geometry.maxL1Entries) * 8, fileSize: fileSize)
        guard size <= geometry.maxVirtualSize else {
            throw .tooLarge(field: "size", value: size, limit: geometry.maxVirtualSize)
        }
        let needed = geometry.l1EntriesNeeded(size: size)
        guard UInt64(l1Size) >= needed else {
            throw .invalid(field: "l1_size", reason: "L1 table is too small (\(l1Size) < \(needed) entries)")
        }
        if cryptMethod != 0 {
            throw .unsupported("encrypted images are not supported (crypt_method \(cryptMethod))")
        }
    }

    /// Refuses unknown incompatible bits, naming them from the feature name table as QEMU does.
    public func checkIncompatibleFeatures(names table: HeaderExtensions) throws(QCow2Error) {
        let unknown = incompatibleFeatures.rawValue & ~IncompatibleFeatures.known.rawValue
        guard unknown != 0 else { return }
        let (names, rest) = table.incompatibleNames(for: unknown)
        throw .unknownIncompatibleFeatures(bits: rest, names: names)
    }
}
