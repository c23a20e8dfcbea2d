import BlockIO
import Foundation
import ImageKit
import QCow2
import QCow2Format
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Rounds per configuration: a CI run does ≥ 50 kills in all; `VMIMG_LONG=1` does four times more.
let crashRoundScale = ProcessInfo.processInfo.environment["VMIMG_LONG"] == "1" ? 4 : 1

struct KillCase: CustomStringConvertible, Sendable {
    var clusterSize: Int
    var backing: Bool
    var rounds: Int
    /// Request sizes to draw from (partial clusters exercise copy-on-write).
    var bufferSizes: [Int]
    var description: String { "cluster_size=\(clusterSize) backing=\(backing) rounds=\(rounds)" }
}

let killCases: [KillCase] = [
    KillCase(
        clusterSize: 65536, backing: false, rounds: 20 * crashRoundScale,
        bufferSizes: [4096, 65536, 12288]),
    // 512-byte clusters: a refcount block covers 256 clusters, an L2 table 64, so blocks, L2 tables
    // and the refcount table are created and grown all through the run.
    KillCase(
        clusterSize: 512, backing: false, rounds: 16 * crashRoundScale, bufferSizes: [512, 1536, 4096]),
    KillCase(
        clusterSize: 65536, backing: true, rounds: 16 * crashRoundScale,
        bufferSizes: [4096, 3000, 65536]),
]

/// What one killed `vmimg bench -w` run was asked to write.
struct BenchRound {
    var offset: Int
    var count: Int
    var bufferSize: Int
    var step: Int
    var pattern: UInt8
    var depth: Int
    var flushInterval: Int

    func requestRange(_ i: Int) -> Range<Int> {
        (offset + i * step)..<(offset + i * step + bufferSize)
    }
}

/// The crash and thread tests load both cores (child processes, qemu-img per round): one at a time.
@Suite(.serialized) struct HeavyEngineTests {}

extension HeavyEngineTests {
    @Suite(.serialized) struct KillCrashTests {
        /// `vmimg bench -w --flush-log` is SIGKILLed at a random moment, round after round on one image.
        /// After each kill: `qemu-img check` finds no corruption (leaks allowed), every request that a
        /// logged flush acknowledged reads back, untouched bytes are unchanged, and the rest holds old or new.
        @Test(.timeLimit(.minutes(10)), arguments: killCases)
        func killedWriterLeavesConsistentImage(_ c: KillCase) throws {
            var rng = SplitMix64.fromEnvironment()
            let seed = rng.seed
            let scratch = try Scratch(label: "kill")
            let size = 8 << 20
            let image = scratch.path("image.qcow2")
            var model = [UInt8](repeating: 0, count: size)
            if c.backing {
                let base = scratch.path("base.qcow2")
                try Qemu.create(base, size: "8M")
                try Qemu.io(base, commands: ["write -P 0x5a 0 8M"])
                model = [UInt8](repeating: 0x5a, count: size)
                try Qemu.create(
                    image, size: nil, options: ["cluster_size=\(c.clusterSize)"], backing: "base.qcow2")
            } else {
                try Qemu.create(image, size: "8M", options: ["cluster_size=\(c.clusterSize)"])
            }
            let vmimg = try Tool.vmimgBinary()
            var killed = 0
            var acknowledged = 0
            for round in 0..<c.rounds {
                let bufferSize = c.bufferSizes[Int(rng.next() % UInt64(c.bufferSizes.count))]
                let step = bufferSize * (rng.next() % 3 == 0 ? 2 : 1)
                let count = 64 + Int(rng.next() % 1500)
                let span = (count - 1) * step + bufferSize
                let count2 = span > size ? (size - bufferSize) / step : count
                let span2 = (count2 - 1) * step + bufferSize
                let offset = Int(rng.next() % UInt64(size - span2 + 1)) / 512 * 512
                let depth = 1 + Int(rng.next() % 8)
                let b = BenchRound(
                    offset: offset, count: count2, bufferSize: bufferSize, step: step,
                    pattern: UInt8(1 + round % 250), depth: depth,
                    flushInterval: depth * (1 + Int(rng.next() % 4)))
                // Log-uniform over 2 ms–500 ms: a round takes from a few ms (fast machine, one worker
                // per core) to seconds (loaded), so kills land before, during and after the writes.
                let delay = 0.002 * pow(250, Double(rng.next() % 1000) / 1000)
                let (flushed, wasKilled) = try runAndKill(
                    vmimg, image: image, round: b, after: delay, scratch: scratch)
                if wasKilled {
                    killed += 1
                } else {
                    #expect(flushed == b.count, "finished without the final flush, seed=\(seed)")
                }
                acknowledged += flushed
                let where_ =
                    "seed=\(seed) round=\(round) \(c) offset=\(b.offset) count=\(b.count) size=\(b.bufferSize) "
                    + "step=\(b.step) depth=\(b.depth) flush=\(b.flushInterval) flushed=\(flushed)"
                let check = try Qemu.img(["check", image])
                #expect([0, 3].contains(check.status), "qemu-img check: \(check.stdoutText) \(where_)")
                #expect(!check.stdoutText.contains("ERROR"), "\(check.stdoutText) \(where_)")
                guard [0, 3].contains(check.status) else { return }
                let raw = scratch.path("content.raw")
                try Qemu.convertToRaw(image, raw)
                let actual = try TestSupport.bytes(raw)
                try #require(actual.count == size, "\(where_)")
                var touched = [Bool](repeating: false, count: size)
                for i in 0..<b.count { for k in b.requestRange(i) { touched[k] = true } }
                var acked = [Bool](repeating: false, count: size)
                for i in 0..<min(flushed, b.count) { for k in b.requestRange(i) { acked[k] = true } }
                var firstBad: Int?
                for k in 0..<size {
                    let ok =
                        acked[k]
                        ? actual[k] == b.pattern
                        : (touched[k] ? (actual[k] == b.pattern || actual[k] == model[k]) : actual[k] == model[k])
                    if !ok {
                        firstBad = k
                        break
                    }
                }
                let badText =
                    firstBad.map { "byte \($0): \(actual[$0]), model \(model[$0]), acked \(acked[$0])" } ?? ""
                #expect(firstBad == nil, "\(badText) \(where_)")
                if firstBad != nil { return }
                model = actual
            }
            print(
                "kill test \(c): \(c.rounds) rounds, \(killed) killed mid-run, \(acknowledged) acknowledged requests, seed=\(seed)"
            )
            #expect(killed > 0, "no round was killed mid-run; the kill delays are too long (seed=\(seed))")
            let final = try Qemu.img(["check", "-r", "leaks", image])
            #expect(final.status == 0, "\(final.stdoutText) seed=\(seed)")
        }

        /// Starts `vmimg bench -w … --flush-log`, SIGKILLs it after `delay` seconds (if still running),
        /// and returns the highest acknowledged request count and whether it was killed.
        func runAndKill(
            _ vmimg: String, image: String, round b: BenchRound, after delay: Double, scratch: Scratch
        )
            throws -> (Int, Bool)
        {
            let out = scratch.path("bench.out")
            _ = FileManager.default.createFile(atPath: out, contents: nil)
            let handle = try #require(FileHandle(forWritingAtPath: out))
            defer { try? handle.close() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: vmimg)
            process.arguments = [
                "bench", "-w", "-f", "qcow2", "-c", "\(b.count)", "-d", "\(b.depth)", "-s", "\(b.bufferSize)",
                "-S", "\(b.step)", "-o", "\(b.offset)", "--pattern=\(b.pattern)",
                "--flush-interval=\(b.flushInterval)",
                "--flush-log", image,
            ]
            process.standardOutput = handle
            process.standardError = FileHandle.nullDevice
            let done = DispatchSemaphore(value: 0)
            process.terminationHandler = { _ in done.signal() }
            try process.run()
            var wasKilled = false
            if done.wait(timeout: .now() + delay) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                wasKilled = true
                done.wait()
            }
            if !wasKilled {
                #expect(process.terminationStatus == 0, "vmimg bench exited \(process.terminationStatus)")
            } else if process.terminationReason == .exit {
                wasKilled = false  // it finished just before the signal
            }
            let text = String(
                decoding: (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data(), as: UTF8.self)
            let flushed =
                text.split(separator: "\n").compactMap { line -> Int? in
                    guard line.hasPrefix("flushed ") else { return nil }
                    return Int(line.dropFirst(8))
                }.max() ?? 0
            return (flushed, wasKilled)
        }
    }
}

/// One step of the short in-process workload.
struct FaultOp: Sendable {
    enum Kind: Sendable {
        case write(UInt8)
        case zero
        case flush
    }
    var kind: Kind
    var offset: Int = 0
    var length: Int = 0

    /// The byte the range reads as after this op.
    var fill: UInt8? {
        switch kind {
        case .write(let p): p
        case .zero: 0
        case .flush: nil
        }
    }
}

struct FaultCase: CustomStringConvertible, Sendable {
    var clusterSize: Int
    var backing: Bool
    var description: String { "cluster_size=\(clusterSize) backing=\(backing)" }
}

let faultCases = [
    FaultCase(clusterSize: 512, backing: false), FaultCase(clusterSize: 4096, backing: true),
]

/// Power cuts and I/O errors injected at every mutation of a short workload, in process.
extension HeavyEngineTests {
    @Suite struct FaultInjectionCrashTests {
        static let size = 2 << 20

        /// A fixed image and workload per case; the scratch directory holds the backing file.
        struct Fixture {
            var scratch: Scratch
            var imageBytes: [UInt8]
            var baseModel: [UInt8]
            var ops: [FaultOp]
            var backing: (any VirtualDisk)?
            var seed: UInt64
        }

        static func fixture(_ c: FaultCase) throws -> Fixture {
            var rng = SplitMix64.fromEnvironment()
            let scratch = try Scratch(label: "fault")
            let image = scratch.path("image.qcow2")
            var model = [UInt8](repeating: 0, count: size)
            var backing: (any VirtualDisk)?
            if c.backing {
                let base = scratch.path("base.raw")
                try Qemu.img(["create", "-q", "-f", "raw", base, "\(size)"]).checked()
                try Qemu.io(base, format: "raw", commands: ["write -P 0x77 0 \(size)"])
                model = [UInt8](repeating: 0x77, count: size)
                try Qemu.create(
                    image, size: nil, options: ["cluster_size=\(c.clusterSize)"], backing: "base.raw",
                    backingFormat: "raw")
                backing = try ImageOpener.open(base, options: OpenOptions(format: "raw", forceShare: true))
            } else {
                try Qemu.create(image, size: "\(size)", options: ["cluster_size=\(c.clusterSize)"])
            }
            var ops: [FaultOp] = []
            for i in 0..<14 {
                if i % 4 == 3 {
                    ops.append(FaultOp(kind: .flush))
                    continue
                }
                let length = 1 + Int(rng.next() % 12000)
                let offset = Int(rng.next() % UInt64(size - length))
                let kind: FaultOp.Kind = rng.next() % 5 == 0 ? .zero : .write(UInt8(0x10 + i))
                ops.append(FaultOp(kind: kind, offset: offset, length: length))
            }
            ops.append(FaultOp(kind: .flush))
            return Fixture(
                scratch: scratch, imageBytes: try TestSupport.bytes(image), baseModel: model, ops: ops,
                backing: backing,
                seed: rng.seed)
        }

        /// Runs the workload; returns how many ops a completed flush acknowledged and the first error.
        static func run(_ f: Fixture, on device: any BlockDevice) -> (
            acked: Int, error: (any Error)?, image: QCow2Image?, completed: Int
        ) {
            let image: QCow2Image
            do {
                let (header, extensions) = try QCow2Image.readHeader(from: device)
                image = try QCow2Image(
                    device: device, filename: "fault.qcow2", header: header, extensions: extensions,
                    writable: true,
                    backing: f.backing)
            } catch {
                return (0, error, nil, 0)
            }
            var acked = 0
            for (i, op) in f.ops.enumerated() {
                do {
                    switch op.kind {
                    case .write(let p):
                        try image.write(
                            [UInt8](repeating: p, count: op.length), range: 0..<op.length, at: UInt64(op.offset))
                    case .zero:
                        try image.writeZeroes(at: UInt64(op.offset), count: UInt64(op.length))
                    case .flush:
                        try image.flush()
                        acked = i + 1
                    }
                } catch {
                    return (acked, error, image, i)
                }
            }
            return (acked, nil, image, f.ops.count)
        }

        /// The surviving file must check clean (leaks allowed) and hold every acknowledged op; bytes
        /// that later ops touched may hold any value one of them wrote.
        static func verify(_ f: Fixture, surviving bytes: [UInt8], acked: Int, label: String) throws {
            let path = f.scratch.path("survivor.qcow2")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let check = try Qemu.img(["check", path])
            #expect([0, 3].contains(check.status), "qemu-img check \(label): \(check.stdoutText)")
            guard [0, 3].contains(check.status) else { return }
            var model = f.baseModel
            for op in f.ops.prefix(acked) {
                if let fill = op.fill { for k in op.offset..<(op.offset + op.length) { model[k] = fill } }
            }
            let disk = try ImageOpener.open(path, options: OpenOptions(format: "qcow2", forceShare: true))
            let actual = try disk.read(count: size, at: 0)
            var bad: Int?
            for k in 0..<size where actual[k] != model[k] {
                let later = f.ops.dropFirst(acked).contains { op in
                    op.fill == actual[k] && (op.offset..<(op.offset + op.length)).contains(k)
                }
                if !later {
                    bad = k
                    break
                }
            }
            #expect(
                bad == nil,
                "byte \(bad ?? -1) = \(bad.map { actual[$0] } ?? 0), expected \(bad.map { model[$0] } ?? 0) \(label)"
            )
        }

        /// Mutations the clean workload makes: every index gets a fault in the tests below.
        static func mutationCount(_ f: Fixture) throws -> Int {
            let device = FaultInjectingDevice(wrapping: MemoryDevice(bytes: f.imageBytes))
            let (acked, error, _, _) = run(f, on: device)
            #expect(error == nil && acked == f.ops.count)
            return device.mutationCount
        }

        @Test(arguments: faultCases)
        func powerCutAtEveryWriteKeepsFlushedData(_ c: FaultCase) throws {
            let f = try Self.fixture(c)
            let total = try Self.mutationCount(f)
            var cuts = 0
            for policy in [FaultInjectingDevice.PowerLossPolicy.dropAll, .keepRandom(seed: f.seed)] {
                for n in 1...total {
                    let device = FaultInjectingDevice(wrapping: MemoryDevice(bytes: f.imageBytes))
                    device.inject(.powerLoss(beforeMutation: n, policy: policy))
                    let (acked, error, _, _) = Self.run(f, on: device)
                    #expect(error != nil, "power cut at mutation \(n) not reported (seed=\(f.seed))")
                    guard let base = device.base as? MemoryDevice else { return }
                    try Self.verify(
                        f, surviving: base.bytes, acked: acked,
                        label: "\(c) \(policy) cut=\(n)/\(total) seed=\(f.seed)")
                    cuts += 1
                }
            }
            print("power cut \(c): \(cuts) cuts over \(total) mutations, seed=\(f.seed)")
        }

        @Test(arguments: faultCases)
        func ioErrorsReachCallerAndLeaveImageConsistent(_ c: FaultCase) throws {
            let f = try Self.fixture(c)
            let total = try Self.mutationCount(f)
            for (name, errno) in [("EIO", EIO), ("ENOSPC", ENOSPC)] {
                for n in 1...total {
                    let device = FaultInjectingDevice(wrapping: MemoryDevice(bytes: f.imageBytes))
                    // EIO: one failed write, then the caller closes (retrying the flush). ENOSPC: the disk stays full.
                    device.inject(
                        errno == EIO
                            ? .failMutation(number: n, errno: errno) : .failMutations(from: n, errno: errno))
                    let (acked, error, image, completed) = Self.run(f, on: device)
                    #expect(error != nil, "\(name) at mutation \(n) not reported (seed=\(f.seed))")
                    if let blockError = error as? BlockIOError { #expect(blockError.errno == errno) }
                    // After a transient error, a close that succeeds makes every op before the failed one durable.
                    let closed = image != nil && (try? image?.close()) != nil
                    guard let base = device.base as? MemoryDevice else { return }
                    try Self.verify(
                        f, surviving: base.bytes, acked: closed ? completed : acked,
                        label: "\(c) \(name) at=\(n)/\(total) closed=\(closed) seed=\(f.seed)")
                }
            }
        }

        @Test(arguments: faultCases)
        func failedFlushIsReportedAndRetried(_ c: FaultCase) throws {
            let f = try Self.fixture(c)
            let clean = FaultInjectingDevice(wrapping: MemoryDevice(bytes: f.imageBytes))
            _ = Self.run(f, on: clean)
            for n in 1...clean.flushCount {
                let device = FaultInjectingDevice(wrapping: MemoryDevice(bytes: f.imageBytes))
                device.inject(.failFlush(number: n, errno: EIO))
                let (acked, error, image, _) = Self.run(f, on: device)
                #expect(error != nil, "flush \(n) failure not reported (seed=\(f.seed))")
                try? image?.close()
                guard let base = device.base as? MemoryDevice else { return }
                try Self.verify(
                    f, surviving: base.bytes, acked: acked, label: "\(c) failFlush=\(n) seed=\(f.seed)")
            }
        }
    }
}
