import BlockIO
import Codecs
import Dispatch
import Foundation
import QCow2
import QCow2Format

/// What `convert` writes: the output file and how to create it.
public struct ConvertTarget: Sendable {
    public enum Format: String, Sendable { case raw, qcow2 }
    public var path: String
    public var format: Format
    /// qcow2 creation options (size is taken from the sources).
    public var qcow2 = QCow2CreateOptions(size: 0)
    public var compress = false
    /// `-n`: the output exists already; write zeros explicitly instead of assuming them.
    public var skipCreate = false
    /// `--target-is-zero` (with `-n`): the existing output reads as zeros, so zero runs are
    /// skipped as in a new output (the caller's promise, as in qemu-img).
    public var targetIsZero = false
    /// Whether the output may hold other data where the source reads zeros.
    var outputMayHoldData: Bool { skipCreate && !targetIsZero }
    /// `-S`: zero runs at least this long stay unallocated (0 disables zero detection).
    public var sparseSize = 4096
    /// Worker threads for compression (output is byte-identical whatever the count).
    public var threads = max(1, min(8, Foundation.ProcessInfo.processInfo.activeProcessorCount))
    /// Whether the output is made durable (fdatasync) as it is written. qemu-img convert's default
    /// cache mode is `unsafe` (`-t unsafe`: never flushed); any other `-t` mode flushes.
    public var flushes = false
    /// With `-B`: only the top layer's allocated data is copied; the rest comes from this backing.
    public var copyTopLayerOnly = false
    /// `-r`: bytes per second written at most, on average (nil: no limit).
    public var rateLimit: Int64?
    /// `--salvage`: a source range that cannot be read is read again sector by sector, and each
    /// sector that still fails is copied as zeros, reported through `warn` (qemu-img's words).
    public var salvage = false
    public var warn: @Sendable (String) -> Void = { _ in }
    /// Runs on the qcow2 output after the copy, before it is closed (`--bitmaps` stores the
    /// bitmaps there, in the same session as qemu-img, so its clusters land where qemu-img's do).
    public var beforeClose: (@Sendable (QCow2Image) throws -> Void)?

    public init(path: String, format: Format) {
        self.path = path
        self.format = format
    }
}

/// The source of a conversion: one disk (or a snapshot view of one).
public struct ConvertSource: @unchecked Sendable {
    // `@unchecked`: VirtualDisk implementations are thread-safe (their own locks).
    public var disk: any VirtualDisk
    public init(disk: any VirtualDisk) { self.disk = disk }
}

/// `qemu-img convert`: copies guest content into a new raw or qcow2 image, skipping zeros,
/// allocating whole-cluster runs in one request, compressing clusters on all cores.
public enum Converter {
    /// Bytes processed per step: a whole number of clusters, large enough for sequential I/O.
    static let chunk = 4 << 20

    /// On cancellation (``OperationCancelled``, Ctrl-C) the output is flushed as far as it was
    /// written; an output this call created (no `-n`) is then removed, as it is no usable copy.
    public static func convert(
        _ source: ConvertSource, to target: ConvertTarget, progress: (Double) -> Void = { _ in }
    ) throws {
        var created = false
        do {
            try convertOnce(source, to: target, progress: progress, created: &created)
        } catch {
            // Whatever error ended the copy, a signal is what the user asked for.
            if Cancellation.isRequested && created { try? FileReplacement.remove(target.path) }
            throw error
        }
    }

    /// - Parameter created: set once this call has created (or truncated) the output file.
    static func convertOnce(
        _ source: ConvertSource, to target: ConvertTarget, progress: (Double) -> Void, created: inout Bool
    ) throws {
        let disk = source.disk
        let size = disk.virtualSize
        switch target.format {
        case .raw:
            let device = try openTarget(target)
            created = !target.skipCreate
            do {
                if target.outputMayHoldData || target.sparseSize == 0 {
                    // `-n`: the target may hold anything; `-S 0`: qemu-img writes every byte.
                    try copyRaw(disk, size: size, to: device, target: target, progress: progress)
                } else {
                    if !target.skipCreate {
                        try device.setLength(size)
                        // qemu-img allocates the first block of every raw file it creates (for
                        // alignment probing); the same block is allocated here, data may overwrite it.
                        let first = Int(min(UInt64(rawGranule), size))
                        if first > 0 { try device.write([UInt8](repeating: 0, count: first), at: 0) }
                    }
                    let unit = rawGranule
                    let data = {
                        (offset: UInt64, length: Int, buffer: ChunkBuffer, zero: [Bool], _: CompressedChunk?) in
                        try writeRaw(buffer.data, length: length, zero: zero, unit: unit, at: offset, to: device)
                    }
                    // The new file reads as zeros already.
                    let zeroes = { (_: UInt64, _: UInt64) in }
                    try pipeline(
                        disk, unit: unit, target: target, workers: nil, progress: progress, data: data, zeroes: zeroes)
                }
            } catch {
                if Cancellation.isRequested { try? device.flush() }
                throw error
            }
            try device.flush()
        case .qcow2:
            var options = target.qcow2
            options.size = size
            let image: QCow2Image
            if target.skipCreate {
                guard
                    let opened = try ImageOpener.open(
                        target.path, options: OpenOptions(format: "qcow2", writable: true))
                        as? QCow2Image
                else { throw ImageError(.usage, "'\(target.path)' is not a qcow2 image") }
                image = opened
            } else {
                image = try ImageCreator.createQCow2(
                    path: target.path, options: options, openAfter: true, flushes: target.flushes)
                created = true
            }
            image.reservesFileGrowth = true
            do {
                try copy(disk, into: image, target: target, progress: progress)
                try target.beforeClose?(image)
            } catch {
                // Stopped between whole steps: the metadata of what was written goes to disk in
                // the engine's crash-safe order, so the output checks clean.
                if Cancellation.isRequested { try? image.close() }
                throw error
            }
            try image.close()
        }
        progress(100)
    }

    /// Bytes per step of a plain copy (no compression). With the reader thread's `pread`s running
    /// beside the writer's `pwrite`s, a plain copy takes 0.7× the wall time of one thread doing
    /// both (1 GB raw→qcow2: 0.14 s against 0.20 s; the kernel's page-cache copies are most of the
    /// CPU); 2 MiB rather than `chunk` keeps small conversions from paying for larger buffers.
    static let copyChunk = 2 << 20

    /// Zero detection granule of a raw output: the file system block, so the same blocks stay
    /// holes as with qemu-img; `-S` then only decides which zero runs are long enough to skip.
    static let rawGranule = 4096

    /// qemu-img's `-S` rule inside one request: zero runs between data shorter than `minimum`
    /// bytes are written with the data; leading and trailing zero runs are skipped whatever
    /// their length.
    static func keepShortZeroRuns(_ zero: inout [Bool], unit: Int, minimum: Int) {
        guard let first = zero.firstIndex(of: false), let last = zero.lastIndex(of: false) else { return }
        var i = first
        while i < last {
            guard zero[i] else {
                i += 1
                continue
            }
            var j = i
            while zero[j] { j += 1 }  // stops at `last` at the latest
            if (j - i) * unit < minimum {
                for k in i..<j { zero[k] = false }
            }
            i = j
        }
    }

    /// Writes one step to a raw output: each run of non-zero granules reserved (`fallocate`, which
    /// on ext4 spares the delayed allocation of every page) and written in one request at its offset.
    static func writeRaw(
        _ buffer: AlignedBytes, length: Int, zero: [Bool], unit: Int, at offset: UInt64, to device: BlockFile
    ) throws {
        var i = 0
        while i < zero.count {
            if zero[i] {
                i += 1
                continue
            }
            var j = i + 1
            while j < zero.count && !zero[j] { j += 1 }
            let range = (i * unit)..<min(length, j * unit)
            let at = offset + UInt64(range.lowerBound)
            try device.preallocate(offset: at, count: UInt64(range.count))
            try device.write(buffer.bytes, range: buffer.indices(range), at: at)
            i = j
        }
    }

    /// Opens the raw output, emptied unless `-n`. The emptying descriptor is closed before any
    /// data is written: ext4 (auto_da_alloc) writes back, synchronously on close, a file that was
    /// truncated through the closing descriptor.
    static func openTarget(_ target: ConvertTarget) throws -> BlockFile {
        do {
            if !target.skipCreate {
                _ = try BlockFile(path: target.path, writable: true, create: true, truncate: true)
            }
            return try BlockFile(path: target.path, writable: true, ignoresFlush: !target.flushes)
        } catch {
            throw ImageError(.open, "Could not create '\(target.path)': \(ImageError.reason(error))")
        }
    }

    /// `-n` to raw: every byte is written (the target may hold anything).
    static func copyRaw(
        _ disk: any VirtualDisk, size: UInt64, to device: BlockFile, target: ConvertTarget, progress: (Double) -> Void
    ) throws {
        var buffer = AlignedBytes(count: chunk)
        var offset: UInt64 = 0
        let throttle = WriteThrottle(bytesPerSecond: target.rateLimit)
        while offset < size {
            try Cancellation.check()
            let n = Int(min(UInt64(chunk), size - offset))
            try read(disk, into: &buffer, count: n, at: offset, target: target)
            try device.write(buffer.bytes, range: buffer.indices(0..<n), at: offset)
            try throttle?.account(n)
            offset += UInt64(n)
            progress(Double(offset) * 100 / Double(size))
        }
    }

    /// Reads `count` source bytes at `offset` into the window's start; with `--salvage`, a failed
    /// read is retried sector by sector and the sectors that still fail read as zeros
    /// (qemu-img's `convert_co_read`).
    static func read(
        _ disk: any VirtualDisk, into buffer: inout AlignedBytes, count: Int, at offset: UInt64,
        target: ConvertTarget
    ) throws {
        do {
            try disk.read(into: &buffer.bytes, range: buffer.indices(0..<count), at: offset)
        } catch let error where target.salvage && !(error is OperationCancelled) {
            var at = 0
            while at < count {
                let n = min(SparseRule.sector, count - at)
                do {
                    try disk.read(into: &buffer.bytes, range: buffer.indices(at..<(at + n)), at: offset + UInt64(at))
                } catch let error where !(error is OperationCancelled) {
                    target.warn("error while reading offset \(offset + UInt64(at)): \(ImageError.reason(error))")
                    for i in buffer.indices(at..<(at + n)) { buffer.bytes[i] = 0 }
                }
                at += n
            }
        }
    }

    /// Copies into an open qcow2 image. A reader thread plans the steps (chain status), reads them
    /// and finds the zero clusters up to `readAhead` chunks ahead (handing clusters to the
    /// compression workers when compressing); this thread writes them in guest order. Memory is
    /// bounded by the chunk buffers, whatever the image size.
    static func copy(
        _ disk: any VirtualDisk, into image: QCow2Image, target: ConvertTarget,
        progress: (Double) -> Void
    ) throws {
        let write = { (offset: UInt64, length: Int, buffer: ChunkBuffer, zero: [Bool], streams: CompressedChunk?) in
            try writeData(
                image, buffer.data, offset: offset, length: length, zero: zero, streams: streams, target: target)
        }
        let zeroes = { (offset: UInt64, length: UInt64) in try image.writeZeroes(at: offset, count: length) }
        let cs = image.geometry.clusterSize
        guard target.compress else {
            return try pipeline(
                disk, unit: cs, target: target, workers: nil, progress: progress, data: write, zeroes: zeroes)
        }
        // Compression: the reader thread feeds the workers ahead of this (writer) thread.
        let workers = try CompressorWorkers(image: image, count: target.threads)
        defer { workers.shutdown() }
        try pipeline(disk, unit: cs, target: target, workers: workers, progress: progress, data: write, zeroes: zeroes)
    }

    /// Runs the reader thread over `disk` in steps of whole `unit`s and hands each step, in guest
    /// order, to `data` or `zeroes` on this thread.
    static func pipeline(
        _ disk: any VirtualDisk, unit cs: Int, target: ConvertTarget, workers: CompressorWorkers?,
        progress: (Double) -> Void,
        data: (UInt64, Int, ChunkBuffer, [Bool], CompressedChunk?) throws -> Void,
        zeroes: (UInt64, UInt64) throws -> Void
    ) throws {
        let size = disk.virtualSize
        let step = max(cs, (workers == nil ? copyChunk : chunk) / cs * cs)
        let sparseRule = followsSparseRule(target, unit: cs)
        // A sparse-rule request widened to whole units at both ends.
        let capacity = sparseRule ? sparseRuleRequestSize(unit: cs) + 2 * cs : step
        let buffers = BlockingQueue<ChunkBuffer>()
        for _ in 0..<(readAhead + 1) { buffers.put(ChunkBuffer(count: capacity)) }
        let steps = BlockingQueue<ConvertStep>(capacity: 64)
        let stop = StopFlag()
        let source = ConvertSource(disk: disk)
        Thread.detachNewThread {
            do {
                if sparseRule {
                    try planBySparseRule(
                        source.disk, unit: cs, target: target, buffers: buffers, stop: stop
                    ) { steps.put($0) }
                } else {
                    try plan(
                        source.disk, clusterSize: cs, step: step, target: target, buffers: buffers,
                        workers: workers, stop: stop
                    ) { steps.put($0) }
                }
                steps.put(.end)
            } catch {
                steps.put(.failed(error))
            }
        }
        var failure: (any Error)?
        let throttle = WriteThrottle(bytesPerSecond: target.rateLimit)
        loop: while true {
            let next = steps.take()
            if failure == nil, let signal = Cancellation.requestedSignal {
                // Stop between steps; the reader sees `stop` and ends the queue.
                failure = OperationCancelled(signal: signal)
                stop.set()
            }
            switch next {
            case .end:
                break loop
            case .failed(let error):
                failure = failure ?? error
                break loop
            case .zeroes(let offset, let length):
                guard failure == nil else { continue }
                do {
                    try zeroes(offset, length)
                    progress(Double(offset + length) * 100 / Double(max(size, 1)))
                } catch {
                    failure = error
                    stop.set()
                }
            case .data(let offset, let length, let buffer, let zero, let streams):
                if failure == nil {
                    do {
                        try data(offset, length, buffer, zero, streams)
                        // What reached the output: the units that were not skipped as zeros.
                        try throttle?.account(min(length, zero.filter { !$0 }.count * cs))
                        progress(Double(offset + UInt64(length)) * 100 / Double(max(size, 1)))
                    } catch {
                        failure = error
                        stop.set()
                    }
                }
                buffers.put(buffer)
            }
        }
        if let failure { throw failure }
    }

    /// Chunks read ahead of the writer (each `chunk` bytes).
    static let readAhead = 2

    /// Walks the source, reads data chunks into free buffers and hands each step to `emit` (the
    /// reader thread queues them for the writer).
    static func plan(
        _ disk: any VirtualDisk, clusterSize cs: Int, step: Int, target: ConvertTarget,
        buffers: BlockingQueue<ChunkBuffer>,
        workers: CompressorWorkers?, stop: StopFlag, emit: (ConvertStep) throws -> Void
    ) throws {
        let size = disk.virtualSize
        var offset: UInt64 = 0

        func read(_ length: Int) throws {
            let buffer = buffers.take()
            try Converter.read(disk, into: &buffer.data, count: length, at: offset, target: target)
            let clusters = (length + cs - 1) / cs
            var zero = [Bool](repeating: false, count: clusters)
            if target.sparseSize > 0 && !target.outputMayHoldData {
                for i in 0..<clusters {
                    zero[i] = isZero(buffer.data.bytes, buffer.data.indices((i * cs)..<min(length, (i + 1) * cs)))
                }
                // Compressed output skips every zero cluster, as qemu-img does. (Reached with
                // `-B` only: other outputs with `-S` above a unit follow `planBySparseRule`.)
                if !target.compress && target.sparseSize > cs {
                    keepShortZeroRuns(&zero, unit: cs, minimum: target.sparseSize)
                }
            }
            let streams = workers?.submit(buffer.data, length: length, zero: zero)
            try emit(.data(offset: offset, length: length, buffer: buffer, zero: zero, streams: streams))
        }

        while offset < size && !stop.isSet {
            try Cancellation.check()
            let want = UInt64(min(UInt64(step), size - offset))
            let status =
                target.copyTopLayerOnly
                ? try topLayerStatus(disk, at: offset, maxLength: want)
                : try disk.chainStatus(at: offset, maxLength: want)
            var length = min(status.length, want)
            // Keep steps cluster aligned so whole clusters go through the fast paths.
            if length < want && (offset + length) % UInt64(cs) != 0 {
                length = min(want, (offset + length + UInt64(cs) - 1) / UInt64(cs) * UInt64(cs) - offset)
                try read(Int(length))
            } else if status.zero && !status.data && target.sparseSize > 0 {
                if target.outputMayHoldData || (target.copyTopLayerOnly && status.present) {
                    try emit(.zeroes(offset: offset, length: length))
                }
            } else if target.copyTopLayerOnly && !status.present {
                // Left to the output's backing file.
            } else {
                try read(Int(length))
            }
            offset += length
        }
    }
    /// The top layer's own status (for `-B`), shaped like a chain extent.
    static func topLayerStatus(_ disk: any VirtualDisk, at offset: UInt64, maxLength: UInt64) throws
        -> ChainExtent
    {
        let s = try disk.blockStatus(at: offset, maxLength: maxLength)
        switch s.kind {
        case .data:
            return ChainExtent(
                start: offset, length: s.length, depth: 0, present: true, zero: false, data: true)
        case .zero:
            return ChainExtent(
                start: offset, length: s.length, depth: 0, present: true, zero: true, data: false)
        case .unallocated:
            return ChainExtent(
                start: offset, length: s.length, depth: 0, present: false, zero: true, data: false)
        }
    }

    /// Writes one chunk's non-zero clusters: runs of plain clusters in one request, or each
    /// cluster compressed (by the workers) when asked.
    static func writeData(
        _ image: QCow2Image, _ buffer: AlignedBytes, offset: UInt64, length: Int, zero: [Bool],
        streams: CompressedChunk?,
        target: ConvertTarget
    ) throws {
        let cs = image.geometry.clusterSize
        let clusters = zero.count
        if let streams {
            let compressed = try streams.wait()
            for i in 0..<clusters where !zero[i] {
                let at = offset + UInt64(i * cs)
                if let stream = compressed[i] {
                    try image.writeCompressedCluster(stream, at: at)
                } else {
                    try image.write(buffer.bytes, range: buffer.indices((i * cs)..<min(length, (i + 1) * cs)), at: at)
                }
            }
            return
        }
        var i = 0
        while i < clusters {
            if zero[i] {
                if target.outputMayHoldData {
                    try image.writeZeroes(at: offset + UInt64(i * cs), count: UInt64(cs))
                }
                i += 1
                continue
            }
            var j = i
            while j < clusters && !zero[j] { j += 1 }
            try image.write(
                buffer.bytes, range: buffer.indices((i * cs)..<min(length, j * cs)), at: offset + UInt64(i * cs))
            i = j
        }
    }
}

/// Tells the reader thread to stop early (the writer failed).
final class StopFlag: Sendable {
    private let flag = Locked(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
