import ArgumentParser
import Instances

/// `instance duplicate INSTANCE NEW --snapshot NAME [--full]` (R9): a new instance starting equal
/// to the snapshot. Thin by default: the snapshot is exported to "my images" and the new drive is
/// an overlay on it, so retention may later delete the snapshot.
struct InstanceDuplicateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplicate", abstract: "Create a new instance from a snapshot of another.")

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("The snapshot the new instance starts from.", valueName: "NAME")) var snapshot: String
    @Flag(help: "A standalone copy instead of an overlay on an exported image.") var full = false
    @Argument(help: "Source instance.") var instance: String
    @Argument(help: "New instance name.") var newName: String

    func run() throws {
        let result = try home.run { try $0.duplicate(instance, as: newName, snapshot: snapshot, full: full) }
        let how = result.exportedImage.map { "overlay on exported image '\($0)'" } ?? "full copy"
        say("Duplicated '\(instance)@\(snapshot)' as instance '\(result.newInstance.name)' (\(how))")
        say("drive: \(result.newInstance.drivePath)")
    }
}
