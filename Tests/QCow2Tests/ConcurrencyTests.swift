import Foundation
import ImageKit
import QCow2
import BlockIO
import TestSupport
import Testing

/// Several threads on one `QCow2Image`: each owns a region it writes, zeroes and reads back while
/// the others run; all share one region whose writes go through a test lock that also updates the
/// shared model (so the model's order is the engine's); one thread flushes now and then.
extension HeavyEngineTests {
    @Suite struct ConcurrencyTests {
        @Test(arguments: [512, 65536])
        func concurrentWritersMatchModelAndCheckClean(clusterSize: Int) throws {
            let seed = SplitMix64.fromEnvironment().seed
            let scratch = try Scratch(label: "threads")
            let path = scratch.path("image.qcow2")
            let threads = 6
            let region = 1 << 20
            let size = region * (threads + 1)
            try Qemu.create(path, size: "\(size)", options: ["cluster_size=\(clusterSize)"])
            let image = try QCow2Image(path: path, writable: true)
            let shared = Locked([UInt8](repeating: 0, count: region))
            let sharedBase = threads * region
            let models = Locked([[UInt8]](repeating: [UInt8](repeating: 0, count: region), count: threads))
            let failures = Locked<[String]>([])
            DispatchQueue.concurrentPerform(iterations: threads + 1) { t in
                var rng = SplitMix64(seed: seed &+ UInt64(t) &* 0x9e37_79b9)
                if t == threads {
                    // The flusher.
                    for _ in 0..<40 {
                        do { try image.flush() } catch { failures.withLock { $0.append("flush: \(error)") } }
                        usleep(2000)
                    }
                    return
                }
                var own = [UInt8](repeating: 0, count: region)
                let base = t * region
                for i in 0..<150 {
                    let length = 1 + Int(rng.next() % 20000)
                    let offset = Int(rng.next() % UInt64(region - length))
                    let pattern = UInt8(truncatingIfNeeded: t * 40 + i % 40 + 1)
                    do {
                        switch rng.next() % 6 {
                        case 0:
                            try image.writeZeroes(at: UInt64(base + offset), count: UInt64(length))
                            for k in offset..<(offset + length) { own[k] = 0 }
                        case 1:
                            let got = try image.read(count: length, at: UInt64(base + offset))
                            if got != Array(own[offset..<(offset + length)]) {
                                failures.withLock { $0.append("thread \(t) read \(offset)+\(length) differs") }
                            }
                        case 2:
                            // Overlapping writes: the test lock orders engine and model together.
                            try shared.withLock { model in
                                try image.write(
                                    [UInt8](repeating: pattern, count: length), range: 0..<length,
                                    at: UInt64(sharedBase + offset))
                                for k in offset..<(offset + length) { model[k] = pattern }
                            }
                        default:
                            try image.write(
                                [UInt8](repeating: pattern, count: length), range: 0..<length,
                                at: UInt64(base + offset))
                            for k in offset..<(offset + length) { own[k] = pattern }
                        }
                    } catch {
                        failures.withLock { $0.append("thread \(t): \(error)") }
                    }
                }
                let final = own
                models.withLock { $0[t] = final }
            }
            #expect(failures.withLock { $0 } == [], "seed=\(seed)")
            try image.close()
            let content = try image.read(count: size, at: 0)
            var expected = models.withLock { $0.flatMap { $0 } }
            expected += shared.withLock { $0 }
            #expect(content == expected, "engine content differs from the model, seed=\(seed)")
            let raw = scratch.path("content.raw")
            try Qemu.convertToRaw(path, raw)
            #expect(try TestSupport.bytes(raw) == expected, "qemu-img reads other content, seed=\(seed)")
            let check = try Qemu.img(["check", path])
            #expect(check.status == 0, "\(check.stdoutText) seed=\(seed)")
        }

        /// The convert pipeline's threads (a reader planning and reading ahead, compression workers,
        /// the writer): the compressed copy reads back as the source and checks clean. Also the
        /// ThreadSanitizer target for that code (Samples/test.sh runs `ConcurrencyTests` under TSan).
        @Test func compressedConvertPipelineMatchesSource() throws {
            var rng = SplitMix64.fromEnvironment()
            let scratch = try Scratch(label: "pipeline")
            let source = scratch.path("source.qcow2")
            let output = scratch.path("output.qcow2")
            let cs = 65536
            let image = try ImageCreator.createQCow2(
                path: source, options: QCow2CreateOptions(size: UInt64(cs * 384)), openAfter: true)
            for cluster in stride(from: 0, to: 384, by: 3) {
                // Half random (stored uncompressed), half a repeated pattern (compressed).
                var bytes = rng.bytes(cs / 2)
                bytes += [UInt8](repeating: UInt8(cluster % 251), count: cs / 2)
                try image.write(bytes, range: 0..<cs, at: UInt64(cluster * cs))
            }
            try image.close()
            var target = ConvertTarget(path: output, format: .qcow2)
            target.compress = true
            target.threads = 4
            try Converter.convert(ConvertSource(disk: try QCow2Image(path: source)), to: target)
            try Qemu.img(["compare", "-f", "qcow2", "-F", "qcow2", source, output]).checked()
            let check = try Qemu.img(["check", "--output=json", output])
            #expect(check.status == 0, "\(check)")
            let report = try JSONSerialization.jsonObject(with: check.stdout) as? [String: Any]
            #expect((report?["compressed-clusters"] as? Int ?? 0) > 0, "\(check.stdoutText)")
        }
    }
}
