import CIsal
import CZlib
import CZstd

/// Compresses qcow2 clusters as QEMU 7.2 does (`qcow2_co_compress`), so `convert -c` produces the
/// same bytes and sizes as qemu-img, except that near-random zlib clusters are stored plainly
/// without running zlib (see ``incompressibleEntropy``).
///
/// One compressor per thread: it keeps its `z_stream` or `ZSTD_CCtx` between clusters (reset,
/// not re-created, which yields the same output as QEMU's fresh stream per cluster).
///
/// `@safe`: the C stream pointers are private, allocated in `init` and freed only in `deinit`.
@safe public final class ClusterCompressor {
    /// The algorithm.
    public let type: CompressionType
    /// The image's cluster size; compressed output must be smaller than this.
    public let clusterSize: Int
    private let zstream: UnsafeMutablePointer<z_stream>?
    private let cctx: OpaquePointer?
    /// igzip's level 1 working memory (hash tables), for the incompressibility test.
    private let isalLevelBuffer: UnsafeMutableRawBufferPointer?

    /// Order-0 entropy (bits per byte) from which a zlib cluster is first tried with igzip level 1
    /// (4 KiB window, output capped at `clusterSize - 1` like QEMU's): when even that does not fit,
    /// the cluster is stored uncompressed without zlib. zlib level 6 takes as long to fail on
    /// random data (~25 MB/s) as to compress text; igzip fails ~30× faster. Text and code sit at
    /// 4-6.5 bits, so they go straight to zlib; uniform random clusters measure 7.6 (512 B) to 8.
    /// The only clusters stored differently from QEMU are those where zlib 6 fits in
    /// `clusterSize - 1` bytes and igzip 1 does not: near-random data within ~0.3% of the limit.
    public static let incompressibleEntropy = 7.0

    /// Sets up a compressor.
    ///
    /// - Parameters:
    ///   - type: zlib or zstd.
    ///   - clusterSize: The image's cluster size (512 B – 2 MiB).
    /// - Throws: ``CodecError/unsupportedClusterSize(_:)`` or ``CodecError/initializationFailed(codec:code:)``.
    public init(type: CompressionType, clusterSize: Int) throws(CodecError) {
        guard clusterSizeLimits.contains(clusterSize) else { throw .unsupportedClusterSize(clusterSize) }
        self.type = type
        self.clusterSize = clusterSize
        switch type {
        case .zlib:
            // The z_stream lives at a fixed address: zlib keeps a back-pointer to it in its state.
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            unsafe stream.initialize(to: z_stream())
            // QEMU: level Z_DEFAULT_COMPRESSION, raw deflate with a 4 KiB window (-12), memLevel 9.
            let ret = unsafe vmimg_deflateInit2(stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY)
            guard ret == Z_OK else {
                unsafe stream.deallocate()
                throw .initializationFailed(codec: "zlib", code: Int(ret))
            }
            unsafe zstream = stream
            unsafe cctx = nil
            unsafe isalLevelBuffer = UnsafeMutableRawBufferPointer.allocate(
                byteCount: Int(vmimg_isal_level1_buffer_size()), alignment: 64)
        case .zstd:
            guard let context = unsafe ZSTD_createCCtx() else { throw .initializationFailed(codec: "zstd", code: 0) }
            unsafe zstream = nil
            unsafe cctx = context
            unsafe isalLevelBuffer = nil
        }
    }

    deinit {
        if let stream = unsafe zstream {
            _ = unsafe deflateEnd(stream)
            unsafe stream.deallocate()
        }
        if let context = unsafe cctx { _ = unsafe ZSTD_freeCCtx(context) }
        unsafe isalLevelBuffer?.deallocate()
    }

    /// Compresses `input[range]` (normally one whole cluster, zero-padded at the image end).
    ///
    /// Mirrors QEMU: the output buffer is `clusterSize - 1` bytes, and a result that does not
    /// fit means "store this cluster uncompressed".
    /// - Returns: The compressed bytes, or nil when they would not be smaller than a cluster.
    /// - Throws: ``CodecError/rangeOutOfBounds(range:bufferCount:)``,
    ///   ``CodecError/inputTooLarge(count:limit:)`` or ``CodecError/compressionFailed(codec:code:)``.
    public func compress(_ input: [UInt8], range: Range<Int>) throws(CodecError) -> [UInt8]? {
        try checkRange(range, in: input.count)
        guard range.count <= clusterSize else { throw .inputTooLarge(count: range.count, limit: clusterSize) }
        var output = [UInt8](repeating: 0, count: clusterSize - 1)
        let produced: Int?
        if let stream = unsafe zstream {
            if isNearRandom(input, range, &output) { return nil }
            produced = try unsafe deflate(stream, input, range, &output)
        } else if let context = unsafe cctx {
            produced = try unsafe zstdCompress(context, input, range, &output)
        } else {
            produced = nil
        }
        guard let count = produced else { return nil }
        output.removeSubrange(count...)
        return output
    }

    /// True when `input[range]` has near-random byte statistics and igzip level 1 cannot fit it
    /// in `output` (QEMU's `clusterSize - 1` bytes): zlib would fail too, so skip it.
    private func isNearRandom(_ input: [UInt8], _ range: Range<Int>, _ output: inout [UInt8]) -> Bool {
        guard let level = unsafe isalLevelBuffer else { return false }
        let capacity = output.count
        return unsafe input.withUnsafeBytes { src in
            guard let inBase = src.baseAddress else { return false }
            let bytes = unsafe (inBase + range.lowerBound).assumingMemoryBound(to: UInt8.self)
            guard unsafe vmimg_byte_entropy(bytes, range.count) >= Self.incompressibleEntropy else { return false }
            return unsafe output.withUnsafeMutableBytes { dst in
                guard let outBase = dst.baseAddress, let levelBase = level.baseAddress else { return false }
                let size = unsafe vmimg_isal_deflate_level1(
                    levelBase.assumingMemoryBound(to: UInt8.self), UInt32(level.count), bytes,
                    UInt32(range.count), outBase.assumingMemoryBound(to: UInt8.self), UInt32(capacity))
                return size < 0
            }
        }
    }

    private func deflate(
        _ stream: UnsafeMutablePointer<z_stream>, _ input: [UInt8], _ range: Range<Int>,
        _ output: inout [UInt8]
    ) throws(CodecError) -> Int? {
        _ = unsafe deflateReset(stream)
        let capacity = output.count
        let ret: Int32 = unsafe input.withUnsafeBytes { src in
            unsafe output.withUnsafeMutableBytes { dst in
                guard let inBase = src.baseAddress, let outBase = dst.baseAddress else { return Z_BUF_ERROR }
                // zlib's next_in is not const-qualified but deflate never writes through it.
                unsafe stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: (inBase + range.lowerBound).assumingMemoryBound(to: Bytef.self))
                unsafe stream.pointee.avail_in = uInt(range.count)
                unsafe stream.pointee.next_out = outBase.assumingMemoryBound(to: Bytef.self)
                unsafe stream.pointee.avail_out = uInt(capacity)
                let ret = unsafe CZlib.deflate(stream, Z_FINISH)
                // Drop the borrowed pointers so nothing dangles past this closure.
                unsafe stream.pointee.next_in = nil
                unsafe stream.pointee.next_out = nil
                return ret
            }
        }
        switch ret {
        case Z_STREAM_END: return capacity - Int(unsafe stream.pointee.avail_out)
        case Z_OK, Z_BUF_ERROR: return nil  // ran out of output space: store uncompressed
        default: throw .compressionFailed(codec: "zlib", code: Int(ret))
        }
    }

    private func zstdCompress(
        _ context: OpaquePointer, _ input: [UInt8], _ range: Range<Int>,
        _ output: inout [UInt8]
    ) throws(CodecError) -> Int? {
        // A session reset keeps the (default) parameters; QEMU creates a fresh context, same output.
        _ = unsafe ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        let capacity = output.count
        let (ret, produced): (Int, Int) = unsafe input.withUnsafeBytes { src in
            unsafe output.withUnsafeMutableBytes { dst in
                guard let inBase = src.baseAddress, let outBase = dst.baseAddress else { return (0, -1) }
                var out = unsafe ZSTD_outBuffer(dst: outBase, size: capacity, pos: 0)
                var inp = unsafe ZSTD_inBuffer(src: inBase + range.lowerBound, size: range.count, pos: 0)
                // One call with ZSTD_e_end: a single frame, as qcow2_zstd_compress writes it.
                let ret = unsafe ZSTD_compressStream2(context, &out, &inp, ZSTD_e_end)
                return (ret, unsafe out.pos)
            }
        }
        if ZSTD_isError(ret) != 0 {
            if ZSTD_getErrorCode(ret) == ZSTD_error_dstSize_tooSmall { return nil }
            throw .compressionFailed(codec: "zstd", code: Int(ZSTD_getErrorCode(ret).rawValue))
        }
        // ret > 0: the frame is not finished because the output is full.
        return ret == 0 && produced >= 0 ? produced : nil
    }
}
