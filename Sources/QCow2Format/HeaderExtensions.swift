/// Header extension type codes (`QCOW2_EXT_MAGIC_*`).
public enum HeaderExtensionType {
    public static let end: UInt32 = 0
    public static let backingFormat: UInt32 = 0xE279_2ACA
    public static let featureNameTable: UInt32 = 0x6803_F857
    public static let bitmaps: UInt32 = 0x2385_2875
    public static let fullDiskEncryption: UInt32 = 0x0537_BE77
    public static let externalDataFile: UInt32 = 0x4441_5441
}

/// The bitmaps extension payload (24 bytes); the directory it points at is `BitmapDirectory`.
public struct BitmapsExtension: Equatable, Sendable {
    public var nbBitmaps: UInt32
    public var bitmapDirectorySize: UInt64
    public var bitmapDirectoryOffset: UInt64

    public init(nbBitmaps: UInt32, bitmapDirectorySize: UInt64, bitmapDirectoryOffset: UInt64) {
        self.nbBitmaps = nbBitmaps
        self.bitmapDirectorySize = bitmapDirectorySize
        self.bitmapDirectoryOffset = bitmapDirectoryOffset
    }
}

/// Everything stored in cluster 0 after the fixed header: extensions and the backing file name.
public struct HeaderExtensions: Equatable, Sendable {
    public var backingFormat: String?
    public var featureNames: [FeatureNameEntry] = []
    public var bitmaps: BitmapsExtension?
    public var encryptionHeader: (offset: UInt64, length: UInt64)? {
        get { encryption.map { ($0[0], $0[1]) } }
        set { encryption = newValue.map { [$0.offset, $0.length] } }
    }
    private var encryption: [UInt64]?
    public var externalDataFile: String?
    /// Unknown extensions, kept and written back as QEMU does (type, payload).
    public var unknown: [(type: UInt32, data: [UInt8])] {
        get { unknownStorage.map { ($0.type, $0.data) } }
        set { unknownStorage = newValue.map { UnknownExtension(type: $0.type, data: $0.data) } }
    }
    private var unknownStorage: [UnknownExtension] = []
    public var backingFile: String?

    private struct UnknownExtension: Equatable, Sendable {
        var type: UInt32
        var data: [UInt8]
    }

    public init() {}

    /// QEMU's limits: backing name ≤ 1023 bytes, backing format < 16 bytes.
    public static let maxBackingFileName = 1023
    public static let maxBackingFormatName = 15
}

extension HeaderExtensions {
    /// Parses the extensions of `header` from `cluster0` (the first cluster of the file, or as
    /// much of it as exists). Checks QEMU's rules: an extension may not run past `ext_end`,
    /// each known type at most once, names within their limits.
    public init(decoding cluster0: [UInt8], header: QCow2Header) throws(QCow2Error) {
        self.init()
        let cs = header.clusterSize
        let extEnd = header.backingFileOffset != 0 ? Int(header.backingFileOffset) : cs
        var r = ByteReader(cluster0, structure: "header extensions", position: 0)
        try r.seek(to: min(Int(header.headerLength), cluster0.count))
        var seen = Set<UInt32>()
        while r.position + 8 <= min(extEnd, cluster0.count) {
            let type = try r.uint32()
            let length = Int(try r.uint32())
            if type == HeaderExtensionType.end { break }
            guard length <= extEnd - r.position else {
                throw .invalid(field: "header extension 0x\(hex(UInt64(type)))", reason: "Header extension too large")
            }
            let data = try r.bytes(length)
            try r.skip(min((8 - length % 8) % 8, r.remaining))
            if type != HeaderExtensionType.featureNameTable && !seen.insert(type).inserted
                && [
                    HeaderExtensionType.backingFormat, HeaderExtensionType.bitmaps,
                    HeaderExtensionType.fullDiskEncryption, HeaderExtensionType.externalDataFile,
                ].contains(type)
            {
                throw .invalid(field: "header extension 0x\(hex(UInt64(type)))", reason: "appears more than once")
            }
            try apply(type: type, data: data)
        }
        if header.backingFileOffset != 0 {
            let length = Int(header.backingFileSize)
            guard length <= Self.maxBackingFileName, length <= cs - Int(header.backingFileOffset) else {
                throw .tooLarge(
                    field: "backing_file_size", value: UInt64(length), limit: UInt64(Self.maxBackingFileName))
            }
            var br = ByteReader(cluster0, structure: "backing file name")
            try br.seek(to: Int(header.backingFileOffset))
            backingFile = try Self.name(try br.bytes(length), field: "backing file name")
        }
    }

    private mutating func apply(type: UInt32, data: [UInt8]) throws(QCow2Error) {
        switch type {
        case HeaderExtensionType.backingFormat:
            guard data.count <= Self.maxBackingFormatName else {
                throw .tooLarge(field: "backing format extension", value: UInt64(data.count), limit: 15)
            }
            backingFormat = try Self.name(data, field: "backing format extension")
        case HeaderExtensionType.featureNameTable:
            var r = ByteReader(data, structure: "feature name table")
            while r.remaining >= 48 {
                let kindRaw = try r.uint8()
                let bit = try r.uint8()
                let nameBytes = try r.bytes(46)
                let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                if let kind = FeatureNameEntry.Kind(rawValue: kindRaw) {
                    featureNames.append(FeatureNameEntry(kind: kind, bit: bit, name: name))
                }
            }
        case HeaderExtensionType.bitmaps:
            var r = ByteReader(data, structure: "bitmaps extension")
            let count = try r.uint32()
            _ = try r.uint32()
            bitmaps = BitmapsExtension(
                nbBitmaps: count, bitmapDirectorySize: try r.uint64(), bitmapDirectoryOffset: try r.uint64())
        case HeaderExtensionType.fullDiskEncryption:
            var r = ByteReader(data, structure: "encryption header pointer")
            encryptionHeader = (try r.uint64(), try r.uint64())
        case HeaderExtensionType.externalDataFile:
            externalDataFile = try Self.name(data, field: "data file name")
        default:
            unknownStorage.append(UnknownExtension(type: type, data: data))
        }
    }

    /// A name stored in cluster 0, refused unless valid UTF-8 (stricter than QEMU): decoding would
    /// replace bad bytes with U+FFFD, so the name re-encoded longer (a 10-byte backing format became
    /// 16 bytes, over its limit) and named a different file.
    static func name(_ bytes: [UInt8], field: String) throws(QCow2Error) -> String {
        guard let name = String(validating: bytes, as: UTF8.self) else {
            throw .invalid(field: field, reason: "not valid UTF-8")
        }
        return name
    }

    /// Names for `bits` from the feature name table (incompatible kind); bits without a name stay in
    /// the returned mask.
    public func incompatibleNames(for bits: UInt64) -> (names: [String], unnamed: UInt64) {
        var names: [String] = []
        var rest = bits
        for entry in featureNames where entry.kind == .incompatible && entry.bit < 64 {
            let mask = UInt64(1) << UInt64(entry.bit)
            if rest & mask != 0 {
                names.append(entry.name)
                rest &= ~mask
            }
        }
        return (names, rest)
    }

    /// Encodes cluster 0 as QEMU's `qcow2_update_header` lays it out: header, backing format, data
    /// file name, encryption pointer, feature name table (v3 with clusters > 4 KiB), bitmaps,
    /// unknown extensions, end marker, backing file name. Returns nil if it does not fit.
    public func encodeCluster0(header: inout QCow2Header) -> [UInt8]? {
        var w = ByteWriter(capacity: header.clusterSize)
        func ext(_ type: UInt32, _ data: [UInt8]) {
            w.uint32(type)
            w.uint32(UInt32(data.count))
            w.append(data)
            w.align(to: 8)
        }
        let headerBytes = header.encode()
        w.append(headerBytes)
        if let backingFormat { ext(HeaderExtensionType.backingFormat, Array(backingFormat.utf8)) }
        if let externalDataFile { ext(HeaderExtensionType.externalDataFile, Array(externalDataFile.utf8)) }
        if let encryption {
            var e = ByteWriter()
            e.uint64(encryption[0])
            e.uint64(encryption[1])
            ext(HeaderExtensionType.fullDiskEncryption, e.bytes)
        }
        if header.version >= 3 && header.clusterSize > 4096 {
            var t = ByteWriter()
            for entry in FeatureNameEntry.qemuDefault {
                t.uint8(entry.kind.rawValue)
                t.uint8(entry.bit)
                let name = Array(entry.name.utf8.prefix(46))
                t.append(name)
                t.zeros(46 - name.count)
            }
            ext(HeaderExtensionType.featureNameTable, t.bytes)
        }
        if let bitmaps {
            var b = ByteWriter()
            b.uint32(bitmaps.nbBitmaps)
            b.uint32(0)
            b.uint64(bitmaps.bitmapDirectorySize)
            b.uint64(bitmaps.bitmapDirectoryOffset)
            ext(HeaderExtensionType.bitmaps, b.bytes)
        }
        for u in unknownStorage.reversed() { ext(u.type, u.data) }
        w.uint32(HeaderExtensionType.end)
        w.uint32(0)
        if let backingFile {
            header.backingFileOffset = UInt64(w.bytes.count)
            header.backingFileSize = UInt32(backingFile.utf8.count)
            w.append(Array(backingFile.utf8))
        } else {
            header.backingFileOffset = 0
            header.backingFileSize = 0
        }
        guard w.bytes.count <= header.clusterSize else { return nil }
        var out = w.bytes
        // The header encoded above predates the backing offset update: rewrite its first bytes.
        let fresh = header.encode()
        out.replaceSubrange(0..<fresh.count, with: fresh)
        return out
    }
}
