import QCow2Format

/// FuzzHeader's body: the bytes are the start of an image file. Every decoder must either throw
/// or return a value that encodes and decodes back to itself; a trap is the bug.
public enum HeaderTarget {
    public static func run(_ bytes: [UInt8]) {
        guard let header = try? QCow2Header(decoding: bytes) else { return }
        roundTrip(header)
        _ = try? header.validateLayout(fileSize: UInt64(bytes.count))
        _ = QCow2Geometry(header: header)
        if let extensions = try? HeaderExtensions(decoding: bytes, header: header) {
            _ = try? header.checkIncompatibleFeatures(names: extensions)
            roundTrip(header, extensions)
        }
        if header.nbSnapshots > 0, header.snapshotsOffset < UInt64(bytes.count) {
            let table = Array(bytes[Int(header.snapshotsOffset)...])
            if let (entries, length) = try? SnapshotTable.decode(table, count: Int(header.nbSnapshots)) {
                require(length <= table.count, "snapshot table length \(length) past its \(table.count) bytes")
                roundTrip(entries)
                _ = SnapshotTable.nextID(entries)
            }
        }
    }

    static func roundTrip(_ header: QCow2Header) {
        let encoded = header.encode()
        guard let again = try? QCow2Header(decoding: encoded) else {
            fail("encoded header does not decode: \(header)")
        }
        require(again == header, "header round trip differs:\n\(header)\n\(again)")
    }

    /// `encodeCluster0` rewrites the feature name table with QEMU's and writes unknown extensions
    /// in reverse (as QEMU does); everything else must survive.
    static func roundTrip(_ header: QCow2Header, _ extensions: HeaderExtensions) {
        var newHeader = header
        guard let cluster0 = extensions.encodeCluster0(header: &newHeader) else { return }
        require(cluster0.count <= header.clusterSize, "cluster 0 encodes to \(cluster0.count) bytes")
        let decodedHeader: QCow2Header
        let decoded: HeaderExtensions
        do {
            decodedHeader = try QCow2Header(decoding: cluster0)
            decoded = try HeaderExtensions(decoding: cluster0, header: decodedHeader)
        } catch {
            fail("encoded cluster 0 does not decode: \(error)\n\(extensions)")
        }
        require(decodedHeader == newHeader, "cluster 0 header differs:\n\(newHeader)\n\(decodedHeader)")
        require(decoded.backingFile == extensions.backingFile, "backing file differs")
        require(decoded.backingFormat == extensions.backingFormat, "backing format differs")
        require(decoded.externalDataFile == extensions.externalDataFile, "data file differs")
        require(decoded.bitmaps == extensions.bitmaps, "bitmaps extension differs")
        require(
            decoded.encryptionHeader?.offset == extensions.encryptionHeader?.offset
                && decoded.encryptionHeader?.length == extensions.encryptionHeader?.length,
            "encryption pointer differs")
        let before = extensions.unknown.reversed().map { "\($0.type):\($0.data)" }
        let after = decoded.unknown.map { "\($0.type):\($0.data)" }
        require(before == after, "unknown extensions differ:\n\(before)\n\(after)")
    }

    /// Encoding normalizes the extra data (≥ 24 bytes, absent disk size → 0, absent icount → −1);
    /// the stored fields and names must survive, and a second round trip must change nothing.
    static func roundTrip(_ entries: [SnapshotEntry]) {
        let encoded = SnapshotTable.encode(entries)
        guard let (once, length) = try? SnapshotTable.decode(encoded, count: entries.count) else {
            fail("encoded snapshot table does not decode: \(entries)")
        }
        require(length == encoded.count, "snapshot table re-decodes to \(length) of \(encoded.count) bytes")
        for (a, b) in zip(entries, once) {
            require(
                a.l1TableOffset == b.l1TableOffset && a.l1Size == b.l1Size && a.id == b.id && a.name == b.name
                    && a.dateSeconds == b.dateSeconds && a.dateNanoseconds == b.dateNanoseconds
                    && a.vmClockNanoseconds == b.vmClockNanoseconds && a.vmStateSize == b.vmStateSize
                    && a.unknownExtraData == b.unknownExtraData && (a.diskSize ?? 0) == (b.diskSize ?? 0),
                "snapshot entry round trip differs:\n\(a)\n\(b)")
        }
        guard let (twice, _) = try? SnapshotTable.decode(SnapshotTable.encode(once), count: once.count) else {
            fail("second snapshot round trip does not decode")
        }
        require(twice == once, "snapshot table encoding is not stable")
    }
}

/// A property violation: print it and trap, so libFuzzer saves the input.
public func fail(_ message: String) -> Never {
    print("FUZZ PROPERTY VIOLATED: \(message)")
    fatalError(message)
}

public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}
