import Foundation
import ImageKit

/// The snapshot table of `snapshot -l` and `info` (`bdrv_snapshot_dump`, block/snapshot.c).
public enum SnapshotTableRenderer {
    /// Column header: `%-10s%-17s%8s%20s%13s%11s`.
    public static let header =
        "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT"

    /// "Snapshot list:", the header and one row per snapshot; empty when there are none (qemu-img
    /// prints nothing at all for `snapshot -l` on an image without snapshots).
    public static func table(_ snapshots: [SnapshotInfo], timeZone: TimeZone = .current) -> String {
        guard !snapshots.isEmpty else { return "" }
        return "Snapshot list:\n" + header + "\n"
            + snapshots.map { row($0, timeZone: timeZone) + "\n" }.joined()
    }

    /// One row: `%-9s %-16s %8s%20s%13s%11s` of ID, tag, VM state size, local date, guest clock
    /// `HH:MM:SS.mmm` and icount (blank when unknown).
    public static func row(_ snapshot: SnapshotInfo, timeZone: TimeZone = .current) -> String {
        let seconds = snapshot.vmClockNsec / 1_000_000_000
        let clock = String(
            format: "%02d:%02d:%02d.%03d", Int(seconds / 3600), Int((seconds / 60) % 60),
            Int(seconds % 60), Int((snapshot.vmClockNsec / 1_000_000) % 1000))
        return left(snapshot.id, 9) + " " + left(snapshot.name, 16) + " "
            + right(HumanFormat.size(snapshot.vmStateSize), 8)
            + right(date(snapshot.dateSec, timeZone: timeZone), 20)
            + right(clock, 13)
            + right(snapshot.icount.map(String.init) ?? "", 11)
    }

    /// `g_date_time_format(local, "%Y-%m-%d %H:%M:%S")`.
    static func date(_ seconds: Int64, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second],
            from: Date(timeIntervalSince1970: TimeInterval(seconds)))
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0,
            parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
    }

    static func left(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func right(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
