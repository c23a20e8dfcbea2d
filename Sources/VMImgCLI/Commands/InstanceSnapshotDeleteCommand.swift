import ArgumentParser
import Instances

/// `instance snapshot delete INSTANCE NAME [--dry-run]`: refused for a pinned snapshot.
struct InstanceSnapshotDeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a snapshot.")

    @OptionGroup var home: HomeOptions
    @Flag(name: .customLong("dry-run"), help: "Say what would be freed; change nothing.") var dryRun = false
    @Argument(help: "Instance name.") var instance: String
    @Argument(help: "Snapshot name.") var name: String

    func run() throws {
        let result = try home.run { try $0.deleteSnapshot(instance: instance, name: name, dryRun: dryRun) }
        say(
            (dryRun ? "Would delete" : "Deleted") + " snapshot '\(name)' of '\(instance)', "
                + (dryRun ? "freeing " : "freed ") + bytes(result.freedBytes))
    }
}
