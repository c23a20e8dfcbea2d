import BlockIO
import Codecs
import Dispatch
import Foundation
import QCow2

/// A first-in first-out queue between threads; `put` blocks while `capacity` items wait.
final class BlockingQueue<Element: Sendable>: Sendable {
    private let items = Locked<[Element]>([])
    private let available = DispatchSemaphore(value: 0)
    private let space: DispatchSemaphore?

    init(capacity: Int? = nil) { space = capacity.map { DispatchSemaphore(value: $0) } }

    func put(_ item: Element) {
        space?.wait()
        items.withLock { $0.append(item) }
        available.signal()
    }

    func take() -> Element {
        available.wait()
        let item = items.withLock { $0.removeFirst() }
        space?.signal()
        return item
    }
}

/// A chunk buffer passed between the reader and the writer. `@unchecked Sendable`: one thread owns
/// it at a time (the reader fills it, the steps queue hands it to the writer, the buffers queue
/// hands it back), so its array stays uniquely referenced and is filled in place, never copied.
final class ChunkBuffer: @unchecked Sendable {
    /// Page aligned: the kernel's copies to and from it are the bulk of a convert's CPU.
    var data: AlignedBytes
    init(count: Int) { data = AlignedBytes(count: count) }
}

/// One step of a conversion, planned and read ahead of the writer.
enum ConvertStep: Sendable {
    /// Guest bytes `[offset, offset + length)` read into `buffer`; `zero[i]` marks all-zero clusters.
    /// With compression, `streams` fills in as workers finish.
    case data(
        offset: UInt64, length: Int, buffer: ChunkBuffer, zero: [Bool], streams: CompressedChunk?)
    /// A range the output must read as zeros explicitly.
    case zeroes(offset: UInt64, length: UInt64)
    case end
    case failed(any Error)
}

/// Compressed streams of one chunk's clusters, filled by the workers in any order.
final class CompressedChunk: Sendable {
    private let results: Locked<(streams: [[UInt8]?], remaining: Int, error: String?)>
    private let done = DispatchSemaphore(value: 0)

    init(clusters: Int, pending: Int) {
        results = Locked((Array(repeating: nil, count: clusters), pending, nil))
        if pending == 0 { done.signal() }
    }

    func finish(_ index: Int, _ stream: [UInt8]?, error: String? = nil) {
        let last = results.withLock { r in
            r.streams[index] = stream
            if let error { r.error = error }
            r.remaining -= 1
            return r.remaining == 0
        }
        if last { done.signal() }
    }

    /// Waits for every cluster; nil entries are clusters to store uncompressed (or zero).
    func wait() throws -> [[UInt8]?] {
        done.wait()
        done.signal()
        let (streams, error) = results.withLock { ($0.streams, $0.error) }
        if let error { throw ImageError(.io, "compression failed: \(error)") }
        return streams
    }
}

/// Compression workers: each pulls single clusters from a shared queue, so every core stays busy
/// across chunk boundaries while the writer stores finished chunks in guest order.
final class CompressorWorkers: Sendable {
    struct Job: Sendable {
        var chunk: CompressedChunk
        var buffer: [UInt8]
        var index: Int
        var range: Range<Int>
    }
    private let jobs = BlockingQueue<Job?>()
    private let count: Int
    private let clusterSize: Int

    init(image: QCow2Image, count: Int) throws {
        self.count = max(1, count)
        clusterSize = image.geometry.clusterSize
        for _ in 0..<self.count {
            let compressor = SendableCompressor(try image.makeCompressor())
            let jobs = self.jobs
            let cs = clusterSize
            Thread.detachNewThread {
                var scratch = [UInt8](repeating: 0, count: cs)
                while let job = jobs.take() {
                    do {
                        let out: [UInt8]?
                        if job.range.count == cs {
                            out = try compressor.value.compress(job.buffer, range: job.range)
                        } else {
                            // The last cluster of an image may be partial: zero-padded, as QEMU does.
                            for k in 0..<cs { scratch[k] = 0 }
                            scratch.replaceSubrange(0..<job.range.count, with: job.buffer[job.range])
                            out = try compressor.value.compress(scratch, range: 0..<cs)
                        }
                        job.chunk.finish(job.index, out)
                    } catch {
                        job.chunk.finish(job.index, nil, error: "\(error)")
                    }
                }
            }
        }
    }

    /// Queues the non-zero clusters of a chunk; the result fills in asynchronously.
    func submit(_ buffer: AlignedBytes, length: Int, zero: [Bool]) -> CompressedChunk {
        let cs = clusterSize
        let chunk = CompressedChunk(clusters: zero.count, pending: zero.lazy.filter { !$0 }.count)
        for i in 0..<zero.count where !zero[i] {
            jobs.put(
                Job(
                    chunk: chunk, buffer: buffer.bytes, index: i,
                    range: buffer.indices((i * cs)..<min(length, (i + 1) * cs))))
        }
        return chunk
    }

    /// Stops the workers once the queued jobs are done.
    func shutdown() { for _ in 0..<count { jobs.put(nil) } }
}

/// A compressor handed to one worker thread for good. `@unchecked Sendable`: only that worker
/// uses it after the hand-over.
struct SendableCompressor: @unchecked Sendable {
    let value: ClusterCompressor
    init(_ value: ClusterCompressor) { self.value = value }
}
