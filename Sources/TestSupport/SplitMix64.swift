import Foundation

/// A small, fast, seedable random number generator (Steele, Lea & Flood's SplitMix64) for
/// randomized tests that must be rerunnable.
///
/// ```swift
/// var rng = SplitMix64.fromEnvironment()          // prints "VMIMG_SEED=… " to stderr
/// let offset = UInt64.random(in: 0..<size, using: &rng)
/// #expect(ok, "seed=\(rng.seed)")
/// ```
/// Rerun a failure with `VMIMG_SEED=<seed> swift test --filter <test>`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The seed this generator started from; put it in every failure message.
    public let seed: UInt64
    private var state: UInt64

    /// Creates a generator that always yields the same sequence for `seed`.
    /// - Parameter seed: any value.
    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// Takes the seed from `VMIMG_SEED` (decimal or `0x` hex) or picks a random one, and prints
    /// `VMIMG_SEED=<seed> (<label>)` to stderr so a failing run can be repeated.
    /// - Parameter label: names the test in the printed line, e.g. `#function`.
    /// - Returns: the seeded generator.
    public static func fromEnvironment(_ label: String = #function) -> SplitMix64 {
        let seed = environmentSeed() ?? UInt64.random(in: .min ... .max)
        FileHandle.standardError.write(Data("VMIMG_SEED=\(seed) (\(label))\n".utf8))
        return SplitMix64(seed: seed)
    }

    /// The seed in `VMIMG_SEED`, if set and valid.
    public static func environmentSeed() -> UInt64? {
        guard let text = ProcessInfo.processInfo.environment["VMIMG_SEED"], !text.isEmpty else { return nil }
        if text.hasPrefix("0x") { return UInt64(text.dropFirst(2), radix: 16) }
        return UInt64(text)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        // The constants and shifts are SplitMix64's; the arithmetic wraps by design.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes.
    /// - Parameter count: how many.
    /// - Returns: the bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = next()
            for _ in 0..<min(8, count - out.count) {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return out
    }
}
