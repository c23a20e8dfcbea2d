import ImageKit

/// Renders `map` like qemu-img 7.2 `img_map`: merges neighbouring extents, then prints a table or
/// one JSON object per line.
public enum MapRenderer {
    /// Column header of the human output.
    public static let header = "Offset          Length          Mapped to       File\n"

    /// `entry_mergeable`: same flags, depth and file, and host offsets contiguous.
    static func mergeable(_ current: MapExtent, _ next: MapExtent) -> Bool {
        guard current.length != 0 else { return false }
        guard current.zero == next.zero, current.data == next.data, current.depth == next.depth,
            current.present == next.present, current.filename == next.filename,
            (current.offset == nil) == (next.offset == nil)
        else { return false }
        if let offset = current.offset, let nextOffset = next.offset {
            return offset + current.length == nextOffset
        }
        return true
    }

    /// Merges extents as `img_map`'s loop does. For human output a following extent that is not
    /// plain data is first turned into "zero, no data", since the table doesn't tell them apart;
    /// this lets more of them merge.
    public static func merge(_ extents: [MapExtent], human: Bool) -> [MapExtent] {
        var result: [MapExtent] = []
        var current: MapExtent?
        for var next in extents {
            guard var cur = current, cur.length > 0 else {
                current = next
                continue
            }
            if mergeable(cur, next) {
                cur.length += next.length
                current = cur
                continue
            }
            if human && (!next.data || next.zero) {
                next.data = false
                next.zero = true
            }
            result.append(cur)
            current = next
        }
        if let current { result.append(current) }
        return result
    }

    /// One table row, or `nil` for extents the table skips (no data, or zeros).
    /// - Throws: ``CLIError`` "File contains external, encrypted or compressed clusters." for data
    ///   without a host offset, which ends qemu-img's output with exit 1.
    public static func humanRow(_ extent: MapExtent) throws -> String? {
        if extent.data && extent.offset == nil {
            throw CLIError("File contains external, encrypted or compressed clusters.")
        }
        guard extent.data && !extent.zero else { return nil }
        return HumanFormat.hexColumn(extent.start) + HumanFormat.hexColumn(extent.length)
            + HumanFormat.hexColumn(extent.offset ?? 0) + (extent.filename ?? "") + "\n"
    }

    /// `{ "start": …, "length": …, "depth": …, "present": …, "zero": …, "data": …[, "offset": …]}`.
    public static func jsonObject(_ extent: MapExtent) -> String {
        var out =
            "{ \"start\": \(extent.start), \"length\": \(extent.length), \"depth\": \(extent.depth),"
        out += " \"present\": \(extent.present), \"zero\": \(extent.zero), \"data\": \(extent.data)"
        if let offset = extent.offset { out += ", \"offset\": \(offset)" }
        return out + "}"
    }

    /// The whole JSON array: `[` + objects joined by `,\n` + `]\n`.
    public static func json(_ extents: [MapExtent]) -> String {
        "[" + merge(extents, human: false).map(jsonObject).joined(separator: ",\n") + "]\n"
    }
}
