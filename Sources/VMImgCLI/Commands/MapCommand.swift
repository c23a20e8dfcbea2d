import ArgumentParser

/// `map [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename`.
struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map", abstract: "Show how guest offsets map to host files.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var output: OutputFlag

    @Option(
        name: .customLong("start-offset"),
        help: ArgumentHelp("First guest offset.", valueName: "offset"))
    var startOffset: String?

    @Option(name: .customLong("max-length"), help: ArgumentHelp("Bytes to map.", valueName: "len"))
    var maxLength: String?

    @Argument(help: "Image file.") var filename: String

    /// The parsed values.
    var values: MapArguments {
        MapArguments(
            image: image.values, output: output.output, startOffset: startOffset, maxLength: maxLength,
            filename: filename)
    }

    func run() throws { try values.run() }
}

/// `map`'s arguments as plain data (see ``CheckArguments``) and the command itself.
struct MapArguments: Equatable {
    var image = ImageArguments()
    var output = "human"
    var startOffset: String?
    var maxLength: String?
    var filename: String

    func run() throws {
        let json = try OutputFlag.isJSON(output)
        let start = try startOffset.map { try SizeParser.cvtnum("start offset", $0) } ?? 0
        let length = try maxLength.map { try SizeParser.cvtnum("max length", $0) }
        let extents = try engine {
            try $0.map(try image.open(filename), startOffset: start, maxLength: length)
        }
        let console = Console.current
        if json {
            console.out(MapRenderer.json(extents))
            return
        }
        console.out(MapRenderer.header)
        for extent in MapRenderer.merge(extents, human: true) {
            if let row = try MapRenderer.humanRow(extent) { console.out(row) }
        }
    }
}
