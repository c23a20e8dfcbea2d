import ArgumentParser
import Console
import Foundation
import Instances

/// `vmimg console`: the web console and JSON API over the home's instances and images
/// (vmimg extension; see Formats/console.md and Formats/api.yaml).
struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "Serve the web console and the HTTP API (loopback by default).")

    @Option(name: .customLong("bind"), help: "Address to listen on.") var bind = "127.0.0.1"
    @Option(name: .customLong("port"), help: "TCP port (0 picks a free one).") var port = 8080
    @Option(name: .customLong("home"), help: "The vmimg home (default: $VMIMG_HOME, else ~/.local/share/vmimg).")
    var home: String?
    @Option(name: .customLong("max-upload"), help: "Largest image upload, e.g. 8G.") var maxUpload = "64G"
    @Flag(name: .customLong("print-token"), help: "Print the access token (made on first use) and exit.")
    var printToken = false
    @Flag(name: .customLong("allow-remote"), help: "Allow a non-loopback address (no TLS: trusted networks only).")
    var allowRemote = false

    func validate() throws {
        guard ConsoleServer.isLoopback(bind) || allowRemote else {
            throw ValidationError("--bind \(bind) is not a loopback address; add --allow-remote to serve it anyway")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
    }

    func run() throws {
        let vmimgHome = VMImgHome.resolve(explicit: home)
        let token: String
        do {
            token = try AccessToken.loadOrCreate(in: vmimgHome)
        } catch {
            throw CLIError("\(error)")
        }
        if printToken {
            Console.current.out(token + "\n")
            return
        }
        guard let cap = SizeValue.parse(maxUpload), cap > 0 else {
            throw CLIError.usage("invalid --max-upload '\(maxUpload)'")
        }
        let manager: InstanceManager
        do {
            manager = try InstanceManager(home: vmimgHome)
        } catch {
            throw CLIError("\(error)")
        }
        for line in manager.recoveryReport.recovered + manager.recoveryReport.notices {
            Console.current.err("vmimg: \(line)\n")
        }
        let service = ConsoleService(manager: manager, token: token, maxUploadBytes: Int64(cap))
        try ServeCommand.block { [bind, port] in
            let app = ConsoleServer.application(service: service, host: bind, port: port) { address in
                Console.current.err(
                    "vmimg: console on http://\(address)/ (home \(vmimgHome.root)); log in with the token from "
                        + "'vmimg console --print-token'\n")
            }
            try await app.runService()
        }
    }
}
