import Foundation
import ImageKit
import QCow2
import QCow2Format
import TestSupport
import Testing

/// `convert -c` through ImageKit against real qemu-img: the output reads back byte-exact in QEMU,
/// `qemu-img check` is clean, and the file does not depend on how many workers compressed it.
@Suite(.timeLimit(.minutes(10))) struct CompressedConvertTests {
    /// Guest content covering each path of the compressed writer: text-like clusters (zlib), random
    /// ones (the igzip pre-test stores them plainly), zeros (unallocated), random data with a zero
    /// tail (near the `clusterSize - 1` limit) and a partial last cluster.
    static func mixedGuest(clusterSize cs: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        let words = ["qcow2", "cluster", "refcount", "table", "deflate", "window", "sector", "guest", "\n"]
        var out: [UInt8] = []
        for kind in 0..<12 {
            switch kind % 6 {
            case 0, 3:
                var text: [UInt8] = []
                while text.count < cs { text += Array((words[Int(rng.next() % 9)] + " ").utf8) }
                out += text.prefix(cs)
            case 1: out += rng.bytes(cs)
            case 2: out += [UInt8](repeating: 0, count: cs)
            case 4: out += rng.bytes(cs - cs / 64) + [UInt8](repeating: 0, count: cs / 64)
            default: out += rng.bytes(cs / 2) + [UInt8](repeating: 0x41, count: cs / 2)
            }
        }
        return out + rng.bytes(cs / 3 + 1)  // not a whole cluster: QEMU zero-pads it
    }

    static func convert(
        _ source: String, to target: String, clusterBits: UInt32, type: QCow2CompressionType, threads: Int
    )
        throws
    {
        var t = ConvertTarget(path: target, format: .qcow2)
        t.compress = true
        t.threads = threads
        t.qcow2.clusterBits = clusterBits
        t.qcow2.compressionType = type
        let disk = try ImageOpener.open(source, options: OpenOptions(format: "raw", writable: false))
        try Converter.convert(ConvertSource(disk: disk), to: t)
    }

    @Test(arguments: [9, 12, 16, 21] as [UInt32], QCow2CompressionType.allCases)
    func qemuReadsOutputBackExactly(clusterBits: UInt32, type: QCow2CompressionType) throws {
        let scratch = try Scratch(label: "comp")
        let source = scratch.path("src.raw")
        try Data(Self.mixedGuest(clusterSize: 1 << clusterBits, seed: UInt64(clusterBits))).write(
            to: URL(fileURLWithPath: source))
        let target = scratch.path("c.qcow2")
        try Self.convert(source, to: target, clusterBits: clusterBits, type: type, threads: 2)
        let (status, report) = try Qemu.checkJSON(target)
        #expect(status == 0, "\(report)")
        #expect(try Qemu.compare(source, target) == 0)
        // Text was compressed; random clusters were stored plainly (allocated, not compressed).
        let compressed = report["compressed-clusters"]?.int ?? 0
        let allocated = report["allocated-clusters"]?.int ?? 0
        #expect(compressed > 0 && allocated > compressed, "\(report)")
    }

    /// The output file is the same bytes whether one worker or many compressed the clusters.
    @Test(arguments: QCow2CompressionType.allCases)
    func outputIndependentOfWorkerCount(type: QCow2CompressionType) throws {
        let scratch = try Scratch(label: "comp-threads")
        let source = scratch.path("src.raw")
        // Several chunks (4 MiB each) of 64 KiB clusters so the workers interleave.
        var guest: [UInt8] = []
        for seed in 0..<8 as Range<UInt64> { guest += Self.mixedGuest(clusterSize: 65536, seed: seed) }
        try Data(guest).write(to: URL(fileURLWithPath: source))
        var outputs: [String] = []
        for threads in [1, 2, 5] {
            let target = scratch.path("c\(threads).qcow2")
            try Self.convert(source, to: target, clusterBits: 16, type: type, threads: threads)
            outputs.append(target)
        }
        #expect(try filesEqual(outputs[0], outputs[1]))
        #expect(try filesEqual(outputs[0], outputs[2]))
        #expect(try Qemu.compare(source, outputs[0]) == 0)
    }
}
