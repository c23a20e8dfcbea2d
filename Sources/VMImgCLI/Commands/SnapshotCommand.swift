import ArgumentParser

/// `snapshot [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename`, plus
/// `--output json` for `-l` (vmimg: the same objects as `info`'s `"snapshots"` list).
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "List, create, apply or delete internal snapshots.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag
    @OptionGroup var output: OutputFlag

    @Flag(name: .customShort("l"), help: "List snapshots.") var list = false
    @Option(
        name: .customShort("a"), help: ArgumentHelp("Revert to this snapshot.", valueName: "snapshot"))
    var apply: String?
    @Option(
        name: .customShort("c"),
        help: ArgumentHelp("Create a snapshot with this name.", valueName: "snapshot"))
    var create: String?
    @Option(
        name: .customShort("d"), help: ArgumentHelp("Delete this snapshot.", valueName: "snapshot"))
    var delete: String?

    @Argument(help: "Image file.") var filename: String

    func run() throws {
        let json = try output.isJSON()
        let actions: [SnapshotAction] = [
            create.map(SnapshotAction.create), apply.map(SnapshotAction.apply),
            delete.map(SnapshotAction.delete),
        ].compactMap { $0 }
        guard actions.count + (list ? 1 : 0) <= 1 else {
            throw CLIError.usage("Cannot mix '-l', '-a', '-c', '-d'")
        }
        let open = try image.open(filename)
        guard let action = actions.first else {
            let snapshots = try engine { try $0.snapshots(open) }
            guard list else { return }
            let text =
                json ? try JSONWriter.pretty(snapshots) + "\n" : SnapshotTableRenderer.table(snapshots)
            Console.current.out(text)
            return
        }
        try engine { try $0.snapshot(open, action) }
    }
}
