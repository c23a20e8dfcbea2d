/// Wraps a ``BlockDevice`` and fails chosen operations or simulates power loss, for crash tests.
///
/// Mutating calls (`write`, `setLength`, `discard`, `preallocate`) are numbered from 1 in the
/// order they reach the device; flushes and reads have their own counters. Every mutation since
/// the last successful flush is logged with the bytes it replaced, so ``cutPower(_:)`` can roll
/// the wrapped device back to "last flush + the unflushed writes the policy keeps". After a
/// power cut every call fails with `EIO`; inspect or reopen ``base`` to check what survived:
///
/// ```swift
/// let disk = FaultInjectingDevice(wrapping: MemoryDevice())
/// disk.inject(.powerLoss(beforeMutation: n, policy: .dropAll))
/// _ = try? runWorkload(on: disk)          // stops with EIO at mutation n
/// // everything flushed before mutation n must read back intact from disk.base
/// ```
///
/// Calls are serialised by a mutex so the log order is the order applied to the base device.
public final class FaultInjectingDevice: BlockDevice {
    /// Which unflushed mutations survive a power cut.
    public enum PowerLossPolicy: Sendable, Equatable {
        /// Only flushed data survives.
        case dropAll
        /// Every completed mutation survives (the cache happened to be written back).
        case keepAll
        /// The first `n` unflushed mutations survive (in-order write-back).
        case keepFirst(Int)
        /// A random subset survives (reordering disk cache); reproducible from the seed.
        case keepRandom(seed: UInt64)
    }

    /// A fault to inject.
    public enum Fault: Sendable, Equatable {
        /// The `number`th mutation throws `errno` without touching the device.
        case failMutation(number: Int, errno: Int32)
        /// Every mutation from `number` on throws `errno` (a full disk stays full).
        case failMutations(from: Int, errno: Int32)
        /// The `number`th mutation, if a `write`, stores only its first `keeping` bytes, then throws.
        case shortWrite(number: Int, keeping: Int, errno: Int32)
        /// The `number`th flush throws `errno`; the writes stay unflushed.
        case failFlush(number: Int, errno: Int32)
        /// The `number`th read throws `errno`.
        case failRead(number: Int, errno: Int32)
        /// Power is cut just before the `number`th mutation, which then fails with `EIO`.
        case powerLoss(beforeMutation: Int, policy: PowerLossPolicy)
    }

    /// What a power cut did.
    public struct PowerCut: Sendable, Equatable {
        /// Mutations that were not yet flushed.
        public var unflushed: Int
        /// Indexes (0-based, into the unflushed mutations) that survived.
        public var kept: [Int]
    }

    enum Mutation {
        case write(UInt64, [UInt8])
        case setLength(UInt64)
        case discard(UInt64, UInt64)
        case preallocate(UInt64, UInt64)
    }

    /// A mutation and what it overwrote: the old length and the old bytes at `preOffset`.
    struct LoggedMutation {
        var mutation: Mutation
        var preLength: UInt64
        var preOffset: UInt64
        var preImage: [UInt8]
    }

    struct State {
        var faults: [Fault] = []
        var mutations = 0
        var flushes = 0
        var reads = 0
        var log: [LoggedMutation] = []
        var lastCut: PowerCut?
    }

    /// The wrapped device; after a power cut it holds the surviving state.
    public let base: any BlockDevice
    private let state = Locked(State())

    /// Wraps `base`; no fault is armed until ``inject(_:)``.
    public init(wrapping base: any BlockDevice) {
        self.base = base
    }

    /// The wrapped device's name.
    public var name: String { base.name }
    /// Whether the wrapped device is writable.
    public var isWritable: Bool { base.isWritable }

    /// Arms a fault (several may be armed at once).
    public func inject(_ fault: Fault) { state.withLock { $0.faults.append(fault) } }

    /// Mutations attempted so far (including failed ones).
    public var mutationCount: Int { state.withLock { $0.mutations } }
    /// Flushes attempted so far.
    public var flushCount: Int { state.withLock { $0.flushes } }
    /// Mutations applied since the last successful flush.
    public var unflushedCount: Int { state.withLock { $0.log.count } }
    /// Whether power has been cut; every call now fails with `EIO`.
    public var isPoweredOff: Bool { state.withLock { $0.lastCut != nil } }
    /// The result of the power cut, if one happened.
    public var lastPowerCut: PowerCut? { state.withLock { $0.lastCut } }

    private func error(_ operation: String, _ errno: Int32, _ detail: String) -> BlockIOError {
        BlockIOError(path: name, operation: operation, errno: errno, detail: detail)
    }

    /// Cuts power now: rolls the base device back to the last flush plus the unflushed
    /// mutations `policy` keeps, flushes the base, and fails all later calls.
    ///
    /// - Throws: ``BlockIOError`` from the base device while rolling back.
    @discardableResult
    public func cutPower(_ policy: PowerLossPolicy = .dropAll) throws(BlockIOError) -> PowerCut {
        try state.withLock { (s: inout State) throws(BlockIOError) in try cut(&s, policy) }
    }

    private func cut(_ s: inout State, _ policy: PowerLossPolicy) throws(BlockIOError) -> PowerCut {
        if let done = s.lastCut { return done }
        let count = s.log.count
        let kept: [Int]
        switch policy {
        case .dropAll: kept = []
        case .keepAll: kept = Array(0..<count)
        case .keepFirst(let n): kept = Array(0..<min(max(n, 0), count))
        case .keepRandom(let seed):
            var rng = SplitMix64(seed: seed)
            kept = (0..<count).filter { _ in rng.next() & 1 == 1 }
        }
        // Undo newest first to reach the flushed state, then replay the survivors in order.
        for entry in s.log.reversed() {
            if try base.length() != entry.preLength { try base.setLength(entry.preLength) }
            if !entry.preImage.isEmpty { try base.write(entry.preImage, at: entry.preOffset) }
        }
        for index in kept { try apply(s.log[index].mutation) }
        try base.flush()
        let result = PowerCut(unflushed: count, kept: kept)
        s.log = []
        s.lastCut = result
        return result
    }

    private func apply(_ mutation: Mutation) throws(BlockIOError) {
        switch mutation {
        case .write(let offset, let bytes): try base.write(bytes, at: offset)
        case .setLength(let length): try base.setLength(length)
        case .discard(let offset, let count): try base.discard(offset: offset, count: count)
        case .preallocate(let offset, let count): try base.preallocate(offset: offset, count: count)
        }
    }

    /// Runs one mutation through the fault plan, logging what it overwrites.
    private func mutate(_ operation: String, _ mutation: Mutation, affecting range: (UInt64, UInt64))
        throws(BlockIOError)
    {
        try state.withLock { (s: inout State) throws(BlockIOError) in
            guard s.lastCut == nil else { throw error(operation, 5, "device powered off") }
            s.mutations += 1
            let n = s.mutations
            var keepBytes: Int?
            var failure: Int32?
            for fault in s.faults {
                switch fault {
                case .powerLoss(let at, let policy) where at == n:
                    _ = try cut(&s, policy)
                    throw error(operation, 5, "power lost before mutation \(n)")
                case .failMutation(let at, let errno) where at == n: failure = errno
                case .failMutations(let from, let errno) where n >= from: failure = errno
                case .shortWrite(let at, let keeping, let errno) where at == n:
                    keepBytes = keeping
                    failure = errno
                default: continue
                }
            }
            var applied = mutation
            if let keep = keepBytes, case .write(let offset, let bytes) = mutation {
                applied = .write(offset, Array(bytes.prefix(max(0, keep))))
            } else if failure != nil {
                throw error(operation, failure ?? 5, "injected failure of mutation \(n)")
            }
            let preLength = try base.length()
            let (offset, count) = range
            let overlap = offset < preLength ? min(count, preLength - offset) : 0
            let preImage = overlap > 0 ? try base.read(count: Int(overlap), at: offset) : []
            try apply(applied)
            s.log.append(LoggedMutation(mutation: applied, preLength: preLength, preOffset: offset, preImage: preImage))
            if let errno = failure { throw error(operation, errno, "injected short write at mutation \(n)") }
        }
    }

    /// Current length in bytes.
    public func length() throws(BlockIOError) -> UInt64 {
        try state.withLock { (s: inout State) throws(BlockIOError) in
            guard s.lastCut == nil else { throw error("stat", 5, "device powered off") }
            return try base.length()
        }
    }

    /// Reads `range.count` bytes at `offset` into `buffer[range]`; zeros past the end.
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        let injected: Int32? = try state.withLock { (s: inout State) throws(BlockIOError) in
            guard s.lastCut == nil else { throw error("read", 5, "device powered off") }
            s.reads += 1
            let n = s.reads
            for case .failRead(let at, let errno) in s.faults where at == n { return errno }
            return nil
        }
        if let errno = injected { throw error("read", errno, "injected read failure") }
        try base.read(into: &buffer, range: range, at: offset)
    }

    /// Writes `buffer[range]` at `offset`, growing the device if needed.
    public func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws(BlockIOError) {
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw error("write", 22, "range \(range) outside a buffer of \(buffer.count) bytes")
        }
        try mutate("write", .write(offset, Array(buffer[range])), affecting: (offset, UInt64(range.count)))
    }

    /// Makes completed writes durable.
    public func flush() throws(BlockIOError) {
        try state.withLock { (s: inout State) throws(BlockIOError) in
            guard s.lastCut == nil else { throw error("flush", 5, "device powered off") }
            s.flushes += 1
            let n = s.flushes
            for case .failFlush(let at, let errno) in s.faults where at == n {
                throw error("flush", errno, "injected failure of flush \(n)")
            }
            try base.flush()
            s.log = []
        }
    }

    /// Truncates or extends (sparse) to `length` bytes.
    public func setLength(_ length: UInt64) throws(BlockIOError) {
        // Shrinking overwrites the tail: log it so a power cut can restore it.
        let old = try self.length()
        try mutate("truncate", .setLength(length), affecting: (min(old, length), old > length ? old - length : 0))
    }

    /// Reserves space for the range.
    public func preallocate(offset: UInt64, count: UInt64) throws(BlockIOError) {
        try mutate("fallocate", .preallocate(offset, count), affecting: (offset, 0))
    }

    /// Makes the range read as zero.
    public func discard(offset: UInt64, count: UInt64) throws(BlockIOError) {
        try mutate("discard", .discard(offset, count), affecting: (offset, count))
    }

    /// The next offset ≥ `offset` holding data, or nil.
    public func nextData(from offset: UInt64) throws(BlockIOError) -> UInt64? {
        guard !isPoweredOff else { throw error("seek", 5, "device powered off") }
        return try base.nextData(from: offset)
    }

    /// The next offset ≥ `offset` starting a hole.
    public func nextHole(from offset: UInt64) throws(BlockIOError) -> UInt64 {
        guard !isPoweredOff else { throw error("seek", 5, "device powered off") }
        return try base.nextHole(from: offset)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough to pick survivors.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15  // wrapping by design
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
