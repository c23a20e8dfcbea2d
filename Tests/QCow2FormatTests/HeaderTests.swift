import QCow2Format
import Testing

/// A header as `qemu-img create -f qcow2 img 1G` writes it (qcow2-format.md §12.2).
func qemuDefaultHeader() -> QCow2Header {
    var h = QCow2Header(version: 3, clusterBits: 16, size: 1 << 30, refcountOrder: 4)
    h.l1Size = 2
    h.l1TableOffset = 0x30000
    h.refcountTableOffset = 0x10000
    h.refcountTableClusters = 1
    return h
}

@Suite struct HeaderTests {
    @Test func encodesLikeQemu() throws {
        let bytes = qemuDefaultHeader().encode()
        #expect(bytes.count == 112)
        #expect(Array(bytes[0..<8]) == [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])
        #expect(Array(bytes[20..<24]) == [0, 0, 0, 0x10])
        #expect(Array(bytes[96..<104]) == [0, 0, 0, 4, 0, 0, 0, 0x70])
        #expect(try QCow2Header(decoding: bytes) == qemuDefaultHeader())
    }

    @Test func version2HasNoFeatureFields() throws {
        var h = qemuDefaultHeader()
        h.version = 2
        h.headerLength = 72
        let bytes = h.encode()
        #expect(bytes.count == 72)
        let decoded = try QCow2Header(decoding: bytes)
        #expect(decoded.refcountOrder == 4 && decoded.headerLength == 72)
    }

    @Test(arguments: [UInt32(8), 22, 33, 0xffff_ffff])
    func rejectsClusterBitsOutOfRange(_ bits: UInt32) {
        var bytes = qemuDefaultHeader().encode()
        bytes.replaceSubrange(20..<24, with: bigEndian(bits))
        let error = #expect(throws: QCow2Error.self) { try QCow2Header(decoding: bytes) }
        #expect(error == .fieldOutOfRange(field: "cluster_bits", value: UInt64(bits), allowed: 9...21))
    }

    @Test func rejectsBadMagicAndVersion() {
        var bytes = qemuDefaultHeader().encode()
        bytes[3] = 0
        #expect(throws: QCow2Error.badMagic(found: 0x5146_4900)) { try QCow2Header(decoding: bytes) }
        bytes = qemuDefaultHeader().encode()
        bytes[7] = 4
        #expect(throws: QCow2Error.unsupportedVersion(4)) { try QCow2Header(decoding: bytes) }
    }

    @Test func compressionTypeNeedsItsFeatureBit() {
        var bytes = qemuDefaultHeader().encode()
        bytes[104] = 1
        #expect(throws: QCow2Error.self) { try QCow2Header(decoding: bytes) }
        bytes[104] = 7
        bytes[79] = 8
        #expect(throws: QCow2Error.self) { try QCow2Header(decoding: bytes) }
    }

    @Test func truncatedHeaderIsAnError() {
        let bytes = Array(qemuDefaultHeader().encode()[0..<50])
        #expect(throws: QCow2Error.self) { try QCow2Header(decoding: bytes) }
    }

    @Test func layoutChecksTablesAgainstTheFile() throws {
        let h = qemuDefaultHeader()
        try h.validateLayout(fileSize: 196_624)
        #expect(throws: QCow2Error.self) { try h.validateLayout(fileSize: 0x30000) }  // L1 past EOF
        var big = h
        big.l1Size = 5_000_000
        #expect(throws: QCow2Error.tooLarge(field: "l1_size", value: 5_000_000, limit: 4_194_304)) {
            try big.validateLayout(fileSize: 1 << 40)
        }
        var misaligned = h
        misaligned.refcountTableOffset = 0x10008
        #expect(throws: QCow2Error.misaligned(field: "refcount_table_offset", value: 0x10008, alignment: 65536)) {
            try misaligned.validateLayout(fileSize: 196_624)
        }
    }

    @Test func unknownIncompatibleBitsAreNamedFromTheTable() throws {
        var h = qemuDefaultHeader()
        h.incompatibleFeatures = IncompatibleFeatures(rawValue: 1 << 40 | 1 << 41)
        var ext = HeaderExtensions()
        ext.featureNames = [FeatureNameEntry(kind: .incompatible, bit: 40, name: "future feature")]
        let error = #expect(throws: QCow2Error.self) { try h.checkIncompatibleFeatures(names: ext) }
        #expect(error == .unknownIncompatibleFeatures(bits: 1 << 41, names: ["future feature"]))
        #expect(
            error?.description
                == "Unsupported qcow2 feature(s): future feature; Unknown incompatible feature: 20000000000")
    }

    @Test func cluster0RoundTripsWithBackingAndFeatureTable() throws {
        var h = qemuDefaultHeader()
        var ext = HeaderExtensions()
        ext.backingFile = "base.qcow2"
        ext.backingFormat = "qcow2"
        let cluster0 = try #require(ext.encodeCluster0(header: &h))
        // §3: format extension at 0x70, feature table at 0x80, end marker at 0x208, name at 0x210.
        #expect(h.backingFileOffset == 0x210 && h.backingFileSize == 10)
        let decoded = try HeaderExtensions(decoding: cluster0, header: try QCow2Header(decoding: cluster0))
        #expect(decoded.backingFile == "base.qcow2" && decoded.backingFormat == "qcow2")
        #expect(decoded.featureNames == FeatureNameEntry.qemuDefault)
    }

    @Test func extensionRunningPastTheEndIsRefused() throws {
        var h = qemuDefaultHeader()
        var cluster0 = h.encode() + [UInt8](repeating: 0, count: 65536 - 112)
        cluster0.replaceSubrange(112..<120, with: bigEndian(UInt32(0x1234_5678)) + bigEndian(UInt32(70000)))
        h = try QCow2Header(decoding: cluster0)
        #expect(throws: QCow2Error.self) { try HeaderExtensions(decoding: cluster0, header: h) }
    }
}

func bigEndian(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * $0)) } }
