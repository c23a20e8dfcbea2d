import ArgumentParser
import Foundation

/// `bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] [-i aio] [-n] [--no-drain] [-o offset]
/// [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename`.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run a simple sequential I/O benchmark on an image.")

    @OptionGroup var image: ImageFlags
    @OptionGroup var quiet: QuietFlag

    @Option(name: .customShort("c"), help: "Requests (default 75000).") var count = 75000
    @Option(name: .customShort("d"), help: "Requests in flight (default 64).") var depth = 64
    @Option(name: .customLong("flush-interval"), help: "Flush every N requests.") var flushInterval =
        0
    @Option(name: .customShort("i"), help: ArgumentHelp("AIO engine.", valueName: "aio")) var aio: String?
    @Flag(name: .customShort("n"), help: "Native AIO.") var native = false
    @Flag(name: .customLong("no-drain"), help: "Flush without draining.") var noDrain = false
    @Option(name: .customShort("o"), help: ArgumentHelp("First offset.", valueName: "offset"))
    var offset: String?
    @Option(name: .customLong("pattern"), help: "Byte to write (default 0).") var pattern: UInt8 = 0
    @Option(name: .customShort("s"), help: ArgumentHelp("Request size.", valueName: "buffer_size"))
    var bufferSize: String?
    @Option(
        name: .customShort("S"), help: ArgumentHelp("Step between requests.", valueName: "step_size"))
    var step: String?
    @Option(name: .customShort("t"), help: ArgumentHelp("Cache mode.", valueName: "cache")) var cache: String?
    @Flag(name: .customShort("w"), help: "Write instead of read.") var write = false
    @Flag(
        name: .customLong("flush-log"),
        help: "vmimg extension: print 'flushed N' after each completed flush (requests 0..<N are durable).")
    var flushLog = false

    @Argument(help: "Image file.") var filename: String

    func run() throws {
        var request = BenchRequest(image: try image.open(filename))
        request.count = count
        request.depth = depth
        request.flushInterval = flushInterval
        request.aio = native ? "native" : aio
        request.noDrain = noDrain
        request.offset = try offset.map { try SizeParser.cvtnum("offset", $0) } ?? 0
        request.pattern = pattern
        request.bufferSize =
            try bufferSize.map { try SizeParser.cvtnum("buffer size", $0, max: Int64(Int32.max)) }
            ?? 4096
        request.step = try step.map { try SizeParser.cvtnum("step_size", $0, max: Int64(Int32.max)) }
        request.cache = cache
        request.write = write
        request.flushLog = flushLog
        if !write && flushInterval != 0 { throw CLIError("--flush-interval is only available in write tests") }
        if flushInterval != 0 && flushInterval < depth { throw CLIError("Flush interval can't be smaller than depth") }
        // qemu-img 7.2 accepts -q for bench but prints these lines anyway.
        let console = Console.current
        console.out(
            "Sending \(count) \(write ? "write" : "read") requests, \(request.bufferSize) bytes each, "
                + "\(depth) in parallel (starting at offset \(request.offset), step size "
                + "\(request.step ?? request.bufferSize))\n")
        if flushInterval != 0 { console.out("Sending flush every \(flushInterval) requests\n") }
        let seconds = try engine { try $0.bench(request) }
        console.out(String(format: "Run completed in %3.3f seconds.\n", seconds))
    }
}
