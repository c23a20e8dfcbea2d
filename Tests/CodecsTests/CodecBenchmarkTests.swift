import Codecs
import Foundation
import TestSupport
import Testing

/// Throughput of the Swift wrappers on host binaries and text (VMIMG_LONG=1 only). The wider
/// comparison with libdeflate levels and ISA-L is Samples/bench-codecs.sh.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["VMIMG_LONG"] == "1"))
struct CodecBenchmarkTests {
    @Test(arguments: CompressionType.allCases)
    func throughput(type: CompressionType) throws {
        let corpus = try ["/usr/bin/qemu-img", "/usr/bin/qemu-io", "/usr/share/common-licenses/GPL-3"].flatMap {
            try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0)))
        }
        let clusters = stride(from: 0, to: corpus.count - clusterSize, by: clusterSize).map {
            Array(corpus[$0..<$0 + clusterSize])
        }
        let compressor = try ClusterCompressor(type: type, clusterSize: clusterSize)
        let clock = ContinuousClock()
        var packed: [[UInt8]?] = []
        let compressTime = try clock.measure {
            packed = try clusters.map { try compressor.compress($0, range: 0..<clusterSize) }
        }
        let megabytes = Double(clusters.count * clusterSize) / 1e6
        let stored = packed.reduce(0) { $0 + ($1?.count ?? clusterSize) }
        func rate(_ duration: Duration) -> Double {
            megabytes / (Double(duration.components.attoseconds) / 1e18 + Double(duration.components.seconds))
        }
        var line = "\(type.name): \(clusters.count) clusters, ratio \(Double(stored) / (megabytes * 1e6)), "
        line += "compress \(Int(rate(compressTime))) MB/s"
        for fast in type == .zlib ? [false, true] : [false] {
            let decompressor = try ClusterDecompressor(type: type, clusterSize: clusterSize, fastInflate: fast)
            var output = [UInt8](repeating: 0, count: clusterSize)
            let time = try clock.measure {
                for bytes in packed {
                    guard let bytes else { continue }
                    try decompressor.decompress(
                        bytes, range: 0..<bytes.count, into: &output, outputRange: 0..<clusterSize)
                }
            }
            line += ", decompress\(fast ? " (libdeflate)" : "") \(Int(rate(time))) MB/s"
        }
        print(line)
    }
}
