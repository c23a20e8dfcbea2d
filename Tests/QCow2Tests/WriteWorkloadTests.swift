import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format
import Testing

/// A small seeded generator so failures can be replayed (`VMIMG_SEED`).
struct Mix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

struct WorkloadCase: CustomStringConvertible, Sendable {
    var clusterBits: UInt32
    var refcountOrder: UInt32
    var version: UInt32 = 3
    var extendedL2 = false
    var backing = false
    var description: String {
        "cb=\(clusterBits) ro=\(refcountOrder) v\(version) extl2=\(extendedL2) backing=\(backing)"
    }
}

let workloadCases: [WorkloadCase] = [
    WorkloadCase(clusterBits: 16, refcountOrder: 4),
    WorkloadCase(clusterBits: 9, refcountOrder: 0),
    WorkloadCase(clusterBits: 9, refcountOrder: 6),
    WorkloadCase(clusterBits: 12, refcountOrder: 3),
    WorkloadCase(clusterBits: 16, refcountOrder: 4, version: 2),
    WorkloadCase(clusterBits: 16, refcountOrder: 4, extendedL2: true),
    WorkloadCase(clusterBits: 14, refcountOrder: 5, extendedL2: true, backing: true),
    WorkloadCase(clusterBits: 16, refcountOrder: 4, backing: true),
    WorkloadCase(clusterBits: 12, refcountOrder: 4, version: 2, backing: true),
    WorkloadCase(clusterBits: 21, refcountOrder: 4),
]

@Suite struct RandomWorkload {
    @Test(arguments: workloadCases)
    func writesZeroesDiscardsMatchRawMirror(_ c: WorkloadCase) throws {
        let seed =
            ProcessInfo.processInfo.environment["VMIMG_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        var rng = Mix64(seed: seed)
        let dir = try scratchDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size: UInt64 = 6 << 20
        var mirror = [UInt8](repeating: 0, count: Int(size))
        var options = QCow2CreateOptions(size: size)
        options.clusterBits = c.clusterBits
        options.refcountOrder = c.refcountOrder
        options.version = c.version
        options.extendedL2 = c.extendedL2
        if c.backing {
            try run("qemu-img", ["create", "-q", "-f", "raw", "base.raw", "\(size)"], cwd: dir)
            try run("qemu-io", ["-f", "raw", "-c", "write -P 0x3c 0 6M", "base.raw"], cwd: dir)
            mirror = [UInt8](repeating: 0x3c, count: Int(size))
            options.backingFile = "base.raw"
            options.backingFormat = "raw"
        }
        let path = dir + "/img.qcow2"
        do {
            let device = try BlockFile(path: path, writable: true, create: true)
            try QCow2Image.create(on: device, filename: path, options: options)
        }
        let (c0, out0, err0) = try run("qemu-img", ["check", path])
        #expect(c0 == 0, "fresh image check failed seed=\(seed): \(out0) \(err0)")
        let image = try #require(
            try ImageOpener.open(path, options: OpenOptions(writable: true)) as? QCow2Image)
        for batch in 0..<4 {
            for _ in 0..<150 {
                let op = Int.random(in: 0..<10, using: &rng)
                let len = Int.random(in: 1...(3 << (c.clusterBits - 1)), using: &rng)
                let off = UInt64.random(in: 0..<(size - UInt64(len)), using: &rng)
                if op < 7 {
                    let byte = UInt8.random(in: 1...255, using: &rng)
                    let data = [UInt8](repeating: byte, count: len)
                    try image.write(data, range: 0..<len, at: off)
                    mirror.replaceSubrange(Int(off)..<(Int(off) + len), with: data)
                } else if op < 9 {
                    try image.writeZeroes(at: off, count: UInt64(len), unmap: op == 8)
                    mirror.replaceSubrange(Int(off)..<(Int(off) + len), with: repeatElement(0, count: len))
                } else {
                    // discard: only whole clusters change; what they read as afterwards is decided below.
                    try image.discard(at: off, count: UInt64(len))
                    let cs = 1 << Int(c.clusterBits)
                    var p = (Int(off) + cs - 1) / cs * cs
                    while p + cs <= Int(off) + len {
                        let fill: UInt8 = c.backing && c.version == 2 ? 0x3c : 0
                        mirror.replaceSubrange(p..<(p + cs), with: repeatElement(fill, count: cs))
                        p += cs
                    }
                }
            }
            try image.flush()
            // Our own read path agrees with the mirror.
            let ours = try image.read(count: Int(size), at: 0)
            #expect(ours == mirror, "vmimg read-back differs after batch \(batch) seed=\(seed) \(c)")
            let (code, out, err) = try run("qemu-img", ["check", "-U", path])
            #expect(code == 0, "qemu-img check after batch \(batch) seed=\(seed) \(c): \(out) \(err)")
            try run("qemu-img", ["convert", "-U", "-O", "raw", path, dir + "/q.raw"])
            let qemuView = try #require(FileManager.default.contents(atPath: dir + "/q.raw"))
            #expect(qemuView == Data(mirror), "qemu-img sees different content batch \(batch) seed=\(seed) \(c)")
        }
    }
}
