import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// A bounded cache of metadata tables keyed by host offset, with dirty tracking. Least recently
/// used clean entries are dropped first; the owner writes dirty ones back (in its own order)
/// before they can be dropped, so the cache never decides write order.
///
/// Every operation but `dirtyOffsets` is O(1): slots live in an array linked into a recency list
/// (QEMU's qcow2-cache scans its entries instead, which is fine for its small caches). `modify`
/// changes a table in place, without copying it.
///
/// Each slot remembers when it was last used (a monotonic clock, injectable for tests) so
/// `dropIdle` can implement QEMU's `cache-clean-interval` by walking from the oldest end.
struct TableCache<Table> {
    private struct Slot {
        var offset: UInt64
        var table: Table?
        var dirty: Bool
        /// Clock reading at the last use, nanoseconds.
        var lastUsed: UInt64 = 0
        /// Neighbours in the recency list (more recent, less recent); -1 at the ends.
        var newer: Int
        var older: Int
    }
    private var slots: [Slot] = []
    private var index: [UInt64: Int] = [:]
    private var freeSlots: [Int] = []
    private var newest = -1
    private var oldest = -1
    private var dirtyCount = 0
    let capacity: Int
    let clock: @Sendable () -> UInt64

    init(capacity: Int, clock: @escaping @Sendable () -> UInt64 = monotonicNanoseconds) {
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    var count: Int { index.count }
    var dirtyOffsets: [UInt64] { index.filter { slots[$0.value].dirty }.map(\.key).sorted() }
    var hasDirty: Bool { dirtyCount > 0 }
    var isFull: Bool { index.count >= capacity }

    mutating func get(_ offset: UInt64) -> Table? {
        guard let i = index[offset] else { return nil }
        touch(i)
        return slots[i].table
    }

    /// Changes a cached table in place (marking it dirty) and returns `body`'s result; nil when
    /// the table is not cached.
    mutating func modify<R>(_ offset: UInt64, _ body: (inout Table) throws -> R) rethrows -> R? {
        guard let i = index[offset], var table = slots[i].table.take() else { return nil }
        defer {
            slots[i].table = table
            setDirty(i, true)
            touch(i)
        }
        return try body(&table)
    }

    /// Inserts or replaces; evicts the least recently used clean slot when over capacity.
    mutating func put(_ offset: UInt64, _ table: Table, dirty: Bool) {
        if let i = index[offset] {
            slots[i].table = table
            setDirty(i, dirty || slots[i].dirty)
            touch(i)
        } else {
            let slot = Slot(offset: offset, table: table, dirty: false, newer: -1, older: -1)
            let i: Int
            if let free = freeSlots.popLast() {
                i = free
                slots[i] = slot
            } else {
                i = slots.count
                slots.append(slot)
            }
            index[offset] = i
            setDirty(i, dirty)
            link(i)
        }
        if index.count > capacity {
            var victim = oldest
            while victim >= 0 && (slots[victim].dirty || slots[victim].offset == offset) {
                victim = slots[victim].older
            }
            if victim >= 0 { remove(slots[victim].offset) }
        }
    }

    /// Replaces the table, marking it dirty.
    mutating func update(_ offset: UInt64, _ table: Table) { put(offset, table, dirty: true) }

    mutating func markClean(_ offset: UInt64) {
        if let i = index[offset] { setDirty(i, false) }
    }

    mutating func remove(_ offset: UInt64) {
        guard let i = index.removeValue(forKey: offset) else { return }
        setDirty(i, false)
        unlink(i)
        slots[i].table = nil
        freeSlots.append(i)
    }

    mutating func removeAll() {
        slots.removeAll()
        index.removeAll()
        freeSlots.removeAll()
        newest = -1
        oldest = -1
        dirtyCount = 0
    }

    func peek(_ offset: UInt64) -> Table? { index[offset].flatMap { slots[$0].table } }

    /// Drops least recently used clean entries until the cache is back within its capacity
    /// (after a write-back made dirty ones droppable).
    mutating func trimToCapacity() {
        var i = oldest
        while index.count > capacity && i >= 0 {
            let next = slots[i].newer
            if !slots[i].dirty { remove(slots[i].offset) }
            i = next
        }
    }

    /// Drops clean entries not used for `idleNanoseconds` (dirty ones wait for their write-back,
    /// as in QEMU's `qcow2_cache_clean_unused`). Returns how many were dropped.
    @discardableResult
    mutating func dropIdle(idleNanoseconds: UInt64) -> Int {
        let now = clock()
        guard now >= idleNanoseconds else { return 0 }
        let cutoff = now - idleNanoseconds
        var dropped = 0
        var i = oldest
        // The recency list is ordered by last use, so the walk stops at the first recent entry.
        while i >= 0 && slots[i].lastUsed <= cutoff {
            let next = slots[i].newer
            if !slots[i].dirty {
                remove(slots[i].offset)
                dropped += 1
            }
            i = next
        }
        return dropped
    }

    private mutating func setDirty(_ i: Int, _ dirty: Bool) {
        if slots[i].dirty != dirty { dirtyCount += dirty ? 1 : -1 }
        slots[i].dirty = dirty
    }

    private mutating func touch(_ i: Int) {
        guard newest != i else {
            slots[i].lastUsed = clock()
            return
        }
        unlink(i)
        link(i)
    }

    /// Puts slot `i` at the newest end.
    private mutating func link(_ i: Int) {
        slots[i].lastUsed = clock()
        slots[i].newer = -1
        slots[i].older = newest
        if newest >= 0 { slots[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }

    private mutating func unlink(_ i: Int) {
        let (newer, older) = (slots[i].newer, slots[i].older)
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[i].newer = -1
        slots[i].older = -1
    }
}

/// A monotonic clock in nanoseconds (immune to wall-clock changes): the default cache clock.
///
/// The coarse clock (a few milliseconds' resolution, ample for `cache-clean-interval` seconds)
/// reads a kernel-updated value; the precise one reads the hardware clock, which in a VM took 9%
/// of a small `check` (every cache hit stamps its table).
@Sendable public func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    guard unsafe clock_gettime(CLOCK_MONOTONIC_COARSE, &t) == 0 else { return DispatchTime.now().uptimeNanoseconds }
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
