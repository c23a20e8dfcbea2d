import BlockIO
import QCow2Format

/// `qemu-img create -o` options for qcow2, with QEMU's defaults.
public struct QCow2CreateOptions: Sendable {
    public enum Preallocation: String, Sendable, CaseIterable { case off, metadata, falloc, full }
    public var size: UInt64
    /// 2 (`compat=0.10`) or 3 (`compat=1.1`).
    public var version: UInt32 = 3
    public var clusterBits: UInt32 = 16
    public var refcountOrder: UInt32 = 4
    public var lazyRefcounts = false
    public var extendedL2 = false
    public var compressionType: QCow2CompressionType = .zlib
    public var preallocation: Preallocation = .off
    public var backingFile: String?
    public var backingFormat: String?
    public var dataFile: String?
    public var dataFileRaw = false

    public init(size: UInt64) { self.size = size }

    /// The checks `qemu-img create` makes, with its messages.
    public func validate() throws {
        guard (9...21).contains(clusterBits) else {
            throw QCow2Error.invalid(
                field: "cluster_size", reason: "Cluster size must be a power of two between 512 and 2048k")
        }
        guard refcountOrder <= 6 else {
            throw QCow2Error.invalid(
                field: "refcount_bits", reason: "Refcount width must be a power of two and may not exceed 64 bits")
        }
        if version == 2 {
            if refcountOrder != 4 {
                throw QCow2Error.invalid(
                    field: "refcount_bits",
                    reason: "Different refcount widths than 16 bits require compatibility level 1.1 or above "
                        + "(use version=v3 or greater)")
            }
            if lazyRefcounts {
                throw QCow2Error.invalid(
                    field: "lazy_refcounts",
                    reason: "Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or "
                        + "greater)")
            }
            if extendedL2 {
                throw QCow2Error.invalid(
                    field: "extended_l2",
                    reason: "Extended L2 entries are only supported with compatibility level 1.1 and above (use "
                        + "version=v3 or greater)")
            }
            if compressionType != .zlib {
                throw QCow2Error.invalid(
                    field: "compression_type",
                    reason: "Non-zlib compression type is only supported with compatibility level 1.1 and above "
                        + "(use version=v3 or greater)")
            }
            if dataFile != nil {
                throw QCow2Error.invalid(
                    field: "data_file",
                    reason: "Data file is only supported with compatibility level 1.1 and above (use version=v3 or "
                        + "greater)")
            }
        }
        if extendedL2 && clusterBits < 14 {
            throw QCow2Error.invalid(
                field: "extended_l2",
                reason: "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes")
        }
        if dataFileRaw && dataFile == nil {
            throw QCow2Error.invalid(field: "data_file_raw", reason: "data-file-raw requires data-file")
        }
        if dataFileRaw && backingFile != nil {
            throw QCow2Error.invalid(
                field: "data_file_raw", reason: "Backing file and data-file-raw cannot be used at the same time")
        }
        if backingFile != nil && preallocation != .off && !extendedL2 {
            throw QCow2Error.invalid(
                field: "preallocation",
                reason: "Backing file and preallocation can only be used at the same time if extended_l2 is on")
        }
        let geometry = QCow2Geometry(
            clusterBits: Int(clusterBits), extendedL2: extendedL2, refcountOrder: Int(refcountOrder))
        guard size <= geometry.maxVirtualSize else {
            throw QCow2Error.invalid(
                field: "size",
                reason: "The image size is too large for file format 'qcow2' (try using a larger cluster size)")
        }
        if let backingFile, backingFile.utf8.count > HeaderExtensions.maxBackingFileName {
            throw QCow2Error.tooLarge(
                field: "backing file name", value: UInt64(backingFile.utf8.count),
                limit: UInt64(HeaderExtensions.maxBackingFileName))
        }
    }
}

extension QCow2Image {
    /// Creates a qcow2 image the way `qemu-img create` lays it out: header in cluster 0, a
    /// one-cluster refcount table in cluster 1, its block in cluster 2, then the L1 table.
    /// The size is rounded up to 512 bytes. `dataFileDevice` receives the guest data when the
    /// options name a data file.
    public static func create(
        on device: any BlockDevice, filename: String, options: QCow2CreateOptions,
        dataFileDevice: (any BlockDevice)? = nil
    ) throws {
        try options.validate()
        let cs = UInt64(1) << UInt64(options.clusterBits)
        var header = QCow2Header(
            version: options.version, clusterBits: options.clusterBits, size: 0, refcountOrder: options.refcountOrder)
        header.refcountTableOffset = cs
        header.refcountTableClusters = 1
        if options.lazyRefcounts { header.compatibleFeatures.insert(.lazyRefcounts) }
        if options.extendedL2 { header.incompatibleFeatures.insert(.extendedL2) }
        if options.compressionType != .zlib {
            header.compressionType = options.compressionType
            header.incompatibleFeatures.insert(.compressionType)
        }
        var extensions = HeaderExtensions()
        if let backing = options.backingFile {
            extensions.backingFile = backing
            extensions.backingFormat = options.backingFormat
        }
        if let dataFile = options.dataFile {
            header.incompatibleFeatures.insert(.externalDataFile)
            extensions.externalDataFile = dataFile
            if options.dataFileRaw { header.autoclearFeatures.insert(.dataFileRaw) }
        }
        guard let cluster0 = extensions.encodeCluster0(header: &header) else {
            throw QCow2Error.invalid(field: "header", reason: "header extensions do not fit in the first cluster")
        }
        let geometry = QCow2Geometry(header: header)
        var block = [UInt8](repeating: 0, count: Int(cs))
        for i in 0..<3 { RefcountBlockCodec.set(&block, index: i, order: geometry.refcountOrder, value: 1) }
        var table = [UInt8](repeating: 0, count: Int(cs))
        table.setBigEndianUInt64(2 * cs, at: 0)
        try device.setLength(0)
        try device.write(cluster0, at: 0)
        try device.write(table, at: cs)
        try device.write(block, at: 2 * cs)
        try device.flush()
        let size = (options.size + 511) / 512 * 512
        guard size > 0 else { return }
        let image = try QCow2Image(
            device: device, filename: filename, header: header, extensions: extensions, writable: true,
            dataFile: dataFileDevice)
        try image.resize(to: size, preallocation: options.dataFileRaw ? .metadata : options.preallocation)
        try image.flush()
        if let dataFileDevice { try dataFileDevice.setLength(size) }
    }
}
