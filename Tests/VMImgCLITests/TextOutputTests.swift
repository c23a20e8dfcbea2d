import BlockIO
import Foundation
import Testing

@testable import VMImgCLI

/// ``TextOutput``'s printf path against Foundation's `String(format:)`, which the renderers used
/// before: the same text for ties, tiny and huge values and random percentages.
@Suite struct TextOutputTests {
    static let values: [Double] = [
        0, -0.0, 0.005, 0.015, 0.125, 0.375, 0.78125, 1, 12.5, 99.995, 99.999, 100, 1023.5, 1_000_000.5,
        1e-300, 1e300, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity, 1.0 / 3,
        2.0 / 3, .leastNonzeroMagnitude, 123_456_789.125,
    ]

    @Test func matchesStringFormat() {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<2000).map { _ in Double.random(in: 0...100, using: &generator) }
        let ratios = (1...150).flatMap { total in (0...total).map { Double($0) * 100.0 / Double(total) } }
        for value in Self.values + random + ratios {
            #expect(TextOutput.fixed(value, precision: 2) == String(format: "%0.2f", value), "\(value)")
            #expect(TextOutput.general(value, precision: 3) == String(format: "%0.3g", value), "\(value)")
            #expect(TextOutput.general(value, precision: 17) == String(format: "%.17g", value), "\(value)")
        }
        #expect(TextOutput.fixed(.nan, precision: 2) == String(format: "%0.2f", Double.nan))
    }

    @Test func sizesAsQemuPrintsThem() {
        #expect(HumanFormat.size(UInt64(0)) == "0 B")
        #expect(HumanFormat.size(UInt64(580 * 1024)) == "580 KiB")
        #expect(HumanFormat.size(UInt64(1_310_720)) == "1.25 MiB")
        #expect(HumanFormat.size(UInt64(1) << 30) == "1 GiB")
        #expect(HumanFormat.size(UInt64(1000)) == "0.977 KiB")
    }
}
