import Codecs
import Foundation
import TestSupport
import Testing

/// Compressed clusters written by `qemu-img convert -c`, located through the L1/L2 tables.
struct QemuCompressedImage {
    /// Per guest cluster: nil when unallocated, else (compressed?, host bytes from the entry's offset).
    var clusters: [(compressed: Bool, bytes: [UInt8])?]

    init(path: String, count: Int) throws {
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        func be64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(file[at + $1]) } }
        let clusterBits = Int(be64(16) & 0xffff_ffff)
        let l2Offset = Int(be64(Int(be64(40))) & 0x00ff_ffff_ffff_fe00)
        let x = 62 - (clusterBits - 8)
        clusters = (0..<count).map { i in
            let entry = be64(l2Offset + 8 * i)
            guard entry != 0 else { return nil }
            if entry & (1 << 62) == 0 {
                let offset = Int(entry & 0x00ff_ffff_ffff_fe00)
                return (false, Array(file[offset..<offset + (1 << clusterBits)]))
            }
            let offset = Int(entry & ((1 << x) - 1))
            let sectors = Int((entry >> x) & ((1 << (clusterBits - 8)) - 1)) + 1
            let length = sectors * 512 - (offset & 511)
            // The last sector may run past the end of the file; missing bytes read as zero.
            let available = Array(file[offset..<min(file.count, offset + length)])
            return (true, available + [UInt8](repeating: 0, count: length - available.count))
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct QemuInteropTests {
    @Test(arguments: CompressionType.allCases)
    func outputIsByteIdenticalToQemuImg(type: CompressionType) throws {
        let scratch = try Scratch()
        var clusters = try sampleClusters()
        clusters.append(pattern(clusterSize, seed: 4))  // incompressible: QEMU stores it plain
        let source = scratch.path("src.raw")
        try Data(clusters.flatMap { $0 }).write(to: URL(fileURLWithPath: source))
        let target = scratch.path("c.qcow2")
        let result = try Qemu.img([
            "convert", "-c", "-O", "qcow2", "-o", "compression_type=\(type.name)", source, target,
        ])
        try #require(result.status == 0, "\(result.stderrText)")
        let image = try QemuCompressedImage(path: target, count: clusters.count)
        let compressor = try ClusterCompressor(type: type, clusterSize: clusterSize)
        let decompressor = try ClusterDecompressor(type: type, clusterSize: clusterSize)
        for (i, cluster) in clusters.enumerated() {
            let ours = try compressor.compress(cluster, range: 0..<clusterSize)
            guard let stored = image.clusters[i] else {
                #expect(cluster.allSatisfy { $0 == 0 }, "cluster \(i) unallocated by qemu-img")
                continue
            }
            guard stored.compressed else {
                #expect(ours == nil, "cluster \(i): qemu-img stored it uncompressed")
                continue
            }
            let mine = try #require(ours, "cluster \(i): qemu-img compressed it")
            #expect(Array(stored.bytes.prefix(mine.count)) == mine, "cluster \(i) differs from qemu-img's bytes")
            // And QEMU's stored bytes, sector padding included, decode to the cluster.
            var output = [UInt8](repeating: 0, count: clusterSize)
            try decompressor.decompress(
                stored.bytes, range: 0..<stored.bytes.count, into: &output,
                outputRange: 0..<clusterSize)
            #expect(output == cluster, "cluster \(i)")
        }
        #expect(try Qemu.img(["check", target]).status == 0)
    }

    /// Clusters of random bytes with a growing zero tail cross QEMU's limit (compressed output of at
    /// most `clusterSize - 1` bytes): whatever QEMU stores plainly we store plainly, and whatever
    /// QEMU compresses by at least 1% (16 bytes for small clusters) we compress to the same bytes.
    /// Only near-random clusters within that margin of the limit may differ (the igzip pre-test
    /// stores them plainly), and only for zlib.
    @Test(arguments: [512, 4096, 65536], CompressionType.allCases)
    func clustersAtTheLimitFollowQemu(size: Int, type: CompressionType) throws {
        let scratch = try Scratch()
        // 64 clusters: one L2 table even with 512-byte clusters (QemuCompressedImage reads one).
        let step = max(1, size / 2048)
        let clusters = (0..<64).map { k in
            pattern(size - k * step, seed: UInt64(100 + k)) + [UInt8](repeating: 0, count: k * step)
        }
        let source = scratch.path("edge.raw")
        try Data(clusters.flatMap { $0 }).write(to: URL(fileURLWithPath: source))
        let target = scratch.path("edge.qcow2")
        let result = try Qemu.img([
            "convert", "-c", "-O", "qcow2", "-o", "compression_type=\(type.name),cluster_size=\(size)", source,
            target,
        ])
        try #require(result.status == 0, "\(result.stderrText)")
        let image = try QemuCompressedImage(path: target, count: clusters.count)
        let compressor = try ClusterCompressor(type: type, clusterSize: size)
        var plain = 0
        var packed = 0
        for (i, cluster) in clusters.enumerated() {
            let ours = try compressor.compress(cluster, range: 0..<size)
            let stored = try #require(image.clusters[i], "cluster \(i) unallocated by qemu-img")
            guard stored.compressed else {
                plain += 1
                #expect(ours == nil, "cluster \(i): qemu-img stored it uncompressed")
                continue
            }
            packed += 1
            if let mine = ours {
                #expect(Array(stored.bytes.prefix(mine.count)) == mine, "cluster \(i) differs from qemu-img's bytes")
            } else {
                // The descriptor's length (whole sectors) bounds QEMU's stream from above.
                #expect(type == .zlib && stored.bytes.count > size - max(size / 100, 16), "cluster \(i)")
            }
        }
        // The series really crosses the limit.
        #expect(plain > 0 && packed > 0, "plain \(plain), compressed \(packed)")
        #expect(try Qemu.img(["check", target]).status == 0)
    }

    @Test func zlibOutputDecodesWithPythonRawInflate() throws {
        let scratch = try Scratch()
        let compressor = try ClusterCompressor(type: .zlib, clusterSize: clusterSize)
        for (i, cluster) in try sampleClusters().enumerated() {
            let packed = try #require(try compressor.compress(cluster, range: 0..<clusterSize))
            let input = scratch.path("c\(i).deflate")
            let output = scratch.path("c\(i).out")
            try Data(packed).write(to: URL(fileURLWithPath: input))
            let script =
                "import zlib,sys; d=zlib.decompressobj(-12); "
                + "open(sys.argv[2],'wb').write(d.decompress(open(sys.argv[1],'rb').read()))"
            let result = try Tool.run("python3", ["-c", script, input, output])
            try #require(result.status == 0, "\(result.stderrText)")
            #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: output))) == cluster, "cluster \(i)")
        }
    }
}
