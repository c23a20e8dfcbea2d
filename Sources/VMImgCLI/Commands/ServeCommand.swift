import ArgumentParser
import BlockIO
import Dispatch
import NBDServer
import QCow2

/// `vmimg serve`: exports images over NBD (vmimg extension; see Formats/nbd.md).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Export images over NBD (loopback by default).")

    @Option(name: .customLong("bind"), help: "Address to listen on.") var bind = "127.0.0.1"
    @Option(name: .customLong("port"), help: "TCP port.") var port = 10809
    @Option(name: .customLong("socket"), help: "Listen on a Unix socket instead of TCP.") var socket: String?
    @Flag(name: .customLong("read-only"), help: "Refuse writes on every export.") var readOnly = false
    @Flag(name: .customLong("allow-remote"), help: "Allow a non-loopback address (no TLS: trusted networks only).")
    var allowRemote = false
    @Option(name: .customLong("export"), help: ArgumentHelp("An export.", valueName: "NAME=FILE"))
    var exports: [String] = []
    @Option(
        name: .customLong("cache-opts"),
        help: ArgumentHelp(
            "qcow2 cache options for every export: l2-cache-size, refcount-cache-size, cache-size, "
                + "l2-cache-entry-size, cache-clean-interval (QEMU's syntax and defaults).",
            valueName: "key=value,…"))
    var cacheOpts: String?
    @Argument(help: "Images to export under their file names.") var files: [String] = []

    func run() throws {
        var list = try exports.map { try NBDServer.Export(parsing: $0, readOnly: readOnly) }
        for file in files {
            let name = file.split(separator: "/").last.map(String.init) ?? file
            list.append(NBDServer.Export(name: name, path: file, readOnly: readOnly))
        }
        if let cacheOpts {
            let fail = { (reason: String) in CLIError("Invalid --cache-opts '\(cacheOpts)': \(reason)") }
            for (key, _) in OptionString.parse(cacheOpts) where !QCow2CacheOptions.keys.contains(key) {
                throw fail("Block format 'qcow2' does not support the option '\(key)'")
            }
            let cache = try ImageOpts.cacheOptions(cacheOpts, fail)
            for i in list.indices { list[i].cache = cache }
        }
        guard !list.isEmpty else { throw CLIError.usage("serve needs --export NAME=FILE or a file") }
        try Self.block { [list, bind, port, socket, readOnly, allowRemote] in
            try await NBDServer.serve(
                exports: list, bind: bind, port: port, socketPath: socket, readOnly: readOnly,
                allowNonLoopback: allowRemote
            ) { address in
                Console.current.err("vmimg: serving \(list.map(\.name).joined(separator: ", ")) on \(address)\n")
            }
        }
    }

    /// Runs async work from the synchronous command tree until it finishes (or the process is
    /// interrupted).
    static func block(_ work: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let failure = Locked<String?>(nil)
        Task {
            do { try await work() } catch { failure.withLock { $0 = "\(error)" } }
            done.signal()
        }
        done.wait()
        if let message = failure.withLock({ $0 }) { throw CLIError(message) }
    }
}
