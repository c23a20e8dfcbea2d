import BlockIO
import Foundation
import TestSupport
import Testing

@Suite struct MemoryDeviceTests {
    @Test func roundTripGrowAndZeroFill() throws {
        let device = MemoryDevice()
        try device.write([1, 2, 3], at: 5)
        #expect(try device.length() == 8)
        #expect(try device.read(count: 10, at: 3) == [0, 0, 1, 2, 3, 0, 0, 0, 0, 0])
        try device.discard(offset: 6, count: 100)
        #expect(device.bytes == [0, 0, 0, 0, 0, 1, 0, 0])
        try device.setLength(2)
        #expect(try device.length() == 2)
        #expect(try device.nextData(from: 0) == 0)
        #expect(try device.nextData(from: 2) == nil)
        #expect(try device.nextHole(from: 0) == 2)
        let table: [UInt64] = [0x8000_0000_0005_0000, 1, .max]
        try device.writeTable(table, at: 512)
        #expect(try device.readTable(at: 512, count: 3) == table)
        #expect(try device.read(count: 2, at: 512) == [0x80, 0])
        #expect(throws: BlockIOError.self) { try MemoryDevice(writable: false).write([1], at: 0) }
    }
}

@Suite struct FaultInjectingDeviceTests {
    @Test func failsTheNthMutation() throws {
        let disk = FaultInjectingDevice(wrapping: MemoryDevice())
        disk.inject(.failMutation(number: 2, errno: 5))
        try disk.write([1], at: 0)
        let error = #expect(throws: BlockIOError.self) { try disk.write([2], at: 1) }
        #expect(error?.errno == 5)
        try disk.write([3], at: 2)
        #expect(try disk.base.read(count: 3, at: 0) == [1, 0, 3])
        #expect(disk.mutationCount == 3)
    }

    @Test func fullDiskStaysFull() throws {
        let disk = FaultInjectingDevice(wrapping: MemoryDevice())
        disk.inject(.failMutations(from: 2, errno: 28))
        try disk.write([1], at: 0)
        for _ in 0..<3 {
            #expect(
                throws: BlockIOError(
                    path: "memory", operation: "write", errno: 28,
                    detail: "injected failure of mutation \(disk.mutationCount + 1)")
            ) {
                try disk.write([2], at: 1)
            }
        }
    }

    @Test func shortWriteStoresPrefix() throws {
        let disk = FaultInjectingDevice(wrapping: MemoryDevice())
        disk.inject(.shortWrite(number: 1, keeping: 3, errno: 28))
        let error = #expect(throws: BlockIOError.self) { try disk.write([1, 2, 3, 4, 5], at: 0) }
        #expect(error?.errno == 28)
        #expect(try disk.base.length() == 3)
    }

    @Test func failedFlushKeepsWritesUnflushed() throws {
        let disk = FaultInjectingDevice(wrapping: MemoryDevice())
        disk.inject(.failFlush(number: 1, errno: 5))
        disk.inject(.failRead(number: 1, errno: 5))
        try disk.write([1], at: 0)
        #expect(throws: BlockIOError.self) { try disk.flush() }
        #expect(disk.unflushedCount == 1)
        #expect(throws: BlockIOError.self) { try disk.read(count: 1, at: 0) }
        #expect(try disk.read(count: 1, at: 0) == [1])
        try disk.flush()
        #expect(disk.unflushedCount == 0)
    }

    @Test(arguments: [
        (FaultInjectingDevice.PowerLossPolicy.dropAll, [UInt8]([1, 1, 0, 0])),
        (.keepAll, [1, 2, 3, 3, 4, 4]),
        (.keepFirst(1), [1, 2, 0, 0]),
    ])
    func powerCutKeepsFlushedData(policy: FaultInjectingDevice.PowerLossPolicy, expected: [UInt8]) throws {
        let disk = FaultInjectingDevice(wrapping: MemoryDevice())
        try disk.write([1, 1, 0, 0], at: 0)
        try disk.flush()
        try disk.write([2], at: 1)
        try disk.write([3, 3], at: 2)
        try disk.setLength(5)
        try disk.write([4, 4], at: 4)
        let cut = try disk.cutPower(policy)
        #expect(cut.unflushed == 4)
        #expect(disk.isPoweredOff)
        #expect((disk.base as? MemoryDevice)?.bytes == expected)
        #expect(throws: BlockIOError.self) { try disk.read(count: 1, at: 0) }
        #expect(throws: BlockIOError.self) { try disk.write([1], at: 0) }
    }

    @Test func truncationIsUndoneByPowerCut() throws {
        let disk = FaultInjectingDevice(wrapping: MemoryDevice(bytes: [1, 2, 3, 4]))
        try disk.setLength(1)
        try disk.write([9], at: 3)
        try disk.cutPower(.dropAll)
        #expect((disk.base as? MemoryDevice)?.bytes == [1, 2, 3, 4])
    }

    /// Crash before every mutation of a workload, keeping a random subset of unflushed writes:
    /// whatever was flushed must read back, and unflushed writes are all-or-nothing.
    @Test func crashAtEveryPointKeepsFlushedData() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let writes = (0..<12).map { pattern(700, seed: seed &+ UInt64($0)) }
        func workload(_ disk: FaultInjectingDevice) throws {
            for (i, data) in writes.enumerated() {
                try disk.write(data, at: UInt64(i) * 1000)
                if i % 3 == 2 { try disk.flush() }
            }
        }
        for crashPoint in 1...writes.count + 1 {
            let disk = FaultInjectingDevice(wrapping: MemoryDevice())
            disk.inject(.powerLoss(beforeMutation: crashPoint, policy: .keepRandom(seed: seed &+ UInt64(crashPoint))))
            do { try workload(disk) } catch {}
            if !disk.isPoweredOff { try disk.cutPower(.keepRandom(seed: seed)) }
            let flushedCount = (crashPoint - 1) / 3 * 3
            for (i, data) in writes.enumerated() {
                let got = try disk.base.read(count: 700, at: UInt64(i) * 1000)
                if i < flushedCount {
                    #expect(got == data, "seed=\(seed) crash=\(crashPoint) write=\(i)")
                } else {
                    #expect(got == data || got.allSatisfy { $0 == 0 }, "seed=\(seed) crash=\(crashPoint) write=\(i)")
                }
            }
        }
    }

    @Test func powerCutOnARealFile() throws {
        let scratch = try Scratch()
        let path = scratch.path("crash.raw")
        let disk = FaultInjectingDevice(wrapping: try BlockFile(path: path, writable: true, create: true))
        try disk.write(pattern(4096, seed: 5), at: 0)
        try disk.flush()
        try disk.write(pattern(8192, seed: 6), at: 2048)
        try disk.cutPower()
        let reopened = try BlockFile(path: path, writable: false)
        #expect(try reopened.length() == 4096)
        #expect(try reopened.read(count: 4096, at: 0) == pattern(4096, seed: 5))
    }
}
