import BlockIO
import Testing

/// `firstDifference` (memcmp in C) against a plain byte loop, at every kind of position.
@Suite struct FirstDifferenceTests {
    @Test func matchesByteLoop() {
        var generator = SystemRandomNumberGenerator()
        let base = (0..<20_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for position in [0, 1, 511, 512, 4095, 4096, 4097, 8191, 12_345, 19_999] {
            var other = base
            other[position] ^= 0x5A
            for count in [0, 1, position, position + 1, 20_000] where count <= base.count {
                let naive = (0..<count).first { base[$0] != other[$0] }
                #expect(firstDifference(base, other, count: count) == naive, "\(position) \(count)")
            }
        }
        #expect(firstDifference(base, base, count: base.count) == nil)
        #expect(firstDifference([], [], count: 0) == nil)
    }
}

/// The offset form over windows that start at different indices (`compare` with `AlignedBytes`).
@Suite struct OffsetFirstDifferenceTests {
    @Test func matchesByteLoopAtOffsets() {
        var generator = SystemRandomNumberGenerator()
        let x = (0..<9_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for (xStart, yStart) in [(0, 0), (0, 37), (4096, 1), (123, 4000)] {
            var y = [UInt8](repeating: 0, count: yStart) + x[xStart...] + [1, 2, 3]
            let count = x.count - xStart
            #expect(firstDifference(x, from: xStart, y, from: yStart, count: count) == nil)
            for position in [0, 1, 4095, count - 1] {
                y[yStart + position] ^= 0xFF
                #expect(firstDifference(x, from: xStart, y, from: yStart, count: count) == position)
                #expect(firstDifference(x, from: xStart, y, from: yStart, count: position) == nil)
                y[yStart + position] ^= 0xFF
            }
        }
        #expect(firstDifference([], from: 0, [], from: 0, count: 0) == nil)
    }
}

/// `AlignedBytes`: the window starts on a page boundary and survives being filled in place.
@Suite struct AlignedBytesTests {
    @Test func windowIsPageAligned() throws {
        for count in [1, 4096, 65_537, 2 << 20] {
            var buffer = AlignedBytes(count: count)
            #expect(buffer.count == count)
            #expect(buffer.bytes.count >= buffer.base + count)
            #expect(buffer.indices(0..<count) == buffer.base..<(buffer.base + count))
            // Filled in place through `bytes` (as `pread` does): still the same storage, aligned.
            let before = buffer.bytes.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) }
            for i in buffer.indices(0..<count) { buffer.bytes[i] = 0 }
            buffer.bytes[buffer.base + count - 1] = 7
            let after = buffer.bytes.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) }
            #expect(before == after)
            #expect((after + buffer.base) % AlignedBytes.alignment == 0)
            #expect(buffer.firstNonZero(0..<count) == count - 1)
            #expect(count == 1 || buffer.firstNonZero(0..<(count - 1)) == nil)
        }
    }
}
