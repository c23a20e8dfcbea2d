import BlockIO
import Foundation
import TestSupport
import Testing

@Suite struct BlockFileTests {
    @Test func roundTripAndZeroFillPastEnd() throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("a.raw"), writable: true, create: true)
        let data = pattern(10_000, seed: 1)
        try file.write(data, at: 100)
        #expect(try file.length() == 10_100)
        #expect(try file.read(count: 10_000, at: 100) == data)
        // Straddling the end: data then zeros.
        let tail = try file.read(count: 200, at: 10_000)
        #expect(Array(tail[0..<100]) == Array(data[9_900..<10_000]))
        #expect(tail[100...].allSatisfy { $0 == 0 })
        // Entirely past the end, through the protocol's buffer API, leaves other bytes alone.
        var buffer = [UInt8](repeating: 0xAA, count: 64)
        try file.read(into: &buffer, range: 16..<48, at: 1 << 30)
        #expect(buffer[0..<16].allSatisfy { $0 == 0xAA } && buffer[16..<48].allSatisfy { $0 == 0 })
        #expect(buffer[48...].allSatisfy { $0 == 0xAA })
        let device: any BlockDevice = file
        #expect(try device.read(count: 4, at: 100) == Array(data[0..<4]))
    }

    @Test func readsIntoMutableSpan() throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("a.raw"), writable: true, create: true)
        try file.write(pattern(4096, seed: 2), at: 0)
        var buffer = [UInt8](repeating: 0xFF, count: 8192)
        var span = buffer.mutableSpan
        try file.read(into: &span, at: 0)
        _ = consume span
        #expect(Array(buffer[0..<4096]) == pattern(4096, seed: 2))
        #expect(buffer[4096...].allSatisfy { $0 == 0 })
    }

    @Test func rangeOutsideBufferIsAnError() throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("a.raw"), writable: true, create: true)
        var buffer = [UInt8](repeating: 0, count: 8)
        let error = #expect(throws: BlockIOError.self) { try file.read(into: &buffer, range: 4..<12, at: 0) }
        #expect(error?.errno == 22)
        #expect(throws: BlockIOError.self) { try file.write([1, 2], range: 0..<3, at: 0) }
    }

    @Test func refusesDirectoriesEvenReadOnly() throws {
        let scratch = try Scratch()
        for writable in [false, true] {
            let error = #expect(throws: BlockIOError.self) {
                try BlockFile(path: scratch.directory, writable: writable)
            }
            #expect(error?.errno == 21)
            #expect(error?.description == "\(scratch.directory): open failed: Is a directory")
        }
    }

    @Test func openErrors() throws {
        let scratch = try Scratch()
        let missing = scratch.path("missing")
        let error = #expect(throws: BlockIOError.self) { try BlockFile(path: missing, writable: false) }
        #expect(error?.errno == 2)
        #expect(!BlockFile.exists(missing))
        _ = try BlockFile(path: missing, writable: true, create: true)
        #expect(BlockFile.exists(missing))
        let readOnly = try BlockFile(path: missing, writable: false)
        #expect(throws: BlockIOError.self) { try readOnly.write([1], at: 0) }
        #expect(throws: BlockIOError.self) { try readOnly.setLength(10) }
    }

    @Test func truncateOnOpen() throws {
        let scratch = try Scratch()
        let path = scratch.path("t.raw")
        try BlockFile(path: path, writable: true, create: true).write([1, 2, 3], at: 0)
        #expect(try BlockFile(path: path, writable: false).length() == 3)
        #expect(throws: BlockIOError.self) { try BlockFile(path: path, writable: false, truncate: true) }
        #expect(try BlockFile(path: path, writable: false).length() == 3)
        #expect(try BlockFile(path: path, writable: true, truncate: true).length() == 0)
    }

    @Test func fileKinds() throws {
        let scratch = try Scratch()
        let path = scratch.path("k.raw")
        let file = try BlockFile(path: path, writable: true, create: true)
        #expect(file.isRegularFile)
        #expect(try BlockFile.kind(of: path) == .regular)
        #expect(try BlockFile.kind(of: scratch.directory) == .directory)
        #expect(try BlockFile.kind(of: "/dev/null") == .characterDevice)
        #expect(try !BlockFile(path: "/dev/null", writable: false).isRegularFile)
        let fifo = scratch.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(try BlockFile.kind(of: fifo) == .fifo)
        let link = scratch.path("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        #expect(try BlockFile.kind(of: link, followSymlinks: false) == .symlink)
        #expect(try BlockFile.kind(of: link) == .regular)
    }

    @Test func sparseFileHolesAndData() throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("sparse.raw"), writable: true, create: true)
        let mib: UInt64 = 1 << 20
        try file.setLength(16 * mib)
        try file.write([UInt8](repeating: 7, count: 65536), at: 4 * mib)
        #expect(try file.nextData(from: 0) == 4 * mib)
        #expect(try file.nextHole(from: 4 * mib) == 4 * mib + 65536)
        #expect(try file.nextData(from: 5 * mib) == nil)
        #expect(try file.nextHole(from: 0) == 0)
        #expect(try file.nextHole(from: 16 * mib) == 16 * mib)  // at the end
        // Punching the data out leaves the length and reads zeros.
        try file.discard(offset: 4 * mib, count: 65536)
        #expect(try file.length() == 16 * mib)
        #expect(try file.read(count: 65536, at: 4 * mib).allSatisfy { $0 == 0 })
        #expect(try file.nextData(from: 0) == nil)
    }

    @Test func discardPastEndKeepsLengthAndZeroRange() throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("d.raw"), writable: true, create: true)
        try file.write([UInt8](repeating: 9, count: 8192), at: 0)
        try file.discard(offset: 4096, count: 1 << 20)
        #expect(try file.length() == 8192)
        #expect(try file.read(count: 4096, at: 4096).allSatisfy { $0 == 0 })
        #expect(try file.read(count: 4096, at: 0).allSatisfy { $0 == 9 })
        try file.zeroRange(offset: 0, count: 100)
        #expect(try file.read(count: 101, at: 0) == [UInt8](repeating: 0, count: 100) + [9])
        #expect(try file.length() == 8192)
    }

    @Test func preallocateExtends() throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("p.raw"), writable: true, create: true)
        try file.preallocate(offset: 0, count: 1 << 20)
        #expect(try file.length() == 1 << 20)
        file.advise(.sequential)
        try file.flush()
    }

    @Test func copyBetweenFiles() throws {
        let scratch = try Scratch()
        let source = try BlockFile(path: scratch.path("s.raw"), writable: true, create: true)
        let data = pattern(300_000, seed: 3)
        try source.write(data, at: 0)
        let target = try BlockFile(path: scratch.path("t.raw"), writable: true, create: true)
        #expect(try target.copy(from: source, at: 1000, count: 200_000, to: 5) == 200_000)
        #expect(try target.read(count: 200_000, at: 5) == Array(data[1000..<201_000]))
        // Past the end of the source only what exists is copied.
        #expect(try target.copy(from: source, at: 299_000, count: 5000, to: 0) == 1000)
    }

    @Test func concurrentPositionalIO() async throws {
        let scratch = try Scratch()
        let file = try BlockFile(path: scratch.path("c.raw"), writable: true, create: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    let data = pattern(65536, seed: UInt64(i))
                    try file.write(data, at: UInt64(i) * 65536)
                    #expect(try file.read(count: 65536, at: UInt64(i) * 65536) == data)
                }
            }
            try await group.waitForAll()
        }
        #expect(try file.length() == 8 * 65536)
    }
}
