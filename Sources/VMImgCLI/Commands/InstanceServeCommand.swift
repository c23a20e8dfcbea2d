import ArgumentParser
import Instances
import NBDServer

/// `instance serve NAME [--port P] [--bind ADDR] [--socket PATH] [--read-only]`: exports the drive
/// over NBD as `NAME` (R16: drives reached over the network) and each snapshot read-only as
/// `NAME@SNAPSHOT`, until interrupted. Refused while the instance runs (its QEMU owns the drive).
struct InstanceServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Export an instance's drive and snapshots over NBD.")

    @OptionGroup var home: HomeOptions
    @Option(help: "Address to listen on.") var bind = "127.0.0.1"
    @Option(help: "TCP port.") var port = 10809
    @Option(help: "Listen on a Unix socket instead of TCP.") var socket: String?
    @Flag(name: .customLong("read-only"), help: "Export the drive read-only too.") var readOnly = false
    @Argument(help: "Instance name.") var name: String

    func run() throws {
        let details = try home.run { manager in
            let details = try manager.show(name)
            guard details.summary.state == .stopped else {
                throw InstancesError.instanceRunning(instance: name, operation: "serve")
            }
            return details
        }
        let drive = details.summary.drivePath
        let exports =
            [NBDServer.Export(name: name, path: drive, readOnly: readOnly, format: "qcow2")]
            + details.snapshots.map {
                NBDServer.Export(
                    name: "\(name)@\($0.name)", path: drive, readOnly: true, format: "qcow2",
                    snapshot: $0.qcowID ?? $0.name)
            }
        try ServeCommand.block { [exports, bind, port, socket] in
            try await NBDServer.serve(exports: exports, bind: bind, port: port, socketPath: socket) { address in
                Console.current.err("vmimg: serving \(exports.map(\.name).joined(separator: ", ")) on \(address)\n")
            }
        }
    }
}
