/// qcow2 `compression_type` values (header byte 104).
public enum CompressionType: UInt8, Sendable, CaseIterable {
    /// Raw deflate, 4 KiB window (type 0, the default).
    case zlib = 0
    /// One or more zstd frames (type 1, incompatible feature bit 3).
    case zstd = 1

    /// The name qemu-img prints (`compression type: zlib`).
    public var name: String {
        switch self {
        case .zlib: return "zlib"
        case .zstd: return "zstd"
        }
    }
}

/// A compression or decompression failure, printed as one line.
public enum CodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The cluster size is outside qcow2's 512 B – 2 MiB.
    case unsupportedClusterSize(Int)
    /// A range does not lie inside its buffer.
    case rangeOutOfBounds(range: Range<Int>, bufferCount: Int)
    /// The output range is larger than the cluster size (or 2 MiB when none was given).
    case outputTooLarge(requested: Int, limit: Int)
    /// More input than one cluster was given to the compressor.
    case inputTooLarge(count: Int, limit: Int)
    /// The library could not set up a stream (usually out of memory).
    case initializationFailed(codec: String, code: Int)
    /// The compressor failed for a reason other than "does not fit".
    case compressionFailed(codec: String, code: Int)
    /// The compressed data is corrupt or too short to fill the cluster.
    case corruptData(codec: String, produced: Int, expected: Int, reason: String)

    /// One line, e.g. `zlib: corrupt compressed cluster: input ended early (512 of 65536 bytes produced)`.
    public var description: String {
        switch self {
        case .unsupportedClusterSize(let size):
            return "cluster size \(size) is outside 512...2097152"
        case .rangeOutOfBounds(let range, let count):
            return "range \(range.lowerBound)..<\(range.upperBound) is outside a buffer of \(count) bytes"
        case .outputTooLarge(let requested, let limit):
            return "decompressed size \(requested) exceeds the cluster size \(limit)"
        case .inputTooLarge(let count, let limit):
            return "cannot compress \(count) bytes into one cluster of \(limit) bytes"
        case .initializationFailed(let codec, let code):
            return "\(codec): could not initialise the stream (code \(code))"
        case .compressionFailed(let codec, let code):
            return "\(codec): compression failed (code \(code))"
        case .corruptData(let codec, let produced, let expected, let reason):
            return "\(codec): corrupt compressed cluster: \(reason) (\(produced) of \(expected) bytes produced)"
        }
    }
}

/// qcow2's cluster size limits (cluster_bits 9...21).
let clusterSizeLimits = 512...(2 << 20)

func checkRange(_ range: Range<Int>, in count: Int) throws(CodecError) {
    guard range.lowerBound >= 0, range.upperBound <= count else {
        throw .rangeOutOfBounds(range: range, bufferCount: count)
    }
}
