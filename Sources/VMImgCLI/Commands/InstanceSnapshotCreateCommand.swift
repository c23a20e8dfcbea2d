import ArgumentParser
import Instances

/// `instance snapshot create INSTANCE NAME [--dry-run]`. With `--max-snapshots` already taken the
/// oldest unpinned snapshots are deleted (R12, R20), and this says which.
struct InstanceSnapshotCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Take a snapshot (the oldest unpinned one goes past the limit).")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag
    @Flag(name: .customLong("dry-run"), help: "Say what would happen; change nothing.") var dryRun = false
    @Argument(help: "Instance name.") var instance: String
    @Argument(help: "Snapshot name.") var name: String

    func run() throws {
        let json = try output.isJSON()
        let result = try home.run { try $0.createSnapshot(instance: instance, name: name, dryRun: dryRun) }
        if json { return try sayJSON(SnapshotCreateJSON(result: result)) }
        let live = result.live ? " (live, through QMP)" : ""
        say(
            dryRun
                ? "Would create snapshot '\(name)' of '\(instance)'\(live)"
                : "Created snapshot '\(name)' of '\(instance)'\(live)")
        if !result.deleted.isEmpty {
            let names = result.deleted.map { "'\($0)'" }.joined(separator: ", ")
            let verb = dryRun ? "would delete" : "deleted"
            say(
                "Retention \(verb) the oldest unpinned snapshot\(result.deleted.count == 1 ? "" : "s") \(names)"
                    + " to stay within the snapshot limit, freeing \(bytes(result.freedBytes))")
        }
        for notice in result.notices { Console.current.err("vmimg: notice: \(notice)\n") }
    }
}
