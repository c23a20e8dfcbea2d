import ArgumentParser
import Instances

/// `instance create NAME (--image IMAGE | --size SIZE) [--full] [--quota SIZE] [--max-snapshots N]
/// [--audit off|changes|all]`.
struct InstanceCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an instance from an image, a snapshot or an empty drive.")

    @OptionGroup var home: HomeOptions

    @Option(
        help: ArgumentHelp(
            "A \"my images\" entry, or INSTANCE@SNAPSHOT, the drive starts from.", valueName: "IMAGE"))
    var image: String?
    @Option(help: ArgumentHelp("Size of an empty drive (k, M, G, T suffixes).", valueName: "SIZE"))
    var size: String?
    @Flag(help: "Copy the image instead of making a copy-on-write overlay on it.") var full = false
    @Option(help: ArgumentHelp("Limit on the active layer's data (snapshots excluded).", valueName: "SIZE"))
    var quota: String?
    @Option(name: .customLong("max-snapshots"), help: "Snapshots kept before the oldest unpinned is deleted.")
    var maxSnapshots = 5
    @Option(help: ArgumentHelp("What the audit log records: off, changes or all.", valueName: "MODE"))
    var audit = "off"

    @Argument(help: "Instance name.") var name: String

    func validate() throws {
        guard (image == nil) != (size == nil) else {
            throw ValidationError("give exactly one of --image IMAGE and --size SIZE")
        }
        guard AuditMode(rawValue: audit) != nil else { throw ValidationError("--audit must be off, changes or all") }
        if full && image == nil { throw ValidationError("--full needs --image") }
    }

    func run() throws {
        let source: DriveSource =
            if let image { .image(image) } else { .empty(size: try parseSize(size ?? "", "--size")) }
        let request = CreateInstanceRequest(
            name: name, source: source, fullCopy: full, quota: try quota.map { try parseSize($0, "--quota") },
            maxSnapshots: maxSnapshots, audit: AuditMode(rawValue: audit) ?? .off)
        let summary = try home.run { try $0.create(request) }
        let from = summary.baseImage.map { "overlay on image '\($0)'" } ?? (image.map { "copy of '\($0)'" } ?? "empty")
        say("Created instance '\(summary.name)' (\(bytes(summary.virtualSize)), \(from))")
        say("drive: \(summary.drivePath)")
    }
}
