import BlockIO
import Foundation

/// Text helpers shared by the human renderers, ported from QEMU.
public enum HumanFormat {
    /// QEMU's `size_to_str` (util/cutils.c): three significant digits and a binary unit, switching
    /// units at 1000 so the integer part never has four digits ("580 KiB", "1.25 MiB", "1 GiB").
    public static func size(_ bytes: UInt64) -> String {
        let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        // frexp's exponent minus one is floor(log2(bytes × 1024 / 1000)).
        let exponent = frexp(Double(bytes) / (1000.0 / 1024.0)).1
        let index = min(max((exponent - 1) / 10, 0), suffixes.count - 1)
        let divisor = Double(UInt64(1) << UInt64(index * 10))
        return TextOutput.general(Double(bytes) / divisor, precision: 3) + " " + suffixes[index] + "B"
    }

    /// ``size(_:)`` for a signed count; negative values print as zero.
    public static func size(_ bytes: Int64) -> String { size(UInt64(max(bytes, 0))) }

    /// C's `%#-16x` as qemu-img map uses it: `0x` prefix except for zero, left-aligned in 16.
    public static func hexColumn(_ value: Int64) -> String {
        let text = value == 0 ? "0" : "0x" + String(UInt64(bitPattern: value), radix: 16)
        return text.padding(toLength: max(16, text.count), withPad: " ", startingAt: 0)
    }

    /// `dump_qdict`/`dump_qlist` of block/qapi.c: one `key: value` line per member, dashes in keys
    /// shown as spaces, nested containers on following lines four spaces deeper, list items as
    /// `[i]:`. Used for the "Format specific information:" block.
    public static func dump(_ object: QObject, indentation: Int) -> String {
        var out = ""
        switch object {
        case .dict(let dict):
            for (key, value) in dict.iterationOrder {
                out += line(label: key.replacingOccurrences(of: "-", with: " "), value, indentation)
            }
        case .list(let items):
            for (index, value) in items.enumerated() {
                out += line(label: "[\(index)]", value, indentation)
            }
        default:
            out += JSONWriter.scalarText(object, quoteStrings: false)
        }
        return out
    }

    private static func line(label: String, _ value: QObject, _ indentation: Int) -> String {
        let pad = String(repeating: " ", count: indentation * 4)
        switch value {
        case .dict, .list: return pad + label + ":\n" + dump(value, indentation: indentation + 1)
        default: return pad + label + ": " + dump(value, indentation: indentation + 1) + "\n"
        }
    }
}
