import ArgumentParser

/// `info [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename`.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show information about an image.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var output: OutputFlag

    @Flag(name: .customLong("backing-chain"), help: "Show every image of the backing chain.")
    var backingChain = false

    @Argument(help: "Image file.") var filename: String

    /// The parsed values.
    var values: InfoArguments {
        InfoArguments(
            image: image.values, output: output.output, backingChain: backingChain, filename: filename)
    }

    func run() throws { try values.run() }
}

/// `info`'s arguments as plain data (see ``CheckArguments``) and the command itself.
struct InfoArguments: Equatable {
    var image = ImageArguments()
    var output = "human"
    var backingChain = false
    var filename: String

    func run() throws {
        let json = try OutputFlag.isJSON(output)
        let info = try engine { try $0.info(try image.open(filename), backingChain: backingChain) }
        let text: String
        if backingChain {
            text =
                json ? try InfoRenderer.json(chain: info.chain) : try InfoRenderer.human(chain: info.chain)
        } else {
            text = json ? try InfoRenderer.json(info) : try InfoRenderer.human(info)
        }
        Console.current.out(text)
    }
}
