/// Everything that can be wrong with qcow2 bytes, each case carrying the field and value so the
/// message names them in one line (`cluster_bits: 33 is outside 9...21`).
public enum QCow2Error: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt32)
    case fieldOutOfRange(field: String, value: UInt64, allowed: ClosedRange<UInt64>)
    case misaligned(field: String, value: UInt64, alignment: UInt64)
    case tableOutsideFile(table: String, offset: UInt64, byteCount: UInt64, fileSize: UInt64)
    case tooLarge(field: String, value: UInt64, limit: UInt64)
    case unknownIncompatibleFeatures(bits: UInt64, names: [String])
    case truncated(structure: String, needed: Int, available: Int)
    case invalid(field: String, reason: String)
    case unsupported(String)
    /// A fatal inconsistency found while using the image (QEMU's `qcow2_signal_corruption`).
    case corrupt(offset: UInt64, reason: String)

    public var description: String {
        switch self {
        case .badMagic(let found):
            return "Image is not in qcow2 format (magic 0x\(hex(UInt64(found))))"
        case .unsupportedVersion(let version):
            return "Unsupported qcow2 version \(version)"
        case .fieldOutOfRange(let field, let value, let allowed):
            return "\(field): \(value) is outside \(allowed.lowerBound)...\(allowed.upperBound)"
        case .misaligned(let field, let value, let alignment):
            return "\(field): 0x\(hex(value)) is not aligned to \(alignment) bytes"
        case .tableOutsideFile(let table, let offset, let byteCount, let fileSize):
            return "\(table) at 0x\(hex(offset)) (\(byteCount) bytes) lies outside the file (\(fileSize) bytes)"
        case .tooLarge(let field, let value, let limit):
            return "\(field): \(value) exceeds the limit of \(limit)"
        case .unknownIncompatibleFeatures(let bits, let names):
            // QEMU's report_unsupported_feature: the table's names, then the unnamed rest, one list.
            var parts = names
            if bits != 0 { parts.append("Unknown incompatible feature: " + hex(bits)) }
            return "Unsupported qcow2 feature(s): " + parts.joined(separator: ", ")
        case .truncated(let structure, let needed, let available):
            return "\(structure) is truncated: needs \(needed) bytes, \(available) available"
        case .invalid(let field, let reason):
            return "\(field): \(reason)"
        case .unsupported(let what):
            return what
        case .corrupt(let offset, let reason):
            return "image is corrupt at 0x\(hex(offset)): \(reason)"
        }
    }
}

/// Lower-case hex without a prefix, as QEMU prints offsets.
@inlinable public func hex(_ value: UInt64) -> String { String(value, radix: 16) }
