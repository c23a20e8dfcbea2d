import QCow2Format

/// QEMU's in-memory refcount table (IMRT): one entry per host cluster, packed at the image's refcount
/// width exactly like refcount blocks, and sized in whole clusters, so cluster-sized slices can be
/// written to disk as refcount blocks when the structure is rebuilt.
struct RefcountArray {
    private(set) var bytes: [UInt8] = []
    /// Number of clusters described (QEMU's `nb_clusters`).
    private(set) var count = 0
    let order: Int
    let clusterSize: Int
    let maxValue: UInt64

    /// Memory bound for the array (stricter than QEMU, which only refuses more than INT_MAX clusters).
    static let maxBytes = 1 << 30

    init(geometry: QCow2Geometry) {
        order = geometry.refcountOrder
        clusterSize = geometry.clusterSize
        maxValue = geometry.maxRefcount
    }

    /// Largest entry count the memory bound allows.
    var maxEntries: Int { (Self.maxBytes * 8) >> order }

    /// QEMU's `realloc_refcount_array`: grows to `newCount` entries, zero-filled, byte size rounded
    /// up to whole clusters.
    mutating func grow(to newCount: Int) throws(CheckFailure) {
        guard newCount > count else { return }
        guard newCount <= maxEntries else { throw .noMemory }
        let raw = ((newCount << order) + 7) / 8
        let size = (raw + clusterSize - 1) / clusterSize * clusterSize
        // One zero-filled array, not an element-wise append: the latter took seconds in debug
        // builds for a million clusters, before the walk could notice a Ctrl-C.
        if size > bytes.count { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
        count = newCount
    }

    subscript(index: Int) -> UInt64 {
        get { RefcountBlockCodec.get(bytes, index: index, order: order) }
        set { RefcountBlockCodec.set(&bytes, index: index, order: order, value: newValue) }
    }

    mutating func zeroAll() {
        bytes = [UInt8](repeating: 0, count: bytes.count)
    }

    /// The cluster-sized slice that becomes refcount block `index`.
    func block(_ index: Int) -> [UInt8] {
        let start = index * clusterSize
        guard start < bytes.count else { return [UInt8](repeating: 0, count: clusterSize) }
        return Array(bytes[start..<(start + clusterSize)])
    }
}

/// State of one refcount check pass: expected refcounts, counters, lines, and whether the refcount
/// structure must be rebuilt.
struct CheckRun {
    var res = CheckCounts()
    var messages: [String] = []
    var imrt: RefcountArray
    var fix: QCow2RepairMode
    var rebuild = false
    /// Host file length, refreshed when the check changes it.
    var fileLength: UInt64 = 0
    /// Set once the one-time "Marking image as corrupt" line was printed.
    var signalledCorruption = false
    /// The refcount block the last on-disk lookup used: the check reads refcounts in cluster
    /// order, so this spares a cache lookup per cluster. Cleared when the check writes refcounts.
    var lastRefcountBlock: (offset: UInt64, block: [UInt8])?
    /// How far `-r all` may extend the file to take in a refcount block past its end (vmimg's bound;
    /// QEMU has none).
    static let maxRepairGrowth: UInt64 = 1 << 30

    init(fix: QCow2RepairMode, geometry: QCow2Geometry) {
        self.fix = fix
        imrt = RefcountArray(geometry: geometry)
    }

    mutating func log(_ line: String) { messages.append(line) }

    /// "Repairing" when errors are being fixed, else "ERROR".
    var errorVerb: String { fix.contains(.errors) ? "Repairing" : "ERROR" }
}

/// `%#x`: 0x-prefixed lower-case hex, plain "0" for zero (printf's alternate form).
func alternateHex(_ value: UInt64) -> String { value == 0 ? "0" : "0x" + hex(value) }
