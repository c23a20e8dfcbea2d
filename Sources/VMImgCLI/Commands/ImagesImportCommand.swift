import ArgumentParser
import Instances

/// `images import NAME FILE [-f raw|qcow2] [--trust]`: stores FILE in "my images" as a standalone
/// qcow2. A qcow2 naming a backing file or an external data file, or with incompatible feature bits
/// vmimg does not know, is refused (Glance's safety check) unless `--trust`.
struct ImagesImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import a raw or qcow2 file into \"my images\".")

    @OptionGroup var home: HomeOptions

    @Option(
        name: .customShort("f"),
        help: ArgumentHelp("Declared format: raw or qcow2 (probed when omitted).", valueName: "fmt"))
    var format: String?

    @Flag(
        name: .customLong("trust"),
        help: "Import even if the image names a backing file or a data file (read into the copy).")
    var trust = false

    @Argument(help: "Name in \"my images\".") var name: String
    @Argument(help: "The file to import.") var file: String

    func run() throws {
        let entry = try home.run(engine: EngineAdapter(trustImports: trust)) { manager in
            try manager.library.importImage(name: name, file: file, format: format)
        }
        say("Imported '\(file)' as image '\(entry.name)' (\(bytes(entry.virtualSize)) virtual)")
    }
}
