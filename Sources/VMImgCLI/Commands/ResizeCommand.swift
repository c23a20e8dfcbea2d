import ArgumentParser

/// `resize [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size`.
struct ResizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize", abstract: "Change an image's virtual size.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag

    @Option(
        name: .customLong("preallocation"),
        help: ArgumentHelp("off, metadata, falloc or full.", valueName: "prealloc"))
    var preallocation: String?
    @Flag(name: .customLong("shrink"), help: "Allow making the image smaller.") var shrink = false

    @Argument(help: "Image file.") var filename: String
    @Argument(help: "New size, or +size / -size relative to the current one.") var size: String

    func run() throws {
        let change = try SizeParser.sizeChange(size)
        try engine {
            try $0.resize(try image.open(filename), to: change, shrink: shrink, preallocation: preallocation)
        }
        if !quiet.quiet { Console.current.out("Image resized.\n") }
    }

    /// qemu-img takes the size from the end of the command line before parsing options, so
    /// `resize img -1G` works; we move it behind `--` for the same effect.
    static func protectSize(_ arguments: [String]) -> [String] {
        guard arguments.first == "resize", arguments.count >= 3, let size = arguments.last,
            !size.hasPrefix("--")
        else { return arguments }
        let rest = arguments.dropLast()
        return rest.contains("--") ? Array(rest) + [size] : Array(rest) + ["--", size]
    }
}
