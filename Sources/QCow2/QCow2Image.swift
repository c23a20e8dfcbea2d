import BlockIO
import Codecs
import Dispatch
import QCow2Format

/// Metadata of an open image. Lives inside `QCow2Image`'s mutex: every read or change of tables,
/// refcounts or the header happens under that lock.
struct QCow2State {
    var header: QCow2Header
    var extensions: HeaderExtensions
    var geometry: QCow2Geometry
    var l1: [UInt64]
    /// Active L1 entries changed in memory and not yet written.
    var l1DirtyIndices: Set<Int> = []
    var refcountTable: [UInt64]
    var snapshots: [SnapshotEntry]
    var snapshotTableLength: Int
    var l2Cache: TableCache<[UInt64]>
    var refcountCache: TableCache<[UInt8]>
    /// First-fit allocator cursor (QEMU's `free_cluster_index`).
    var freeClusterHint: UInt64 = 0
    /// Byte cursor for packing compressed clusters (QEMU's `free_byte_offset`); 0 = none open.
    var compressedWriteCursor: UInt64 = 0
    /// Refcount decrements deferred until the tables that dropped the references are on disk, so
    /// a crash can only leak; freed clusters are not reused before then.
    var pendingDecrements: [UInt64: UInt64] = [:]
    /// Host length of the image file as we know it (grows with allocations).
    var fileLength: UInt64
    /// Set once a fatal inconsistency was found while writable: further writes fail.
    var markedCorrupt = false
    /// Whether enabled persistent bitmaps were marked `in_use` before the first guest change
    /// (``guardBitmaps(file:)``), or need not be.
    var bitmapsGuarded = false
    /// Whether the file looks metadata-preallocated (decided on the first block-status query, as
    /// QEMU's `metadata_preallocation_checked`); nil until then.
    var metadataPreallocation: Bool?
    /// Reserve (`fallocate`) runs of new clusters that grow the file before writing them.
    var reservesFileGrowth = false
}

/// An open qcow2 image: reads (and, when opened writable, writes) guest data exactly as QEMU
/// does. Thread-safe: metadata under one mutex, data I/O outside it where possible.
public final class QCow2Image: VirtualDisk {
    public let filename: String
    public let formatName = "qcow2"
    public let file: any BlockDevice
    /// The external data file, when the image has one and it was allowed.
    public let dataFile: (any BlockDevice)?
    public let backingDisk: (any VirtualDisk)?
    public let isWritable: Bool
    let state: Locked<QCow2State>
    let decompressors: Locked<[DecompressorBox]>
    /// Geometry is fixed for the life of an open image.
    public let geometry: QCow2Geometry
    public let compressionType: QCow2CompressionType
    /// The metadata cache sizes and clean interval in force (QEMU's defaults unless set).
    public let cacheSizes: QCow2CacheOptions.Resolved
    /// Fires every `cache-clean-interval` seconds to drop idle cache entries; nil when disabled.
    let cleanTimer = Locked<(any DispatchSourceTimer)?>(nil)

    /// Reads cluster 0 of `device` and decodes the header and its extensions, with every
    /// open-time check that does not need the rest of the file.
    public static func readHeader(from device: any BlockDevice) throws -> (QCow2Header, HeaderExtensions) {
        let length = try device.length()
        let first = try device.read(count: Int(min(length, 112)), at: 0)
        guard first.count >= 72 else {
            throw QCow2Error.truncated(structure: "qcow2 header", needed: 72, available: first.count)
        }
        let header = try QCow2Header(decoding: first)
        let cluster0 = try device.read(count: Int(min(length, UInt64(header.clusterSize))), at: 0)
        let fullHeader = try QCow2Header(decoding: cluster0)
        let extensions = try HeaderExtensions(decoding: cluster0, header: fullHeader)
        try fullHeader.checkIncompatibleFeatures(names: extensions)
        return (fullHeader, extensions)
    }

    /// Opens an image whose header was read with `readHeader(from:)`.
    /// - Parameters:
    ///   - backing: the opened backing disk; nil reads unallocated clusters as zeros.
    ///   - dataFile: the external data file (required when the header has one).
    public init(
        device: any BlockDevice, filename: String, header: QCow2Header, extensions: HeaderExtensions,
        writable: Bool, backing: (any VirtualDisk)? = nil, dataFile: (any BlockDevice)? = nil,
        cache: QCow2CacheOptions = QCow2CacheOptions(), requireDataFile: Bool = true,
        cacheClock: @escaping @Sendable () -> UInt64 = monotonicNanoseconds
    ) throws {
        self.filename = filename
        file = device
        isWritable = writable
        backingDisk = backing
        self.dataFile = dataFile
        let fileLength = try device.length()
        if writable && header.incompatibleFeatures.contains(.corrupt) {
            throw QCow2Error.unsupported("qcow2: Image is corrupt; cannot be opened read/write")
        }
        try header.validateLayout(fileSize: fileLength)
        if header.hasExternalDataFile && dataFile == nil && requireDataFile {
            throw QCow2Error.invalid(field: "data file", reason: "'data-file' is required for this image")
        }
        if header.autoclearFeatures.contains(.dataFileRaw) && !header.hasExternalDataFile {
            throw QCow2Error.invalid(field: "data_file_raw", reason: "data-file-raw requires a data file")
        }
        let geometry = QCow2Geometry(header: header)
        self.geometry = geometry
        compressionType = header.compressionType
        let l1 = try device.readTable(at: header.l1TableOffset, count: Int(header.l1Size))
        let refcountTable = try device.readTable(
            at: header.refcountTableOffset, count: Int(header.refcountTableClusters) * geometry.clusterSize / 8)
        var snapshots: [SnapshotEntry] = []
        var snapshotLength = 0
        if header.nbSnapshots > 0 {
            // Read only what the file holds, capped by QEMU's table limit.
            let available = min(fileLength - header.snapshotsOffset, UInt64(QCow2Geometry.maxSnapshotTableBytes))
            let bytes = try device.read(count: Int(available), at: header.snapshotsOffset)
            (snapshots, snapshotLength) = try SnapshotTable.decode(bytes, count: Int(header.nbSnapshots))
            for (i, s) in snapshots.enumerated() {
                try header.validateTable(
                    "snapshot \(i + 1) L1 table", offsetField: "snapshot \(s.id) l1_table_offset",
                    offset: s.l1TableOffset, entries: UInt64(s.l1Size), entrySize: 8,
                    maxBytes: UInt64(QCow2Geometry.maxL1Entries) * 8, fileSize: fileLength)
            }
        }
        let sizes = try cache.resolve(geometry: geometry, virtualSize: header.size)
        cacheSizes = sizes
        state = Locked(
            QCow2State(
                header: header, extensions: extensions, geometry: geometry, l1: l1, refcountTable: refcountTable,
                snapshots: snapshots, snapshotTableLength: snapshotLength,
                l2Cache: TableCache(capacity: sizes.l2Entries, clock: cacheClock),
                refcountCache: TableCache(capacity: sizes.refcountEntries, clock: cacheClock),
                fileLength: fileLength))
        decompressors = Locked([])
        if sizes.cleanInterval > 0 && Self.periodicCacheCleaning.withLock({ $0 }) {
            startCleanTimer(seconds: sizes.cleanInterval)
        }
    }

    deinit { cleanTimer.withLock { $0?.cancel() } }

    /// Whether images opened from now on run QEMU's `cache_clean_timer` (`cache-clean-interval`).
    /// On by default; a process that lives for one short command (the CLI's image commands) turns
    /// it off: the timer's dispatch threads cost ~0.25 ms of a 6 ms `check`, and the process exits
    /// long before the first sweep (600 s by default). `dropIdleCacheEntries()` works either way.
    public static let periodicCacheCleaning = Locked(true)

    /// QEMU's `cache_clean_timer`: a periodic sweep, so an idle image (a quiet NBD export) gives
    /// its tables back without waiting for the next access.
    private func startCleanTimer(seconds: UInt64) {
        cleanTimer.withLock { slot in
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
            timer.schedule(deadline: .now() + .seconds(Int(seconds)), repeating: .seconds(Int(seconds)))
            timer.setEventHandler { [weak self] in _ = self?.dropIdleCacheEntries() }
            timer.resume()
            slot = timer
        }
    }

    /// Drops clean L2 tables and refcount blocks unused for `cache-clean-interval` seconds (the
    /// timer calls this; callable directly). Returns how many entries went.
    @discardableResult
    public func dropIdleCacheEntries() -> Int {
        let idle = cacheSizes.cleanInterval * 1_000_000_000
        guard idle > 0 else { return 0 }
        return state.withLock { s in
            s.l2Cache.dropIdle(idleNanoseconds: idle) + s.refcountCache.dropIdle(idleNanoseconds: idle)
        }
    }

    /// How many L2 tables and refcount blocks are cached now.
    public var cachedTableCounts: (l2: Int, refcount: Int) {
        state.withLock { ($0.l2Cache.count, $0.refcountCache.count) }
    }

    /// Opens a standalone image by path (no backing file, no data file): for tests and tools.
    public convenience init(path: String, writable: Bool = false) throws {
        let device = try BlockFile(path: path, writable: writable)
        let (header, extensions) = try Self.readHeader(from: device)
        try self.init(device: device, filename: path, header: header, extensions: extensions, writable: writable)
    }

    /// Whether a run of new clusters that grows the file is reserved with `fallocate` before it is
    /// written. On ext4 this spares the delayed-allocation bookkeeping of every page written past
    /// the end (about half the kernel time of a bulk copy); one more system call per run, so bulk
    /// writers (convert) turn it on and small random writers leave it off.
    public var reservesFileGrowth: Bool {
        get { state.withLock { $0.reservesFileGrowth } }
        set { state.withLock { $0.reservesFileGrowth = newValue } }
    }

    public var virtualSize: UInt64 { state.withLock { $0.header.size } }
    public var header: QCow2Header { state.withLock { $0.header } }
    public var extensions: HeaderExtensions { state.withLock { $0.extensions } }
    public var snapshots: [SnapshotEntry] { state.withLock { $0.snapshots } }
}
