import BlockIO
import Foundation
import FuzzSupport
import ImageKit
import QCow2
import QCow2Format
import TestSupport
import Testing

// Inputs found by the libFuzzer targets in Fuzz/ (`Fuzz/run.sh`), rebuilt here byte for byte or
// from the fields that matter. Each must now end in a clean error (or a clean result), never a trap.

/// A v3 header (cluster_bits 9 unless given) followed by `tail`, as the fuzzer's inputs start.
func fuzzHeader(clusterBits: UInt32 = 9, size: UInt64 = 0, _ edit: (inout QCow2Header) -> Void = { _ in })
    -> [UInt8]
{
    var h = QCow2Header(version: 3, clusterBits: clusterBits, size: size)
    edit(&h)
    return h.encode()
}

/// Parses bytes the way `QCow2Image.readHeader` does, on a memory device.
func openFuzzed(_ bytes: [UInt8], writable: Bool = false) throws -> QCow2Image {
    let device = MemoryDevice(bytes: bytes, name: "fuzz.qcow2", writable: writable)
    let (header, extensions) = try QCow2Image.readHeader(from: device)
    return try QCow2Image(
        device: device, filename: "fuzz.qcow2", header: header, extensions: extensions, writable: writable,
        cache: QCow2CacheOptions(cacheSize: 1 << 20), requireDataFile: false)
}

/// A fresh image on a memory device with guest cluster 0 written, so L1[0] → L2 → one data cluster.
func fuzzBaseImage(clusterBits: UInt32 = 9, size: UInt64 = 1 << 20) throws -> MemoryDevice {
    let device = MemoryDevice(name: "fuzz.qcow2")
    var options = QCow2CreateOptions(size: size)
    options.clusterBits = clusterBits
    try QCow2Image.create(on: device, filename: "fuzz.qcow2", options: options)
    let image = try openFuzzed(device.bytes, writable: true)
    let cs = 1 << Int(clusterBits)
    try image.write([UInt8](repeating: 0x11, count: cs), range: 0..<cs, at: 0)
    try image.close()
    return MemoryDevice(bytes: (image.file as! MemoryDevice).bytes, name: "fuzz.qcow2")
}

/// Byte offset of guest cluster `index`'s L2 entry in `bytes` (L1[0]'s table).
func l2EntryOffset(_ bytes: [UInt8], index: Int = 0) throws -> Int {
    let header = try QCow2Header(decoding: bytes)
    let l2 = bytes.bigEndianUInt64(at: Int(header.l1TableOffset)) & L1Entry.offsetMask
    return Int(l2) + 8 * index
}

@Suite struct FuzzRegressionTests {
    /// FuzzHeader crash-350ae863: header_length 105 put the extension area inside the 8-byte
    /// compression field, so cluster 0 re-encoded (header_length kept, 112 bytes written) lost
    /// its extensions. The spec's multiple-of-8 rule is now enforced.
    @Test func headerLengthNotMultipleOf8() throws {
        var bytes = fuzzHeader { $0.headerLength = 112 }
        bytes.replaceSubrange(100..<104, with: [0, 0, 0, 105])
        bytes += [0x00, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 512 - 128)
        #expect(throws: QCow2Error.invalid(field: "header_length", reason: "105 is not a multiple of 8")) {
            try QCow2Header(decoding: bytes)
        }
        for length: UInt8 in [104, 112, 120] {
            bytes.replaceSubrange(100..<104, with: [0, 0, 0, length])
            #expect(throws: Never.self) { try QCow2Header(decoding: bytes) }
        }
    }

    /// FuzzWrite crash-1fd995bd: a COPIED L2 entry pointing at host 0x1f7fb3a6aada00 (far past the
    /// end of a 110 KB file) took a partial write-zeroes in place; the memory device grew towards
    /// 8 PiB. In-place writes now check the cluster (aligned, inside the file) and mark the image corrupt.
    @Test func inPlaceWritePastEndOfFile() throws {
        var bytes = try fuzzBaseImage().bytes
        let at = try l2EntryOffset(bytes)
        bytes.setBigEndianUInt64(0x001f_7fb3_a6aa_da00 | L2Entry.copiedFlag, at: at)
        let image = try openFuzzed(bytes, writable: true)
        #expect(throws: QCow2Error.self) { try image.writeZeroes(at: 100, count: 10) }
        #expect(throws: QCow2Error.self) { try image.write([1, 2, 3], range: 0..<3, at: 7) }
        // Nothing was written past the end, and the image refuses further writes.
        #expect((image.file as! MemoryDevice).bytes.count == bytes.count)
        #expect(throws: QCow2Error.self) { try image.write([1], range: 0..<1, at: 4096) }
    }

    /// Same path, unaligned host offset (QEMU's handle_copied check): the write would straddle two
    /// host clusters, one of them possibly metadata.
    @Test func inPlaceWriteUnalignedHostCluster() throws {
        var bytes = try fuzzBaseImage(clusterBits: 12).bytes
        let at = try l2EntryOffset(bytes)
        let host = bytes.bigEndianUInt64(at: at) & L2Entry.offsetMask
        bytes.setBigEndianUInt64((host + 512) | L2Entry.copiedFlag, at: at)
        let image = try openFuzzed(bytes, writable: true)
        let before = (image.file as! MemoryDevice).bytes
        #expect(throws: QCow2Error.self) { try image.write([1, 2, 3], range: 0..<3, at: 0) }
        #expect((image.file as! MemoryDevice).bytes == before)
    }

    /// FuzzImage (found by reading the harness's access pattern against a snapshot seed): a snapshot
    /// whose disk_size is 2^64 − 1 made a read near its end compute the end of the last L1 range,
    /// 2^64, and trap on overflow. The lookup now clamps that range.
    @Test func snapshotDiskSizeNear2To64() throws {
        var bytes = try fuzzBaseImage().bytes
        let header = try QCow2Header(decoding: bytes)
        var snapshot = SnapshotEntry(
            l1TableOffset: header.l1TableOffset, l1Size: header.l1Size, id: "1", name: "s", diskSize: UInt64.max)
        snapshot.vmStateSize = 0
        let table = SnapshotTable.encode([snapshot])
        let tableOffset = (bytes.count + 511) / 512 * 512
        bytes += [UInt8](repeating: 0, count: tableOffset - bytes.count) + table
        bytes.replaceSubrange(60..<64, with: [0, 0, 0, 1])
        bytes.setBigEndianUInt64(UInt64(tableOffset), at: 64)

        let image = try openFuzzed(bytes)
        let disk = try SnapshotView(image: image, selector: .id("1"))
        #expect(disk.virtualSize == UInt64.max)
        let tail = try disk.read(count: 4096, at: UInt64.max - 3)
        #expect(tail.allSatisfy { $0 == 0 })
        let status = try disk.blockStatus(at: UInt64.max - 3, maxLength: 3)
        #expect(status.kind == .unallocated(hostOffset: nil) && status.length == 3)
        #expect(try disk.read(count: 512, at: 0) == [UInt8](repeating: 0x11, count: 512))
    }

    /// FuzzHeader crash-972d5914: a 10-byte backing format extension holding 0xff 0xff 0xf9 decoded
    /// with U+FFFD replacements; cluster 0 re-encoded it as 16 bytes, which the decoder then refused
    /// (limit 15). Names in cluster 0 must now be valid UTF-8.
    @Test func backingFormatNotUTF8() throws {
        var bytes = fuzzHeader(clusterBits: 12) { $0.headerLength = 112 }
        let format: [UInt8] = [0, 0, 0, 0x0c, 0, 0xff, 0xff, 0xf9, 0, 0x10]
        bytes += [0xe2, 0x79, 0x2a, 0xca, 0, 0, 0, 10] + format + [0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        bytes += [UInt8](repeating: 0, count: 4096 - bytes.count)
        let header = try QCow2Header(decoding: bytes)
        #expect(throws: QCow2Error.invalid(field: "backing format extension", reason: "not valid UTF-8")) {
            try HeaderExtensions(decoding: bytes, header: header)
        }
        // A valid name (NULs included) still decodes and survives re-encoding.
        bytes.replaceSubrange(120..<130, with: [0, 0, 0, 0x0c, 0, 0x71, 0x63, 0x6f, 0, 0x10])
        let extensions = try HeaderExtensions(decoding: bytes, header: header)
        var newHeader = header
        let cluster0 = try #require(extensions.encodeCluster0(header: &newHeader))
        let again = try HeaderExtensions(decoding: cluster0, header: try QCow2Header(decoding: cluster0))
        #expect(again.backingFormat == extensions.backingFormat)
    }
}

/// Inputs the fuzz targets stopped on, kept byte for byte in `Samples/fuzz-regressions/<Target>/`
/// and replayed through the same target bodies (FuzzSupport). Each must finish, quickly, without a
/// trap: FuzzWrite's timeouts were an allocator that kept creating refcount blocks for a hostile
/// refcount table (before QEMU's alloc_refcount_block placement); FuzzHeader's crash was a snapshot
/// ID of 2^64 − 1 overflowing the next-ID arithmetic.
@Suite struct FuzzFindingReplayTests {
    static func inputs(_ target: String) -> [String] {
        let dir = Locations.samples + "/fuzz-regressions/" + target
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.sorted().map { dir + "/" + $0 }
    }

    @Test func findingsReplayCleanly() throws {
        let cases: [(String, ([UInt8]) -> Void)] = [
            ("FuzzHeader", HeaderTarget.run), ("FuzzImage", ImageTarget.run), ("FuzzWrite", WriteTarget.run),
        ]
        var replayed = 0
        for (target, run) in cases {
            for path in Self.inputs(target) {
                let bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
                let clock = ContinuousClock()
                let elapsed = clock.measure { run(bytes) }
                #expect(elapsed < .seconds(10), "\(path) took \(elapsed)")
                replayed += 1
            }
        }
        #expect(replayed >= 4, "fuzz regression inputs missing under Samples/fuzz-regressions")
    }
}
