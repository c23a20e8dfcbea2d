import CBlockIO

/// printf-exact number text and unbuffered writes to the standard streams, for the CLI's output
/// paths without Foundation (`String(format:)` and `FileHandle` cost more at start-up than a
/// small `check` does; Formats/performance.md, "Start-up").
public enum TextOutput {
    /// C's `%.<precision>f` of `value` (qemu-img prints percentages with `%0.2f`).
    public static func fixed(_ value: Double, precision: Int) -> String {
        format(value, general: false, precision: precision)
    }

    /// C's `%.<precision>g` of `value` (QEMU's `size_to_str` uses `%0.3g`).
    public static func general(_ value: Double, precision: Int) -> String {
        format(value, general: true, precision: precision)
    }

    private static func format(_ value: Double, general: Bool, precision: Int) -> String {
        let digits = Int32(min(max(precision, 0), 40))
        // `%f` of the largest double has 309 integer digits.
        var buffer = [UInt8](repeating: 0, count: 360)
        let length = unsafe buffer.withUnsafeMutableBytes { raw in
            unsafe cblockio_format_double(
                raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count, general ? 1 : 0, digits,
                value)
        }
        return String(decoding: buffer.prefix(min(max(Int(length), 0), buffer.count - 1)), as: UTF8.self)
    }

    /// Writes `text` to stdout, all of it unless the write fails (a closed or broken stream is
    /// not the command's failure: qemu-img ignores printf's result too).
    public static func standardOutput(_ text: String) { write(1, text) }

    /// Writes `text` to stderr, as ``standardOutput(_:)``.
    public static func standardError(_ text: String) { write(2, text) }

    private static func write(_ descriptor: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = unsafe cblockio_write_all(descriptor, bytes.baseAddress, bytes.count)
        }
    }
}
