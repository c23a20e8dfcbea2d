import Codecs
import Foundation
import TestSupport
import Testing

let clusterSize = 65536

/// Realistic cluster contents: text, a repeating pattern, a binary from the host, zeros.
func sampleClusters() throws -> [[UInt8]] {
    let text = Array(String(repeating: "The quick brown fox jumps over the lazy dog 0123456789.\n", count: 1200).utf8)
    let binary = try Array(Data(contentsOf: URL(fileURLWithPath: "/usr/bin/qemu-img")).prefix(4 * clusterSize))
    var clusters = [
        [UInt8](repeating: 0x41, count: clusterSize),
        (0..<clusterSize).map { UInt8(truncatingIfNeeded: $0) },
        Array(text.prefix(clusterSize)),
        [UInt8](repeating: 0, count: clusterSize),
    ]
    for i in 0..<4 { clusters.append(Array(binary[i * clusterSize..<(i + 1) * clusterSize])) }
    return clusters
}

@Suite struct CodecRoundTripTests {
    @Test(arguments: CompressionType.allCases, [true, false])
    func roundTrip(type: CompressionType, fastInflate: Bool) throws {
        let compressor = try ClusterCompressor(type: type, clusterSize: clusterSize)
        let decompressor = try ClusterDecompressor(type: type, clusterSize: clusterSize, fastInflate: fastInflate)
        for cluster in try sampleClusters() {
            let packed = try #require(try compressor.compress(cluster, range: 0..<clusterSize))
            #expect(packed.count < clusterSize - 1)
            // Stored as whole sectors: pad with junk, as the next compressed cluster would be.
            let padded = packed + pattern(511, seed: 9)
            var output = [UInt8](repeating: 0xEE, count: clusterSize + 10)
            try decompressor.decompress(
                padded, range: 0..<padded.count, into: &output, outputRange: 5..<clusterSize + 5)
            #expect(Array(output[5..<clusterSize + 5]) == cluster)
            #expect(output[0..<5].allSatisfy { $0 == 0xEE } && output[(clusterSize + 5)...].allSatisfy { $0 == 0xEE })
        }
    }

    @Test(arguments: CompressionType.allCases)
    func incompressibleClusterIsNil(type: CompressionType) throws {
        let compressor = try ClusterCompressor(type: type, clusterSize: clusterSize)
        #expect(try compressor.compress(pattern(clusterSize, seed: 1), range: 0..<clusterSize) == nil)
        // The compressor stays usable after a cluster that did not fit.
        #expect(try compressor.compress([UInt8](repeating: 1, count: clusterSize), range: 0..<clusterSize) != nil)
    }

    @Test(arguments: [512, 4096, 2 << 20])
    func otherClusterSizes(size: Int) throws {
        for type in CompressionType.allCases {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 / 7) }
            let packed = try #require(
                try ClusterCompressor(type: type, clusterSize: size).compress(data, range: 0..<size))
            var output = [UInt8](repeating: 0, count: size)
            try ClusterDecompressor(type: type, clusterSize: size).decompress(
                packed, range: 0..<packed.count, into: &output, outputRange: 0..<size)
            #expect(output == data)
        }
    }

    @Test func argumentErrors() throws {
        #expect(throws: CodecError.unsupportedClusterSize(256)) { try ClusterCompressor(type: .zlib, clusterSize: 256) }
        #expect(throws: CodecError.unsupportedClusterSize(4 << 20)) {
            try ClusterDecompressor(type: .zstd, clusterSize: 4 << 20)
        }
        let compressor = try ClusterCompressor(type: .zlib, clusterSize: 4096)
        #expect(throws: CodecError.rangeOutOfBounds(range: 0..<10, bufferCount: 5)) {
            try compressor.compress([1, 2, 3, 4, 5], range: 0..<10)
        }
        let decompressor = try ClusterDecompressor(type: .zlib, clusterSize: 4096)
        var output = [UInt8](repeating: 0, count: 8192)
        let error = #expect(throws: CodecError.self) {
            try decompressor.decompress([0], range: 0..<1, into: &output, outputRange: 0..<8192)
        }
        #expect(error == .outputTooLarge(requested: 8192, limit: 4096))
        #expect(error?.description == "decompressed size 8192 exceeds the cluster size 4096")
    }

    @Test func zstdMultipleFramesAndOversizedFrame() throws {
        let compressor = try ClusterCompressor(type: .zstd, clusterSize: 4096)
        let half = [UInt8](repeating: 3, count: 2048)
        let frame = try #require(try compressor.compress(half, range: 0..<2048))
        let decompressor = try ClusterDecompressor(type: .zstd)
        var output = [UInt8](repeating: 0, count: 4096)
        try decompressor.decompress(
            frame + frame + [1, 2, 3], range: 0..<(frame.count * 2 + 3), into: &output,
            outputRange: 0..<4096)
        #expect(output.allSatisfy { $0 == 3 })
        // One frame of 4 KiB into a 2 KiB cluster: the frame continues past the output.
        let big = try #require(try compressor.compress([UInt8](repeating: 3, count: 4096), range: 0..<4096))
        let error = #expect(throws: CodecError.self) {
            try decompressor.decompress(big, range: 0..<big.count, into: &output, outputRange: 0..<2048)
        }
        if case .corruptData(let codec, _, let expected, _) = error {
            #expect(codec == "zstd" && expected == 2048)
        } else {
            Issue.record("unexpected \(String(describing: error))")
        }
    }

    @Test func zlibLongerStreamIsAcceptedLikeQemu() throws {
        // QEMU accepts Z_BUF_ERROR once the output is full, even if the stream has more data.
        let compressor = try ClusterCompressor(type: .zlib, clusterSize: 8192)
        let data = (0..<8192).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let packed = try #require(try compressor.compress(data, range: 0..<8192))
        for fast in [true, false] {
            var output = [UInt8](repeating: 0, count: 4096)
            try ClusterDecompressor(type: .zlib, fastInflate: fast).decompress(
                packed, range: 0..<packed.count, into: &output, outputRange: 0..<4096)
            #expect(output == Array(data[0..<4096]))
        }
    }
}

@Suite struct HostileInputTests {
    @Test(arguments: CompressionType.allCases)
    func truncatedInputThrows(type: CompressionType) throws {
        let cluster = Array(String(repeating: "hostile input test line\n", count: 3000).utf8.prefix(clusterSize))
        let packed = try #require(
            try ClusterCompressor(type: type, clusterSize: clusterSize).compress(
                cluster, range: 0..<clusterSize))
        let decompressor = try ClusterDecompressor(type: type, clusterSize: clusterSize)
        var output = [UInt8](repeating: 0, count: clusterSize)
        for cut in stride(from: 0, to: packed.count - 1, by: max(1, packed.count / 50)) {
            #expect(throws: CodecError.self, "cut=\(cut)") {
                try decompressor.decompress(packed, range: 0..<cut, into: &output, outputRange: 0..<clusterSize)
            }
        }
        try decompressor.decompress(packed, range: 0..<packed.count, into: &output, outputRange: 0..<clusterSize)
        #expect(output == cluster)
    }

    @Test func zstdHugeWindowHeaderIsRejected() throws {
        // Magic, frame header descriptor (no single segment), window descriptor 2^31, then junk.
        let frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0xF8] + [UInt8](repeating: 0x55, count: 64)
        var output = [UInt8](repeating: 0, count: clusterSize)
        #expect(throws: CodecError.self) {
            try ClusterDecompressor(type: .zstd).decompress(
                frame, range: 0..<frame.count, into: &output,
                outputRange: 0..<clusterSize)
        }
    }

    /// Random garbage and bit-flipped valid clusters never crash; errors are typed.
    @Test(.timeLimit(.minutes(10)), arguments: CompressionType.allCases)
    func garbageNeverCrashes(type: CompressionType) throws {
        let seed = SeededRandom.seed()
        var rng = SeededRandom(seed: seed)
        let valid = try #require(
            try ClusterCompressor(type: type, clusterSize: clusterSize).compress(
                try sampleClusters()[2], range: 0..<clusterSize))
        let decompressor = try ClusterDecompressor(type: type, clusterSize: clusterSize)
        var output = [UInt8](repeating: 0, count: clusterSize)
        let rounds = ProcessInfo.processInfo.environment["VMIMG_LONG"] == "1" ? 20_000 : 600
        for round in 0..<rounds {
            var input: [UInt8]
            if round % 2 == 0 {
                input = (0..<Int(rng.next() % 4096)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                input = valid
                for _ in 0..<1 + Int(rng.next() % 8) {
                    input[Int(rng.next() % UInt64(input.count))] ^= UInt8(1 << (rng.next() % 8))
                }
            }
            do {
                try decompressor.decompress(input, range: 0..<input.count, into: &output, outputRange: 0..<clusterSize)
            } catch {
                #expect(!error.description.isEmpty, "seed=\(seed)")
            }
        }
    }
}

/// SplitMix64, seeded so failures can be replayed (the seed is in every message).
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    /// VMIMG_SEED if set, else a random seed.
    static func seed() -> UInt64 {
        UInt64(ProcessInfo.processInfo.environment["VMIMG_SEED"] ?? "") ?? UInt64.random(in: 0...UInt64.max)
    }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct CodecLimitTests {
    @Test func inputAndOutputLimits() throws {
        let compressor = try ClusterCompressor(type: .zstd, clusterSize: 4096)
        #expect(throws: CodecError.inputTooLarge(count: 8192, limit: 4096)) {
            try compressor.compress([UInt8](repeating: 0, count: 8192), range: 0..<8192)
        }
        var output = [UInt8](repeating: 0, count: 4 << 20)
        #expect(throws: CodecError.outputTooLarge(requested: 4 << 20, limit: 2 << 20)) {
            try ClusterDecompressor(type: .zlib).decompress(
                [0], range: 0..<1, into: &output, outputRange: 0..<(4 << 20))
        }
    }
}
