import CLibDeflate
import CZlib
import CZstd

/// Decompresses qcow2 clusters with QEMU 7.2's acceptance rules (`qcow2_co_decompress`).
///
/// The stored length of a compressed cluster is rounded up to 512-byte sectors, so the input
/// may run past the end of the compressed data; success means exactly the requested number of
/// bytes came out. Output goes only into the caller's buffer, whose size the caller chose: no
/// allocation is driven by the (untrusted) input. One decompressor per thread.
///
/// `@safe`: the C contexts are private, created in `init` and freed only in `deinit`.
@safe public final class ClusterDecompressor {
    /// The algorithm.
    public let type: CompressionType
    /// Largest output accepted, if a cluster size was given.
    public let clusterSize: Int?
    private let zstream: UnsafeMutablePointer<z_stream>?
    private let fast: OpaquePointer?
    private let dctx: OpaquePointer?

    /// Sets up a decompressor.
    ///
    /// - Parameters:
    ///   - type: zlib or zstd.
    ///   - clusterSize: If given, outputs larger than this are refused.
    ///   - fastInflate: Try libdeflate before zlib for zlib clusters (same result, about twice as
    ///     fast); zlib still decides every stream libdeflate does not accept outright.
    /// - Throws: ``CodecError/unsupportedClusterSize(_:)``, ``CodecError/initializationFailed(codec:code:)``.
    public init(type: CompressionType, clusterSize: Int? = nil, fastInflate: Bool = true) throws(CodecError) {
        if let size = clusterSize, !clusterSizeLimits.contains(size) { throw .unsupportedClusterSize(size) }
        self.type = type
        self.clusterSize = clusterSize
        switch type {
        case .zlib:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            unsafe stream.initialize(to: z_stream())
            let ret = unsafe vmimg_inflateInit2(stream, -12)  // raw inflate, 4 KiB window, as QEMU
            guard ret == Z_OK else {
                unsafe stream.deallocate()
                throw .initializationFailed(codec: "zlib", code: Int(ret))
            }
            unsafe zstream = stream
            unsafe fast = fastInflate ? libdeflate_alloc_decompressor() : nil
            unsafe dctx = nil
        case .zstd:
            guard let context = unsafe ZSTD_createDCtx() else { throw .initializationFailed(codec: "zstd", code: 0) }
            // Decode straight into the caller's buffer: no window buffer sized by the frame header.
            let ret = unsafe ZSTD_DCtx_setParameter(
                context, ZSTD_dParameter(UInt32(vmimg_zstd_param_stable_out_buffer())), 1)
            guard ZSTD_isError(ret) == 0 else {
                _ = unsafe ZSTD_freeDCtx(context)
                throw .initializationFailed(codec: "zstd", code: Int(ZSTD_getErrorCode(ret).rawValue))
            }
            unsafe zstream = nil
            unsafe fast = nil
            unsafe dctx = context
        }
    }

    deinit {
        if let stream = unsafe zstream {
            _ = unsafe inflateEnd(stream)
            unsafe stream.deallocate()
        }
        if let decompressor = unsafe fast { unsafe libdeflate_free_decompressor(decompressor) }
        if let context = unsafe dctx { _ = unsafe ZSTD_freeDCtx(context) }
    }

    /// Decompresses `input[range]` into `output[outputRange]`, filling it exactly.
    ///
    /// - Parameters:
    ///   - input: Bytes read from the image (may include trailing sector padding).
    ///   - range: The compressed cluster's bytes within `input` (`clen` from the L2 entry).
    ///   - output: Destination buffer.
    ///   - outputRange: Where the cluster goes; its count is the bytes that must come out.
    /// - Throws: ``CodecError/corruptData(codec:produced:expected:reason:)`` when the data is
    ///   invalid or too short, ``CodecError/rangeOutOfBounds(range:bufferCount:)``,
    ///   ``CodecError/outputTooLarge(requested:limit:)``.
    public func decompress(_ input: [UInt8], range: Range<Int>, into output: inout [UInt8], outputRange: Range<Int>)
        throws(CodecError)
    {
        try checkRange(range, in: input.count)
        try checkRange(outputRange, in: output.count)
        // Bounded by the cluster size, and so also by zlib's 32-bit counters.
        let limit = clusterSize ?? clusterSizeLimits.upperBound
        guard outputRange.count <= limit else { throw .outputTooLarge(requested: outputRange.count, limit: limit) }
        guard range.count <= UInt32.max else { throw .rangeOutOfBounds(range: range, bufferCount: input.count) }
        guard !outputRange.isEmpty else { return }
        if let stream = unsafe zstream {
            if let decompressor = unsafe fast, unsafe fastInflate(decompressor, input, range, &output, outputRange) {
                return
            }
            try unsafe inflate(stream, input, range, &output, outputRange)
        } else if let context = unsafe dctx {
            try unsafe zstdDecompress(context, input, range, &output, outputRange)
        }
    }

    /// libdeflate's verdict when it is unambiguous: a complete stream producing exactly the
    /// cluster. Anything else (longer stream, no end marker, errors) is left to zlib, whose
    /// behaviour is QEMU's definition of valid.
    private func fastInflate(
        _ decompressor: OpaquePointer, _ input: [UInt8], _ range: Range<Int>,
        _ output: inout [UInt8], _ outputRange: Range<Int>
    ) -> Bool {
        unsafe input.withUnsafeBytes { src in
            unsafe output.withUnsafeMutableBytes { dst in
                guard let inBase = src.baseAddress, let outBase = dst.baseAddress else { return false }
                var consumed = 0
                var produced = 0
                let result = unsafe libdeflate_deflate_decompress_ex(
                    decompressor, inBase + range.lowerBound, range.count, outBase + outputRange.lowerBound,
                    outputRange.count, &consumed, &produced)
                return result == LIBDEFLATE_SUCCESS && produced == outputRange.count
            }
        }
    }

    private func inflate(
        _ stream: UnsafeMutablePointer<z_stream>, _ input: [UInt8], _ range: Range<Int>,
        _ output: inout [UInt8], _ outputRange: Range<Int>
    ) throws(CodecError) {
        _ = unsafe inflateReset(stream)
        let (ret, left): (Int32, Int) = unsafe input.withUnsafeBytes { src in
            unsafe output.withUnsafeMutableBytes { dst in
                guard let inBase = src.baseAddress, let outBase = dst.baseAddress else { return (Z_DATA_ERROR, -1) }
                // zlib's next_in is not const-qualified but inflate never writes through it.
                unsafe stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: (inBase + range.lowerBound).assumingMemoryBound(to: Bytef.self))
                unsafe stream.pointee.avail_in = uInt(range.count)
                unsafe stream.pointee.next_out = (outBase + outputRange.lowerBound).assumingMemoryBound(to: Bytef.self)
                unsafe stream.pointee.avail_out = uInt(outputRange.count)
                let ret = unsafe CZlib.inflate(stream, Z_FINISH)
                unsafe stream.pointee.next_in = nil
                unsafe stream.pointee.next_out = nil
                return (ret, Int(unsafe stream.pointee.avail_out))
            }
        }
        // Z_BUF_ERROR with a full output is success: the input ran on into sector padding, or the
        // stream has more data than the cluster holds (QEMU accepts both).
        if (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && left == 0 { return }
        let reason: String
        switch ret {
        case Z_STREAM_END: reason = "stream ended early"
        case Z_BUF_ERROR: reason = "input ended early"
        case Z_DATA_ERROR: reason = "invalid deflate data"
        case Z_MEM_ERROR: reason = "out of memory"
        default: reason = "inflate returned \(ret)"
        }
        throw .corruptData(
            codec: "zlib", produced: outputRange.count - max(left, 0), expected: outputRange.count,
            reason: reason)
    }

    private func zstdDecompress(
        _ context: OpaquePointer, _ input: [UInt8], _ range: Range<Int>,
        _ output: inout [UInt8], _ outputRange: Range<Int>
    ) throws(CodecError) {
        // Parameters (stable output buffer) survive a session reset.
        _ = unsafe ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        let (failure, produced): (String?, Int) = unsafe input.withUnsafeBytes { src in
            unsafe output.withUnsafeMutableBytes { dst in
                guard let inBase = src.baseAddress, let outBase = dst.baseAddress else { return ("no buffer", 0) }
                var out = unsafe ZSTD_outBuffer(dst: outBase + outputRange.lowerBound, size: outputRange.count, pos: 0)
                var inp = unsafe ZSTD_inBuffer(src: inBase + range.lowerBound, size: range.count, pos: 0)
                var ret = 0
                // QEMU's qcow2_zstd_decompress: frames until the output is full; trailing input
                // is ignored, and a call that makes no progress means truncated input.
                while unsafe out.pos < out.size {
                    let lastIn = unsafe inp.pos
                    let lastOut = unsafe out.pos
                    ret = unsafe ZSTD_decompressStream(context, &out, &inp)
                    if ZSTD_isError(ret) != 0 {
                        return (unsafe String(cString: ZSTD_getErrorName(ret)), unsafe out.pos)
                    }
                    if unsafe inp.pos <= lastIn && out.pos <= lastOut { return ("input ended early", unsafe out.pos) }
                }
                // Output full but the frame still has data: larger than a cluster, so damaged.
                if ret > 0 { return ("frame continues past the cluster", unsafe out.pos) }
                return (nil, unsafe out.pos)
            }
        }
        if let reason = failure {
            throw .corruptData(codec: "zstd", produced: produced, expected: outputRange.count, reason: reason)
        }
    }
}
