import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format
import TestSupport
import Testing

/// A clock the test moves by hand, for `cache-clean-interval`.
final class ManualClock: Sendable {
    let now = Locked<UInt64>(1_000_000_000)
    func advance(seconds: UInt64) { now.withLock { $0 += seconds * 1_000_000_000 } }
    var read: @Sendable () -> UInt64 { { [self] in now.withLock { $0 } } }
}

struct CacheDefaultCase: CustomStringConvertible, Sendable {
    var virtualSize: UInt64
    var clusterBits: Int
    var extendedL2 = false
    var options = QCow2CacheOptions()
    var l2Bytes: UInt64
    var refcountBytes: UInt64
    var l2Entries: Int
    var refcountEntries: Int
    var description: String { "size=\(virtualSize) cb=\(clusterBits) extl2=\(extendedL2) \(options)" }
}

/// Expected values follow docs/qcow2-cache.txt and read_cache_sizes: the L2 cache covers the
/// whole disk up to 32 MiB, the refcount cache is 4 clusters, `cache-size` goes to L2 first.
let cacheDefaultCases: [CacheDefaultCase] = [
    // 1 GiB, 64 KiB clusters: 16384 entries = 128 KiB of L2 tables.
    CacheDefaultCase(
        virtualSize: 1 << 30, clusterBits: 16, l2Bytes: 128 << 10, refcountBytes: 0, l2Entries: 2, refcountEntries: 4),
    // 8 GiB: 1 MiB of tables.
    CacheDefaultCase(
        virtualSize: 8 << 30, clusterBits: 16, l2Bytes: 1 << 20, refcountBytes: 0, l2Entries: 16, refcountEntries: 4),
    // 1 TiB: 128 MiB would cover it; capped at 32 MiB.
    CacheDefaultCase(
        virtualSize: 1 << 40, clusterBits: 16, l2Bytes: 32 << 20, refcountBytes: 0, l2Entries: 512,
        refcountEntries: 4),
    // Extended L2 entries are 16 bytes.
    CacheDefaultCase(
        virtualSize: 1 << 30, clusterBits: 16, extendedL2: true, l2Bytes: 256 << 10, refcountBytes: 0, l2Entries: 4,
        refcountEntries: 4),
    // 512-byte clusters: 2 Mi entries = 16 MiB in 32768 tables.
    CacheDefaultCase(
        virtualSize: 1 << 30, clusterBits: 9, l2Bytes: 16 << 20, refcountBytes: 0, l2Entries: 32768,
        refcountEntries: 4),
    // 2 MiB clusters, a size not a multiple of a cluster: one table, rounded up.
    CacheDefaultCase(
        virtualSize: (1 << 30) + 1, clusterBits: 21, l2Bytes: 2 << 20, refcountBytes: 0, l2Entries: 2,
        refcountEntries: 4),
    // cache-size too small for L2 + 4 refcount clusters: the refcount minimum first.
    CacheDefaultCase(
        virtualSize: 8 << 30, clusterBits: 16, options: QCow2CacheOptions(cacheSize: 1 << 20),
        l2Bytes: 768 << 10, refcountBytes: 256 << 10, l2Entries: 12, refcountEntries: 4),
    // cache-size large enough: all L2 wanted, the rest refcounts.
    CacheDefaultCase(
        virtualSize: 8 << 30, clusterBits: 16, options: QCow2CacheOptions(cacheSize: 4 << 20),
        l2Bytes: 1 << 20, refcountBytes: 3 << 20, l2Entries: 16, refcountEntries: 48),
    // cache-size with l2-cache-size: refcounts get the difference.
    CacheDefaultCase(
        virtualSize: 8 << 30, clusterBits: 16, options: QCow2CacheOptions(l2CacheSize: 512 << 10, cacheSize: 2 << 20),
        l2Bytes: 512 << 10, refcountBytes: 1536 << 10, l2Entries: 8, refcountEntries: 24),
    // cache-size with refcount-cache-size: L2 gets the difference (more than the disk needs).
    CacheDefaultCase(
        virtualSize: 1 << 30, clusterBits: 16,
        options: QCow2CacheOptions(refcountCacheSize: 1 << 20, cacheSize: 4 << 20),
        l2Bytes: 3 << 20, refcountBytes: 1 << 20, l2Entries: 48, refcountEntries: 16),
    // A tiny l2-cache-size still keeps QEMU's minimum of 2 entries.
    CacheDefaultCase(
        virtualSize: 8 << 30, clusterBits: 16, options: QCow2CacheOptions(l2CacheSize: 4096), l2Bytes: 4096,
        refcountBytes: 0, l2Entries: 2, refcountEntries: 4),
]

@Suite struct CacheOptionsTests {
    @Test(arguments: cacheDefaultCases)
    func defaultsAndSplit(_ c: CacheDefaultCase) throws {
        let geometry = QCow2Geometry(clusterBits: c.clusterBits, extendedL2: c.extendedL2, refcountOrder: 4)
        let r = try c.options.resolve(geometry: geometry, virtualSize: c.virtualSize)
        #expect(r.l2CacheBytes == c.l2Bytes)
        #expect(r.refcountCacheBytes == c.refcountBytes)
        #expect(r.l2Entries == c.l2Entries)
        #expect(r.refcountEntries == c.refcountEntries)
        #expect(r.cleanInterval == 600)
    }

    /// The sizes an image opened through ImageOpener gets from a real qemu-img image.
    @Test func openedImageUsesTheOptions() throws {
        let scratch = try Scratch(label: "cache-open")
        let image = try scratch.qemuImg(create: "qcow2", size: "8G")
        var options = OpenOptions()
        options.cache = QCow2CacheOptions(l2CacheSize: 256 << 10, cacheCleanInterval: 0)
        let disk = try #require(try ImageOpener.open(image.path, options: options) as? QCow2Image)
        #expect(disk.cacheSizes.l2Entries == 4)
        #expect(disk.cacheSizes.cleanInterval == 0)
        let plain = try #require(try ImageOpener.open(image.path) as? QCow2Image)
        #expect(plain.cacheSizes.l2Entries == 16)
        #expect(plain.cacheSizes.refcountEntries == 4)
    }

    @Test(arguments: [
        (
            QCow2CacheOptions(l2CacheSize: 1 << 20, refcountCacheSize: 1 << 20, cacheSize: 4 << 20),
            "cache-size, l2-cache-size and refcount-cache-size may not be set at the same time"
        ),
        (QCow2CacheOptions(l2CacheSize: 2 << 20, cacheSize: 1 << 20), "l2-cache-size may not exceed cache-size"),
        (
            QCow2CacheOptions(refcountCacheSize: 2 << 20, cacheSize: 1 << 20),
            "refcount-cache-size may not exceed cache-size"
        ),
        (
            QCow2CacheOptions(l2CacheEntrySize: 1000),
            "L2 cache entry size must be a power of two between 512 and the cluster size (65536)"
        ),
        (
            QCow2CacheOptions(l2CacheEntrySize: 4096),
            "l2-cache-entry-size: vmimg caches whole L2 tables; only the cluster size (65536) is supported"
        ),
        (QCow2CacheOptions(cacheCleanInterval: 1 << 32), "Cache clean interval too big"),
    ])
    func inconsistentCombinations(_ options: QCow2CacheOptions, _ message: String) throws {
        let geometry = QCow2Geometry(clusterBits: 16, extendedL2: false, refcountOrder: 4)
        #expect(throws: QCow2Error.unsupported(message)) {
            try options.resolve(geometry: geometry, virtualSize: 1 << 30)
        }
        #expect(throws: Never.self) {
            try QCow2CacheOptions(l2CacheEntrySize: 65536).resolve(geometry: geometry, virtualSize: 1 << 30)
        }
    }

    /// Writes and reads through a 2-table L2 cache and a 4-block refcount cache over an image with
    /// hundreds of L2 tables and many refcount blocks: qemu-img must see the same bytes.
    @Test func tinyCachesReadAndWriteCorrectly() throws {
        let scratch = try Scratch(label: "cache-tiny")
        let path = scratch.path("img.qcow2")
        // 512-byte clusters: one L2 table maps 32 KiB, one refcount block 256 clusters.
        try Qemu.create(path, format: "qcow2", size: "8M", options: ["cluster_size=512"])
        var rng = Mix64(seed: 0x5eed_cafe)
        let size = 8 << 20
        var mirror = [UInt8](repeating: 0, count: size)
        do {
            var options = OpenOptions(writable: true)
            options.cache = QCow2CacheOptions(l2CacheSize: 1, refcountCacheSize: 1)
            let image = try #require(try ImageOpener.open(path, options: options) as? QCow2Image)
            #expect(image.cacheSizes.l2Entries == 2 && image.cacheSizes.refcountEntries == 4)
            for _ in 0..<600 {
                let len = Int.random(in: 1...4096, using: &rng)
                let off = Int.random(in: 0..<(size - len), using: &rng)
                let data = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
                try image.write(data, range: 0..<len, at: UInt64(off))
                mirror.replaceSubrange(off..<(off + len), with: data)
                #expect(image.cachedTableCounts.l2 <= 3)
            }
            try image.close()
            #expect(try image.read(count: size, at: 0) == mirror)
        }
        let check = try Qemu.img(["check", path])
        #expect(check.status == 0, "\(check)")
        try Qemu.convertToRaw(path, scratch.path("q.raw"))
        #expect(try bytes(scratch.path("q.raw")) == mirror)
        var options = OpenOptions()
        options.cache = QCow2CacheOptions(l2CacheSize: 1)
        let reader = try ImageOpener.open(path, options: options)
        #expect(try reader.read(count: size, at: 0) == mirror)
    }

    /// Entries unused for the interval go; recent and dirty ones stay (manual clock).
    @Test func cleanIntervalDropsIdleEntries() throws {
        let scratch = try Scratch(label: "cache-clean")
        let path = scratch.path("img.qcow2")
        try Qemu.create(path, format: "qcow2", size: "64M", options: ["cluster_size=4096"])
        try Qemu.io(path, commands: ["write -P 7 0 64M"]).checked()
        let clock = ManualClock()
        let device = try BlockFile(path: path, writable: true)
        let (header, extensions) = try QCow2Image.readHeader(from: device)
        let image = try QCow2Image(
            device: device, filename: path, header: header, extensions: extensions, writable: true,
            cache: QCow2CacheOptions(cacheCleanInterval: 30), cacheClock: clock.read)
        // 4 KiB clusters: 512 clusters per L2 table, so 32 tables for 64 MiB.
        _ = try image.read(count: 32 << 20, at: 0)
        #expect(image.cachedTableCounts.l2 == 16)
        clock.advance(seconds: 20)
        _ = try image.read(count: 4096, at: 0)
        #expect(image.dropIdleCacheEntries() == 0)
        clock.advance(seconds: 15)
        // 35 s since the first 16 tables were used, 15 s since table 0 was.
        #expect(image.dropIdleCacheEntries() == 15)
        #expect(image.cachedTableCounts.l2 == 1)
        // A dirty table (a zero flag set in it) stays until written back.
        try image.writeZeroes(at: 40 << 20, count: 4096, unmap: false)
        #expect(image.cachedTableCounts.l2 == 2)
        clock.advance(seconds: 31)
        _ = image.dropIdleCacheEntries()
        #expect(image.cachedTableCounts.l2 == 1)
        try image.flush()
        clock.advance(seconds: 31)
        _ = image.dropIdleCacheEntries()
        #expect(image.cachedTableCounts.l2 == 0 && image.cachedTableCounts.refcount == 0)
        #expect(try image.read(count: 4096, at: 40 << 20) == [UInt8](repeating: 0, count: 4096))
        #expect(try image.read(count: 4096, at: 44 << 20) == [UInt8](repeating: 7, count: 4096))
    }

    /// The real timer (1 s) empties the caches of an idle image.
    @Test func cleanTimerRuns() throws {
        let scratch = try Scratch(label: "cache-timer")
        let path = scratch.path("img.qcow2")
        try Qemu.create(path, format: "qcow2", size: "16M")
        try Qemu.io(path, commands: ["write -P 7 0 16M"]).checked()
        var options = OpenOptions()
        options.cache = QCow2CacheOptions(cacheCleanInterval: 1)
        let image = try #require(try ImageOpener.open(path, options: options) as? QCow2Image)
        _ = try image.read(count: 16 << 20, at: 0)
        #expect(image.cachedTableCounts.l2 == 1)
        let deadline = Date().addingTimeInterval(10)
        while image.cachedTableCounts.l2 > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        #expect(image.cachedTableCounts.l2 == 0)
        let none = try #require(try ImageOpener.open(path) as? QCow2Image)
        #expect(none.cacheSizes.cleanInterval == 600)
    }
}
