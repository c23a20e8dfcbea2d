import ArgumentParser
import Instances

/// `images delete NAME`: refused while an instance or another image is an overlay on it.
struct ImagesDeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete an image from \"my images\".")

    @OptionGroup var home: HomeOptions
    @Argument(help: "Image name.") var name: String

    func run() throws {
        try home.run { try $0.library.delete(name: name) }
        say("Deleted image '\(name)'")
    }
}
