/// Boxed, aligned tables as `openstack` prints them (cliff's table formatter):
///
/// ```
/// +------+---------+
/// | Name | State   |
/// +------+---------+
/// | demo | stopped |
/// +------+---------+
/// ```
///
/// A cell holding newlines spans several lines; numbers are not right-aligned (neither are
/// openstack's).
enum TableRenderer {
    /// A table with a header row.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let rows = rows.map { row in (0..<header.count).map { $0 < row.count ? row[$0] : "" } }
        var widths = header.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() {
                widths[column] = max(widths[column], cell.split(separator: "\n").map(\.count).max() ?? 0)
            }
        }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+\n"
        var out = rule + line(header, widths) + rule
        for row in rows { out += line(row, widths) }
        if !rows.isEmpty { out += rule }
        return out
    }

    /// `openstack … show`: a two-column Field | Value table.
    static func fields(_ pairs: [(String, String)]) -> String {
        table(["Field", "Value"], pairs.map { [$0.0, $0.1] })
    }

    private static func line(_ cells: [String], _ widths: [Int]) -> String {
        let split = cells.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        let height = split.map(\.count).max() ?? 1
        var out = ""
        for index in 0..<height {
            let parts = split.enumerated().map { column, lines in
                let text = index < lines.count ? lines[index] : ""
                return " " + text + String(repeating: " ", count: widths[column] - text.count) + " "
            }
            out += "|" + parts.joined(separator: "|") + "|\n"
        }
        return out
    }
}
