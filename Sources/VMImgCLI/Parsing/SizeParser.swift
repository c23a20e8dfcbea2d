import Foundation

/// Size arguments as qemu-img reads them (`qemu_strtosz` in util/cutils.c, `cvtnum` in qemu-img.c).
public enum SizeParser {
    /// Why a size string was rejected.
    public enum Failure: Error, Equatable {
        /// Not a number with an optional suffix (`-EINVAL`).
        case invalid
        /// Does not fit in 64 bits (`-ERANGE`).
        case outOfRange
    }

    /// Parses a decimal (optionally fractional) or `0x` hex number with an optional suffix
    /// `B`, `K`, `M`, `G`, `T`, `P`, `E` (either case, powers of 1024; `B` means bytes).
    /// Fractions need a suffix other than `B` and round to the nearest byte ("1.5M" = 1572864);
    /// hex takes no fraction; a minus sign is rejected.
    /// - Throws: ``Failure``.
    public static func parse(_ text: String) throws(Failure) -> UInt64 {
        let chars = Array(text.utf8)
        var i = 0
        while i < chars.count, chars[i] == 0x20 || (0x09...0x0D).contains(chars[i]) { i += 1 }
        if i < chars.count, chars[i] == UInt8(ascii: "+") { i += 1 }
        if i < chars.count, chars[i] == UInt8(ascii: "-") { throw .invalid }
        let digitsStart = i
        var value: UInt64 = 0
        while i < chars.count, let digit = decimal(chars[i]) {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { throw .outOfRange }
            value = sum
            i += 1
        }
        guard i > digitsStart else { throw .invalid }
        var fraction = 0.0
        if value == 0, i < chars.count, chars[i] | 0x20 == UInt8(ascii: "x") {
            // qemu 7.2 takes a suffix on hex ("0x10k", deprecated) but no fraction.
            (value, i) = try parseHex(chars, from: i + 1)
            if i < chars.count, chars[i] == UInt8(ascii: ".") { throw .invalid }
        } else if i < chars.count, chars[i] == UInt8(ascii: ".") {
            let start = i
            i += 1
            while i < chars.count, decimal(chars[i]) != nil { i += 1 }
            if i < chars.count, chars[i] | 0x20 == UInt8(ascii: "e") { throw .invalid }
            fraction = Double(String(decoding: chars[start..<i], as: UTF8.self)) ?? 0
        }
        var multiplier: UInt64 = 1
        if i < chars.count, let mul = suffixMultiplier(chars[i]) {
            multiplier = mul
            i += 1
        }
        guard i == chars.count else { throw .invalid }
        if multiplier == 1 {
            guard fraction == 0 else { throw .invalid }
            return value
        }
        // QEMU computes in 64.64 fixed point and rounds half up; exact for sane inputs.
        let (whole, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw .outOfRange }
        let part = (fraction * Double(multiplier)).rounded(.toNearestOrAwayFromZero)
        guard part < 0x1p64 else { throw .outOfRange }
        let (total, overflow2) = whole.addingReportingOverflow(UInt64(part))
        guard !overflow2 else { throw .outOfRange }
        return total
    }

    private static func parseHex(_ chars: [UInt8], from start: Int) throws(Failure) -> (UInt64, Int) {
        var i = start
        var value: UInt64 = 0
        while i < chars.count, let digit = hex(chars[i]) {
            guard value >> 60 == 0 else { throw .outOfRange }
            value = value << 4 | UInt64(digit)
            i += 1
        }
        guard i > start else { throw .invalid }
        return (value, i)
    }

    private static func decimal(_ c: UInt8) -> UInt8? {
        (0x30...0x39).contains(c) ? c - 0x30 : nil
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        if let d = decimal(c) { return d }
        let lower = c | 0x20
        return (0x61...0x66).contains(lower) ? lower - 0x61 + 10 : nil
    }

    private static func suffixMultiplier(_ c: UInt8) -> UInt64? {
        switch c | 0x20 {
        case UInt8(ascii: "b"): return 1
        case UInt8(ascii: "k"): return 1 << 10
        case UInt8(ascii: "m"): return 1 << 20
        case UInt8(ascii: "g"): return 1 << 30
        case UInt8(ascii: "t"): return 1 << 40
        case UInt8(ascii: "p"): return 1 << 50
        case UInt8(ascii: "e"): return 1 << 60
        default: return nil
        }
    }

    /// qemu-img's `cvtnum`: a size in `min...max` (default `0...Int64.max`), else its two-line
    /// suffix hint or its range message, e.g. "Invalid image size specified. Must be between 0 and
    /// 9223372036854775807.".
    /// - Parameter name: what the number is ("image size", "start offset", "max length").
    /// - Throws: ``CLIError`` with qemu-img's text.
    public static func cvtnum(_ name: String, _ text: String, min: Int64 = 0, max: Int64 = .max)
        throws
        -> Int64
    {
        let value: UInt64
        do {
            value = try parse(text)
        } catch .invalid {
            throw CLIError(
                "Invalid \(name) specified. You may use k, M, G, T, P or E suffixes for\n"
                    + "vmimg: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
        } catch {
            throw rangeError(name, min, max)
        }
        guard let signed = Int64(exactly: value), signed >= min, signed <= max else {
            throw rangeError(name, min, max)
        }
        return signed
    }

    private static func rangeError(_ name: String, _ min: Int64, _ max: Int64) -> CLIError {
        CLIError("Invalid \(name) specified. Must be between \(min) and \(max).")
    }

    /// The size argument of `resize`: `[+|-]size`.
    /// - Throws: ``CLIError`` with the text qemu's option parser prints for bad sizes.
    public static func sizeChange(_ text: String) throws -> SizeChange {
        let sign = text.first
        let body = sign == "+" || sign == "-" ? String(text.dropFirst()) : text
        guard let value = try? parse(body), let bytes = Int64(exactly: value) else {
            throw CLIError(
                "Parameter 'size' expects a non-negative number below 2^64\n"
                    + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                    + "and exabytes, respectively.")
        }
        switch sign {
        case "+": return .grow(bytes)
        case "-": return .shrink(bytes)
        default: return .absolute(bytes)
        }
    }
}
