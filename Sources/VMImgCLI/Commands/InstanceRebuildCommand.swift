import ArgumentParser
import Instances

/// `instance rebuild INSTANCE (--snapshot NAME | --image IMAGE [--full]) [--yes] [--dry-run]`.
///
/// Prints what will be destroyed first (R14). On a terminal it asks; without one it needs `--yes`
/// and otherwise exits 1 having changed nothing. Refused while the instance runs or any QEMU holds
/// its drive (R15).
struct InstanceRebuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild an instance's drive from one of its snapshots or from an image (destructive).")

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("Revert to this snapshot; newer snapshots are deleted.", valueName: "NAME"))
    var snapshot: String?
    @Option(help: ArgumentHelp("Replace the drive with one made from this image.", valueName: "IMAGE"))
    var image: String?
    @Flag(help: "With --image: a full copy instead of an overlay.") var full = false
    @Flag(name: [.customShort("y"), .customLong("yes")], help: "Do it without asking.") var yes = false
    @Flag(name: .customLong("dry-run"), help: "Print what would be destroyed; change nothing.") var dryRun = false
    @Argument(help: "Instance name.") var instance: String

    func validate() throws {
        guard (snapshot == nil) != (image == nil) else {
            throw ValidationError("give exactly one of --snapshot NAME and --image IMAGE")
        }
        if full && image == nil { throw ValidationError("--full needs --image") }
    }

    func run() throws {
        let source: RebuildSource =
            if let snapshot { .snapshot(snapshot) } else { .image(image ?? "", fullCopy: full) }
        try home.run { manager in
            let plan: RebuildPlan
            switch try manager.rebuild(instance, from: source, confirm: false) {
            case .planned(let p), .rebuilt(let p): plan = p
            }
            say(Self.describe(plan))
            if dryRun {
                say("Dry run: nothing changed.")
                return
            }
            if !yes {
                guard Terminal.isInteractive else {
                    throw CLIError(
                        "rebuild of '\(instance)' needs confirmation and standard input is not a terminal: "
                            + "run again with --yes; nothing changed")
                }
                guard Terminal.confirm("Rebuild '\(instance)'? This cannot be undone.") else {
                    throw CLIError("rebuild of '\(instance)' cancelled; nothing changed")
                }
            }
            _ = try manager.rebuild(instance, from: source, confirm: true)
            let gone =
                plan.snapshotsDestroyed.isEmpty
                ? "" : "; deleted snapshots " + plan.snapshotsDestroyed.map { "'\($0)'" }.joined(separator: ", ")
            switch plan.source {
            case .snapshot(let name): say("Rebuilt '\(instance)' from snapshot '\(name)'\(gone)")
            case .image(let name, _): say("Rebuilt '\(instance)' from image '\(name)'\(gone)")
            }
        }
    }

    /// The warning printed before asking: what goes and what it frees.
    static func describe(_ plan: RebuildPlan) -> String {
        var lines: [String]
        switch plan.source {
        case .snapshot(let name): lines = ["Rebuild '\(plan.instance)' from its snapshot '\(name)':"]
        case .image(let name, let full):
            lines = ["Rebuild '\(plan.instance)' from image '\(name)' (\(full ? "full copy" : "overlay")):"]
        }
        lines.append("  current drive content is discarded (\(bytes(plan.discardedActiveBytes)) in the active layer)")
        if plan.snapshotsDestroyed.isEmpty {
            lines.append("  no snapshot is deleted")
        } else {
            lines.append(
                "  snapshots deleted: " + plan.snapshotsDestroyed.joined(separator: ", ")
                    + " (frees \(bytes(plan.freedBytes)))")
        }
        return lines.joined(separator: "\n")
    }
}
