import ArgumentParser
import Instances

/// `instance snapshot pin INSTANCE NAME`: retention skips it and delete refuses it (R20, `zfs hold`).
struct InstanceSnapshotPinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin", abstract: "Pin a snapshot: retention skips it, delete refuses it.")

    @OptionGroup var home: HomeOptions
    @Argument(help: "Instance name.") var instance: String
    @Argument(help: "Snapshot name.") var name: String

    func run() throws {
        try home.run { try $0.pinSnapshot(instance: instance, name: name) }
        say("Pinned snapshot '\(name)' of '\(instance)'")
    }
}

/// `instance snapshot unpin INSTANCE NAME`.
struct InstanceSnapshotUnpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Unpin a snapshot.")

    @OptionGroup var home: HomeOptions
    @Argument(help: "Instance name.") var instance: String
    @Argument(help: "Snapshot name.") var name: String

    func run() throws {
        try home.run { try $0.unpinSnapshot(instance: instance, name: name) }
        say("Unpinned snapshot '\(name)' of '\(instance)'")
    }
}
