import ArgumentParser
import Instances

/// `images list [--output json]`: images, then every instance snapshot as `INSTANCE@SNAPSHOT` (R6).
struct ImagesListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List \"my images\" and instance snapshots.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag

    func run() throws {
        let json = try output.isJSON()
        let entries = try home.run { try $0.library.list() }
        if json { return try sayJSON(entries.map(ImageJSON.init)) }
        Console.current.out(
            TableRenderer.table(
                ["Name", "Kind", "Virtual size", "Origin", "Audit", "Created"],
                entries.map {
                    [
                        $0.name, $0.kind.rawValue, bytes($0.virtualSize), $0.origin, $0.audit?.rawValue ?? "-",
                        humanDate($0.createdAt),
                    ]
                }))
    }
}
