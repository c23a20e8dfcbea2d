import BlockIO
import Foundation
import QCow2

/// `qemu-img bench` parameters (`-c -d -s -o -S -w --pattern --flush-interval --no-drain`).
public struct BenchParameters: Sendable, Equatable {
    /// `-c`: requests in total.
    public var count: Int
    /// `-d`: requests in flight at once (one worker thread each).
    public var depth: Int
    /// `-s`: bytes a request.
    public var bufferSize: Int
    /// `-o`: guest offset of the first request.
    public var offset: UInt64
    /// `-S`: distance between request starts (qemu-img: the request size when 0).
    public var step: UInt64
    /// `-w`: write `pattern` instead of reading.
    public var write: Bool
    /// `--pattern`: the byte every write request fills its buffer with.
    public var pattern: UInt8
    /// `--flush-interval`: flush every N requests (writes only); 0 never.
    public var flushInterval: Int
    /// Off with `--no-drain`: flush while other requests are still in flight.
    public var drainOnFlush: Bool

    public init(
        count: Int = 75000, depth: Int = 64, bufferSize: Int = 4096, offset: UInt64 = 0,
        step: UInt64 = 0,
        write: Bool = false, pattern: UInt8 = 0, flushInterval: Int = 0, drainOnFlush: Bool = true
    ) {
        self.count = count
        self.depth = depth
        self.bufferSize = bufferSize
        self.offset = offset
        self.step = step
        self.write = write
        self.pattern = pattern
        self.flushInterval = flushInterval
        self.drainOnFlush = drainOnFlush
    }

    /// qemu-img bench's cross-option rules, with its messages.
    /// - Throws: ``ImageError`` of kind `.unsupported` (printed without the help hint, as qemu-img does).
    public func validate() throws {
        guard count >= 1 else {
            throw ImageError(.unsupported, "Invalid request count specified. Must be between 1 and 2147483647.")
        }
        guard depth >= 1 else {
            throw ImageError(.unsupported, "Invalid queue depth specified. Must be between 1 and 2147483647.")
        }
        guard bufferSize >= 1 else {
            throw ImageError(.unsupported, "Invalid buffer size specified. Must be between 1 and 2147483647.")
        }
        if !write && flushInterval != 0 {
            throw ImageError(.unsupported, "--flush-interval is only available in write tests")
        }
        if flushInterval != 0 && flushInterval < depth {
            throw ImageError(.unsupported, "Flush interval can't be smaller than depth")
        }
    }
}

/// `qemu-img bench`: a sequential stream of equal requests, up to `depth` of them in flight from
/// worker threads, against any disk (the qcow2 engine is thread-safe).
public enum Bench {
    /// Worker threads for a queue depth: one per request in flight, but at most one per core.
    /// More threads than cores only queue on the engine's and the scheduler's locks (measured on 2
    /// loaded cores, 20000 4 KiB reads of a cached 8 GiB image: 0.11–0.13 s with 2 threads,
    /// 0.24–0.30 s with 4, 1.9–2.2 s with 8 to 64); qemu-img's coroutines do not pay that, its
    /// thread pool only runs the system calls.
    static func workerCount(depth: Int, count: Int) -> Int {
        max(1, min(depth, count, ProcessInfo.processInfo.activeProcessorCount))
    }

    /// The two operations a write benchmark needs from an image.
    public struct Target: Sendable {
        let disk: any VirtualDisk
        let writeBytes: @Sendable ([UInt8], UInt64) throws -> Void
        let flush: @Sendable () throws -> Void

        /// A qcow2 image (opened writable for write tests) or a raw image.
        public init(_ disk: any VirtualDisk) throws {
            self.disk = disk
            switch disk {
            case let image as QCow2Image:
                writeBytes = { try image.write($0, range: 0..<$0.count, at: $1) }
                flush = { try image.flush() }
            case let raw as RawImage:
                writeBytes = { try raw.device.write($0, at: $1) }
                flush = { try raw.device.flush() }
            default:
                throw ImageError(.unsupported, "bench: format '\(disk.formatName)' is not supported")
            }
        }
    }

    /// Scheduler state shared by the workers (under one mutex).
    struct Schedule {
        var issued = 0
        var inFlight = 0
        var nextOffset: UInt64
        var done: [Bool]
        /// Requests 0..<completedPrefix have all completed.
        var completedPrefix = 0
        /// Drain mode: issuing stops until the flush at this boundary is done.
        var draining = false
        var flushing = false
        /// `--no-drain`: a boundary was passed; the next completion flushes.
        var flushDue = false
        var failure: (any Error)?
    }

    /// Runs the benchmark.
    /// - Parameters:
    ///   - target: the image.
    ///   - parameters: as given on the command line, already validated.
    ///   - onFlush: called after each completed flush with N: requests 0..<N had all completed before
    ///     the flush began, so they are durable (`vmimg bench --flush-log`).
    /// - Returns: seconds from the first request to the last completion (qemu-img measures the same).
    /// - Throws: ``ImageError`` "Failed request: …" on the first failed request or flush.
    public static func run(
        _ target: Target, parameters p: BenchParameters, onFlush: (@Sendable (Int) -> Void)? = nil
    ) throws -> Double {
        try p.validate()
        let size = target.disk.virtualSize
        let step = p.step == 0 ? UInt64(p.bufferSize) : p.step
        let buffer = [UInt8](repeating: p.write ? p.pattern : 0, count: p.bufferSize)
        let state = Locked(
            Schedule(nextOffset: p.offset, done: [Bool](repeating: false, count: p.count)))
        let wake = NSCondition()

        /// One request or flush at a time per worker; returns false when the run is over.
        @Sendable func workOnce() -> Bool {
            enum Job {
                case request(index: Int, offset: UInt64)
                case flush(prefix: Int)
                case wait
                case stop
            }
            let job: Job = state.withLock { s in
                if s.failure != nil || Cancellation.isRequested { return .stop }
                if s.draining {
                    // The flush at a drain boundary starts once everything issued has completed.
                    if s.inFlight == 0 && !s.flushing {
                        s.flushing = true
                        return .flush(prefix: s.completedPrefix)
                    }
                    return .wait
                }
                guard s.issued < p.count else { return s.inFlight == 0 && !s.flushing ? .stop : .wait }
                let index = s.issued
                let offset = s.nextOffset
                s.issued += 1
                s.inFlight += 1
                // qemu-img's rule: a flush is due when the requests not yet issued are a multiple of the
                // interval. Its single-threaded loop first checks once `depth` requests are out.
                if p.flushInterval > 0, s.issued >= min(p.depth, p.count), (p.count - s.issued) % p.flushInterval == 0 {
                    if p.drainOnFlush { s.draining = true } else { s.flushDue = true }
                }
                // qemu-img 7.2 wraps at the image size (a request may then run past the end and fail).
                s.nextOffset = size == 0 ? 0 : (s.nextOffset + step) % size
                return .request(index: index, offset: offset)
            }
            switch job {
            case .stop:
                return false
            case .wait:
                wake.lock()
                _ = wake.wait(until: Date().addingTimeInterval(0.01))
                wake.unlock()
                return true
            case .flush(let prefix):
                do {
                    try target.flush()
                    onFlush?(prefix)
                } catch {
                    state.withLock { if $0.failure == nil { $0.failure = error } }
                }
                state.withLock {
                    $0.flushing = false
                    $0.draining = false
                }
                wake.broadcast()
                return true
            case .request(let index, let offset):
                do {
                    let (end, overflow) = offset.addingReportingOverflow(UInt64(p.bufferSize))
                    guard !overflow, end <= size else {
                        throw BlockIOError(
                            path: target.disk.filename, operation: "bench", errno: EIO, detail: "")
                    }
                    if p.write {
                        try target.writeBytes(buffer, offset)
                    } else {
                        var out = buffer
                        try target.disk.read(into: &out, range: 0..<out.count, at: offset)
                    }
                } catch {
                    state.withLock { if $0.failure == nil { $0.failure = error } }
                    wake.broadcast()
                    return false
                }
                let undrainedFlush: Int? = state.withLock { s in
                    s.inFlight -= 1
                    s.done[index] = true
                    while s.completedPrefix < p.count && s.done[s.completedPrefix] { s.completedPrefix += 1 }
                    // Without draining, the next completion after a boundary flushes while others run.
                    guard s.flushDue else { return nil }
                    s.flushDue = false
                    return s.completedPrefix
                }
                if let prefix = undrainedFlush {
                    do {
                        try target.flush()
                        onFlush?(prefix)
                    } catch {
                        state.withLock { if $0.failure == nil { $0.failure = error } }
                    }
                }
                wake.broadcast()
                return true
            }
        }

        let clock = ContinuousClock()
        let start = clock.now
        let group = DispatchGroup()
        for _ in 0..<Self.workerCount(depth: p.depth, count: p.count) {
            group.enter()
            let thread = Thread {
                while workOnce() {}
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        let elapsed = clock.now - start
        if let signal = Cancellation.requestedSignal {
            // Requests already completed were acknowledged: make them durable before stopping.
            if p.write { try? target.flush() }
            throw OperationCancelled(signal: signal)
        }
        if let failure = state.withLock({ $0.failure }) {
            throw ImageError(.io, "Failed request: \(ImageError.reason(failure))")
        }
        let (seconds, atto) = elapsed.components
        return Double(seconds) + Double(atto) / 1e18
    }
}
