import ArgumentParser

/// `instance snapshot create|list|delete|pin|unpin INSTANCE [NAME]`.
struct InstanceSnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Create, list, delete, pin and unpin an instance's snapshots.",
        subcommands: [
            InstanceSnapshotCreateCommand.self, InstanceSnapshotListCommand.self, InstanceSnapshotDeleteCommand.self,
            InstanceSnapshotPinCommand.self, InstanceSnapshotUnpinCommand.self,
        ])
}
