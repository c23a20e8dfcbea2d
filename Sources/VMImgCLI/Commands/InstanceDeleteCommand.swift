import ArgumentParser
import Instances

/// `instance delete NAME`: the drive and its snapshots go; refused while running or pinned.
struct InstanceDeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete an instance, its drive and its snapshots.")

    @OptionGroup var home: HomeOptions
    @Argument(help: "Instance name.") var name: String

    func run() throws {
        try home.run { try $0.delete(name) }
        say("Deleted instance '\(name)'")
    }
}
