import BlockIO
import Codecs
import Dispatch
import Foundation
import QCow2
import QCow2Format
import Synchronization

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
    /// `-S`: zero runs at least this long stay unallocated (0 disables zero detection).
    public var sparseSize = 4096
    /// Worker threads for compression (output is byte-identical whatever the count).
    public var threads = max(1, min(8, Foundation.ProcessInfo.processInfo.activeProcessorCount))
    /// With `-B`: only the top layer's allocated data is copied; the rest comes from this backing.
    public var copyTopLayerOnly = false

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

    public static func convert(
        _ source: ConvertSource, to target: ConvertTarget, progress: (Double) -> Void = { _ in }
    ) throws {
        let disk = source.disk
        let size = disk.virtualSize
        switch target.format {
        case .raw:
            let device = try openTarget(target)
            if target.skipCreate {
                try copyRaw(disk, size: size, to: device, progress: progress)
            } else {
                try device.setLength(0)
                try disk.exportRaw(to: device, options: rawOptions(target)) { done, total in
                    progress(total == 0 ? 100 : Double(done) * 100 / Double(total))
                }
            }
            try device.flush()
        case .qcow2:
            var options = target.qcow2
            options.size = size
            let image: QCow2Image
            if target.skipCreate {
                guard let opened = try ImageOpener.open(target.path, options: OpenOptions(format: "qcow2", writable: true))
                    as? QCow2Image
                else { throw ImageError(.usage, "'\(target.path)' is not a qcow2 image") }
                image = opened
            } else {
                image = try ImageCreator.createQCow2(path: target.path, options: options, openAfter: true)
            }
            try copy(disk, into: image, target: target, progress: progress)
            try image.close()
        }
        progress(100)
    }

    static func rawOptions(_ target: ConvertTarget) -> RawExportOptions {
        var o = RawExportOptions()
        o.sparseSize = max(512, target.sparseSize)
        return o
    }

    static func openTarget(_ target: ConvertTarget) throws -> BlockFile {
        do {
            return try BlockFile(path: target.path, writable: true, create: !target.skipCreate)
        } catch {
            throw ImageError(.open, "Could not create '\(target.path)': \(ImageError.reason(error))")
        }
    }

    /// `-n` to raw: every byte is written (the target may hold anything).
    static func copyRaw(_ disk: any VirtualDisk, size: UInt64, to device: BlockFile, progress: (Double) -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: chunk)
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(chunk), size - offset))
            try disk.read(into: &buffer, range: 0..<n, at: offset)
            try device.write(buffer, range: 0..<n, at: offset)
            offset += UInt64(n)
            progress(Double(offset) * 100 / Double(size))
        }
    }

    /// Copies into an open qcow2 image.
    static func copy(
        _ disk: any VirtualDisk, into image: QCow2Image, target: ConvertTarget, progress: (Double) -> Void
    ) throws {
        let size = disk.virtualSize
        let cs = image.geometry.clusterSize
        let step = max(cs, chunk / cs * cs)
        var buffer = [UInt8](repeating: 0, count: step)
        let pool = target.compress ? try CompressorPool(image: image, count: target.threads) : nil
        var offset: UInt64 = 0
        while offset < size {
            let want = UInt64(min(UInt64(step), size - offset))
            let status =
                target.copyTopLayerOnly
                ? try topLayerStatus(disk, at: offset, maxLength: want) : try disk.chainStatus(at: offset, maxLength: want)
            var length = min(status.length, want)
            // Keep steps cluster aligned so whole clusters go through the fast paths.
            if length < want && (offset + length) % UInt64(cs) != 0 {
                length = min(want, (offset + length + UInt64(cs) - 1) / UInt64(cs) * UInt64(cs) - offset)
                try copyData(disk, image, &buffer, offset: offset, length: Int(length), target: target, pool: pool)
            } else if status.zero && !status.data {
                if target.skipCreate || (target.copyTopLayerOnly && status.present) {
                    try image.writeZeroes(at: offset, count: length)
                }
            } else if target.copyTopLayerOnly && !status.present {
                // Left to the output's backing file.
            } else {
                try copyData(disk, image, &buffer, offset: offset, length: Int(length), target: target, pool: pool)
            }
            offset += length
            progress(Double(offset) * 100 / Double(max(size, 1)))
        }
    }

    /// The top layer's own status (for `-B`), shaped like a chain extent.
    static func topLayerStatus(_ disk: any VirtualDisk, at offset: UInt64, maxLength: UInt64) throws -> ChainExtent {
        let s = try disk.blockStatus(at: offset, maxLength: maxLength)
        switch s.kind {
        case .data: return ChainExtent(start: offset, length: s.length, depth: 0, present: true, zero: false, data: true)
        case .zero: return ChainExtent(start: offset, length: s.length, depth: 0, present: true, zero: true, data: false)
        case .unallocated:
            return ChainExtent(start: offset, length: s.length, depth: 0, present: false, zero: true, data: false)
        }
    }

    /// Reads `length` bytes and writes the non-zero clusters: runs of plain clusters in one
    /// request, or each cluster compressed (in parallel) when asked.
    static func copyData(
        _ disk: any VirtualDisk, _ image: QCow2Image, _ buffer: inout [UInt8], offset: UInt64, length: Int,
        target: ConvertTarget, pool: CompressorPool?
    ) throws {
        let cs = image.geometry.clusterSize
        try disk.read(into: &buffer, range: 0..<length, at: offset)
        let clusters = (length + cs - 1) / cs
        var zero = [Bool](repeating: false, count: clusters)
        if target.sparseSize > 0 && !target.skipCreate {
            for i in 0..<clusters {
                zero[i] = isZero(buffer, (i * cs)..<min(length, (i + 1) * cs))
            }
        }
        if let pool {
            let streams = try pool.compress(buffer, length: length, skip: zero)
            for i in 0..<clusters where !zero[i] {
                let at = offset + UInt64(i * cs)
                if let stream = streams[i] {
                    try image.writeCompressedCluster(stream, at: at)
                } else {
                    try image.write(buffer, range: (i * cs)..<min(length, (i + 1) * cs), at: at)
                }
            }
            return
        }
        var i = 0
        while i < clusters {
            if zero[i] {
                if target.skipCreate { try image.writeZeroes(at: offset + UInt64(i * cs), count: UInt64(cs)) }
                i += 1
                continue
            }
            var j = i
            while j < clusters && !zero[j] { j += 1 }
            try image.write(buffer, range: (i * cs)..<min(length, j * cs), at: offset + UInt64(i * cs))
            i = j
        }
    }
}

/// Compresses a batch of clusters on several threads, one compressor per worker. Results are
/// placed by cluster index, so the output is the same whatever the thread count.
final class CompressorPool: @unchecked Sendable {
    // `@unchecked`: worker k only ever touches compressors[k]; results are written per index under
    // `results`' mutex.
    private let compressors: [ClusterCompressor]
    private let clusterSize: Int

    init(image: QCow2Image, count: Int) throws {
        compressors = try (0..<max(1, count)).map { _ in try image.makeCompressor() }
        clusterSize = image.geometry.clusterSize
    }

    func compress(_ buffer: [UInt8], length: Int, skip: [Bool]) throws -> [[UInt8]?] {
        let cs = clusterSize
        let clusters = skip.count
        let results = Mutex<[[UInt8]?]>([[UInt8]?](repeating: nil, count: clusters))
        let failure = Mutex<String?>(nil)
        let workers = compressors.count
        let input = buffer
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let compressor = compressors[worker]
            var scratch = [UInt8](repeating: 0, count: cs)
            var i = worker
            while i < clusters {
                defer { i += workers }
                if skip[i] { continue }
                let start = i * cs
                let end = min(length, start + cs)
                // The last cluster of an image may be partial: zero-padded, as QEMU does.
                scratch.replaceSubrange(0..<(end - start), with: input[start..<end])
                if end - start < cs { for k in (end - start)..<cs { scratch[k] = 0 } }
                do {
                    let out = try compressor.compress(scratch, range: 0..<cs)
                    results.withLock { $0[i] = out }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                }
            }
        }
        if let message = failure.withLock({ $0 }) { throw ImageError(.io, "compression failed: \(message)") }
        return results.withLock { $0 }
    }
}
