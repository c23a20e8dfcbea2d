import QCow2Format

/// QEMU's qcow2 metadata-cache runtime options (`read_cache_sizes` and `qcow2_update_options_prepare`
/// in block/qcow2.c, docs/qcow2-cache.txt). Sizes in bytes, the interval in seconds; nil means
/// "not set", which is not the same as 0 for QEMU's combination rules.
public struct QCow2CacheOptions: Sendable, Equatable {
    /// `l2-cache-size`: most bytes of L2 tables kept (default: enough to cover the image, at most 32 MiB).
    public var l2CacheSize: UInt64?
    /// `refcount-cache-size` (default 4 clusters).
    public var refcountCacheSize: UInt64?
    /// `cache-size`: L2 and refcount caches together, split as QEMU does.
    public var cacheSize: UInt64?
    /// `l2-cache-entry-size`: vmimg caches whole L2 tables, so only the cluster size is accepted.
    public var l2CacheEntrySize: UInt64?
    /// `cache-clean-interval`: drop entries unused for this long; 0 disables (default 600 s, QEMU on Linux).
    public var cacheCleanInterval: UInt64?

    public init(
        l2CacheSize: UInt64? = nil, refcountCacheSize: UInt64? = nil, cacheSize: UInt64? = nil,
        l2CacheEntrySize: UInt64? = nil, cacheCleanInterval: UInt64? = nil
    ) {
        self.l2CacheSize = l2CacheSize
        self.refcountCacheSize = refcountCacheSize
        self.cacheSize = cacheSize
        self.l2CacheEntrySize = l2CacheEntrySize
        self.cacheCleanInterval = cacheCleanInterval
    }

    /// The option names, as QEMU spells them (`QCOW2_OPT_*`).
    public static let keys = [
        "l2-cache-size", "refcount-cache-size", "cache-size", "l2-cache-entry-size", "cache-clean-interval",
    ]
    /// The names of the options that are set, in `keys` order.
    public var setKeys: [String] {
        zip(Self.keys, [l2CacheSize, refcountCacheSize, cacheSize, l2CacheEntrySize, cacheCleanInterval])
            .filter { $0.1 != nil }.map(\.0)
    }

    /// `DEFAULT_L2_CACHE_MAX_SIZE` on Linux.
    public static let defaultL2CacheMaxSize: UInt64 = 32 << 20
    /// `DEFAULT_CACHE_CLEAN_INTERVAL` on Linux, seconds.
    public static let defaultCacheCleanInterval: UInt64 = 600
    /// `MIN_L2_CACHE_SIZE`, entries.
    public static let minL2Entries = 2
    /// `MIN_REFCOUNT_CACHE_SIZE`, clusters.
    public static let minRefcountEntries = 4

    /// What the options come to for one image.
    public struct Resolved: Sendable, Equatable {
        /// Bytes QEMU gives each cache (before rounding to entries).
        public var l2CacheBytes: UInt64
        public var refcountCacheBytes: UInt64
        /// Whole L2 tables / refcount blocks kept.
        public var l2Entries: Int
        public var refcountEntries: Int
        /// Seconds; 0 = never.
        public var cleanInterval: UInt64
    }

    /// Applies QEMU's defaults, split and checks for an image of `virtualSize` bytes.
    /// - Throws: `QCow2Error.unsupported` with QEMU's message for inconsistent combinations.
    public func resolve(geometry: QCow2Geometry, virtualSize: UInt64) throws(QCow2Error) -> Resolved {
        let cluster = UInt64(geometry.clusterSize)
        let minRefcountCache = UInt64(Self.minRefcountEntries) * cluster
        // An L2 table is one cluster, so the most that is ever useful is whole clusters of entries.
        let maxL2Entries = virtualSize / cluster + (virtualSize % cluster == 0 ? 0 : 1)
        let tableBytes = maxL2Entries * UInt64(geometry.l2EntrySize)
        let maxL2Cache = (tableBytes + cluster - 1) / cluster * cluster
        var l2 = min(maxL2Cache, l2CacheSize ?? Self.defaultL2CacheMaxSize)
        var refcount = refcountCacheSize ?? 0
        if let combined = cacheSize {
            if l2CacheSize != nil && refcountCacheSize != nil {
                throw .unsupported("cache-size, l2-cache-size and refcount-cache-size may not be set at the same time")
            } else if let setting = l2CacheSize, setting > combined {
                throw .unsupported("l2-cache-size may not exceed cache-size")
            } else if refcount > combined {
                throw .unsupported("refcount-cache-size may not exceed cache-size")
            }
            if l2CacheSize != nil {
                refcount = combined - l2
            } else if refcountCacheSize != nil {
                l2 = combined - refcount
            } else if combined >= maxL2Cache + minRefcountCache {
                // As much as possible for L2, the rest for refcounts.
                l2 = maxL2Cache
                refcount = combined - l2
            } else {
                refcount = min(combined, minRefcountCache)
                l2 = combined - refcount
            }
        }
        // QEMU switches to 4 KiB slices when the cache cannot cover the disk; the count check uses them.
        var entrySize = l2CacheEntrySize ?? cluster
        if l2 < maxL2Cache && l2CacheEntrySize == nil { entrySize = min(cluster, 4096) }
        guard entrySize >= 512 && entrySize <= cluster && entrySize & (entrySize - 1) == 0 else {
            throw .unsupported(
                "L2 cache entry size must be a power of two between 512 and the cluster size (\(cluster))")
        }
        if let set = l2CacheEntrySize, set != cluster {
            throw .unsupported(
                "l2-cache-entry-size: vmimg caches whole L2 tables; only the cluster size (\(cluster)) is supported")
        }
        guard l2 / entrySize <= UInt64(Int32.max) else { throw .unsupported("L2 cache size too big") }
        guard refcount / cluster <= UInt64(Int32.max) else { throw .unsupported("Refcount cache size too big") }
        let interval = cacheCleanInterval ?? Self.defaultCacheCleanInterval
        guard interval <= UInt64(UInt32.max) else { throw .unsupported("Cache clean interval too big") }
        return Resolved(
            l2CacheBytes: l2, refcountCacheBytes: refcount,
            l2Entries: max(Self.minL2Entries, Int(l2 / cluster)),
            refcountEntries: max(Self.minRefcountEntries, Int(refcount / cluster)), cleanInterval: interval)
    }
}
