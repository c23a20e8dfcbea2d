/// A bounded cache of metadata tables keyed by host offset, with dirty tracking. Least recently
/// used clean entries are dropped first; the owner writes dirty ones back (in its own order)
/// before they can be dropped, so the cache never decides write order.
struct TableCache<Table> {
    private struct Slot {
        var table: Table
        var dirty: Bool
        var lastUse: UInt64
    }
    private var slots: [UInt64: Slot] = [:]
    private var clock: UInt64 = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(4, capacity) }

    var count: Int { slots.count }
    var dirtyOffsets: [UInt64] { slots.filter { $0.value.dirty }.map(\.key).sorted() }
    var hasDirty: Bool { slots.values.contains { $0.dirty } }
    var isFull: Bool { slots.count >= capacity }

    mutating func get(_ offset: UInt64) -> Table? {
        guard var slot = slots[offset] else { return nil }
        clock += 1
        slot.lastUse = clock
        slots[offset] = slot
        return slot.table
    }

    /// Inserts or replaces; evicts the least recently used clean slot when over capacity.
    mutating func put(_ offset: UInt64, _ table: Table, dirty: Bool) {
        clock += 1
        let wasDirty = slots[offset]?.dirty ?? false
        slots[offset] = Slot(table: table, dirty: dirty || wasDirty, lastUse: clock)
        if slots.count > capacity, let victim = slots.filter({ !$0.value.dirty && $0.key != offset })
            .min(by: { $0.value.lastUse < $1.value.lastUse })?.key
        {
            slots[victim] = nil
        }
    }

    /// Replaces the table, marking it dirty.
    mutating func update(_ offset: UInt64, _ table: Table) { put(offset, table, dirty: true) }

    mutating func markClean(_ offset: UInt64) { slots[offset]?.dirty = false }

    mutating func remove(_ offset: UInt64) { slots[offset] = nil }

    mutating func removeAll() { slots.removeAll() }

    func peek(_ offset: UInt64) -> Table? { slots[offset]?.table }
}
