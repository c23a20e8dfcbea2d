import ArgumentParser
import Instances

/// `instance snapshot list INSTANCE [--output json]`: oldest first, with space figures (R17).
struct InstanceSnapshotListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List an instance's snapshots with their space figures.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag
    @Argument(help: "Instance name.") var instance: String

    func run() throws {
        let json = try output.isJSON()
        let snapshots = try home.run { try $0.listSnapshots(instance: instance) }
        if json { return try sayJSON(snapshots.map(SnapshotJSON.init)) }
        Console.current.out(SnapshotTable.render(snapshots))
    }
}
