import BlockIO
import Foundation

/// Prints a ``QObject`` exactly like QEMU 7.2's `qobject_to_json_pretty` (qobject/json-writer.c).
///
/// Objects and arrays open on the current line, each member goes on its own line indented four
/// spaces per level as `"key": value`, and the closing bracket returns to the parent's indent. An
/// empty container prints as its brackets on two lines, as QEMU's writer does.
public enum JSONWriter {
    /// The pretty-printed text, without a trailing newline (qemu-img adds one with `printf`).
    public static func pretty(_ object: QObject) -> String {
        var out = ""
        write(object, depth: 0, into: &out)
        return out
    }

    /// Encodes `value` with ``QObjectEncoder`` and pretty-prints it.
    /// - Throws: what the encoder throws.
    public static func pretty(_ value: some Encodable) throws -> String {
        pretty(try QObjectEncoder().encode(value))
    }

    private static func newline(_ depth: Int, into out: inout String) {
        out += "\n" + String(repeating: " ", count: 4 * depth)
    }

    private static func write(_ object: QObject, depth: Int, into out: inout String) {
        switch object {
        case .dict(let dict):
            out += "{"
            for (index, member) in dict.iterationOrder.enumerated() {
                if index > 0 { out += "," }
                newline(depth + 1, into: &out)
                out += quoted(member.key) + ": "
                write(member.value, depth: depth + 1, into: &out)
            }
            newline(depth, into: &out)
            out += "}"
        case .list(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                newline(depth + 1, into: &out)
                write(item, depth: depth + 1, into: &out)
            }
            newline(depth, into: &out)
            out += "]"
        default:
            out += scalarText(object, quoteStrings: true)
        }
    }

    /// A scalar as QEMU prints it: JSON for the writer, bare strings for `dump_qobject`.
    static func scalarText(_ object: QObject, quoteStrings: Bool) -> String {
        switch object {
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .double(let v): return TextOutput.general(v, precision: 17)
        case .bool(let v): return v ? "true" : "false"
        case .string(let s): return quoteStrings ? quoted(s) : s
        case .null: return "null"
        case .dict, .list: return ""
        }
    }

    /// `quoted_str`: escapes `"` `\` and controls, and writes every code point outside printable
    /// ASCII as `\uXXXX` (surrogate pairs beyond the BMP).
    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let value = scalar.value
                if value > 0xFFFF {
                    let high = 0xD800 + ((value - 0x10000) >> 10)
                    let low = 0xDC00 + ((value - 0x10000) & 0x3FF)
                    out += String(format: "\\u%04X\\u%04X", high, low)
                } else if value < 0x20 || value >= 0x7F {
                    out += String(format: "\\u%04X", value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
