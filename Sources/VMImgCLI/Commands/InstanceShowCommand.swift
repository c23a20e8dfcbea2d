import ArgumentParser
import Instances

/// `instance show NAME [--output json]`: drive, state, virtual size, active-layer use against the
/// quota, and the snapshots with their space figures.
struct InstanceShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one instance.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag
    @Argument(help: "Instance name.") var name: String

    func run() throws {
        let json = try output.isJSON()
        let details = try home.run { try $0.show(name) }
        if json { return try sayJSON(InstanceDetailsJSON(details: details)) }
        let s = details.summary
        var quota = "none (active layer uses \(bytes(details.activeBytes)))"
        if let limit = details.quota {
            let percent = limit == 0 ? 0 : Double(details.activeBytes) * 100 / Double(limit)
            quota =
                "active layer uses \(bytes(details.activeBytes)) of \(bytes(limit)) ("
                + String(format: "%.0f%%", percent) + (details.overQuota ? ", OVER QUOTA)" : ")")
        }
        var rows: [(String, String)] = [
            ("name", s.name), ("id", s.id), ("state", s.state.rawValue), ("drive", s.drivePath),
            ("virtual size", bytes(s.virtualSize)), ("base image", s.baseImage ?? "-"), ("quota", quota),
            ("snapshot-only data", bytes(details.snapshotOnlyBytes) + " (not counted against the quota)"),
            ("file on host", bytes(details.fileBytes)),
            ("snapshots", "\(details.snapshots.count) of at most \(details.maxSnapshots)"),
            ("audit", s.audit.rawValue),
        ]
        if let pid = details.pid { rows.append(("pid", String(pid))) }
        if let socket = details.qmpSocket { rows.append(("qmp socket", socket)) }
        for notice in details.notices { rows.append(("notice", notice)) }
        var text = TableRenderer.fields(rows)
        if !details.snapshots.isEmpty { text += SnapshotTable.render(details.snapshots) }
        Console.current.out(text)
    }
}

/// The snapshot table of `instance show` and `snapshot list` (R17: name, time, space figures).
enum SnapshotTable {
    static func render(_ snapshots: [SnapshotDetails]) -> String {
        TableRenderer.table(
            ["Snapshot", "Created", "Pinned", "Audit", "Referenced", "Unique", "Written"],
            snapshots.map {
                [
                    $0.name, humanDate($0.createdAt), $0.pinned ? "yes" : "no", $0.audit.rawValue,
                    $0.space.map { bytes($0.referenced) } ?? "-", $0.space.map { bytes($0.unique) } ?? "-",
                    $0.space.map { bytes($0.written) } ?? "-",
                ]
            })
    }
}
