import ArgumentParser

/// `measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [-f fmt] [-l snapshot_param]
/// filename]`.
struct MeasureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure", abstract: "Compute the size a converted image would need.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var output: OutputFlag
    @OptionGroup var creation: CreationOptionsFlag

    @Option(name: .customShort("O"), help: ArgumentHelp("Output format.", valueName: "output_fmt"))
    var outputFormat = "raw"
    @Option(
        name: .customLong("size"),
        help: ArgumentHelp("Measure a new empty image of this size.", valueName: "N"))
    var size: String?
    @Option(
        name: .customShort("l"),
        help: ArgumentHelp("Measure this snapshot.", valueName: "snapshot_param"))
    var snapshot: String?

    @Argument(help: "Image file.") var filename: String?

    func run() throws {
        let json = try output.isJSON()
        if creation.wantsHelp {
            Console.current.out(try CreationOptionHelp.text(format: outputFormat))
            return
        }
        var request = MeasureRequest()
        switch (size, filename) {
        case (nil, nil): throw CLIError("Either --size N or one filename must be specified.")
        case (_?, _?): throw CLIError("--size N cannot be used together with a filename.")
        case (let size?, nil): request.size = try SizeParser.cvtnum("image size", size)
        case (nil, let filename?): request.source = try image.open(filename, snapshot: snapshot)
        }
        request.outputFormat = outputFormat
        request.options = creation.dictionary
        let result = try engine { try $0.measure(request) }
        Console.current.out(json ? try MeasureRenderer.json(result) : MeasureRenderer.human(result))
    }
}
