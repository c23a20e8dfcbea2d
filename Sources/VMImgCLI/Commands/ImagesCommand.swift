import ArgumentParser

/// `vmimg images …`: "my images", the library instances are created from (vmimg extension).
struct ImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "Manage \"my images\": imported images and exported snapshots.",
        subcommands: [ImagesImportCommand.self, ImagesListCommand.self, ImagesDeleteCommand.self])
}
