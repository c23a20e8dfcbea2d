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
