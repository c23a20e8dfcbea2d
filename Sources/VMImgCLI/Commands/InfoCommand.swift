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

    func run() throws {
        let json = try output.isJSON()
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
