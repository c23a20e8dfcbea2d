import BlockIO
import ImageKit
import QCow2
import QCow2Format
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
        cacheBytes: 1 << 20, requireDataFile: false)
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
}
