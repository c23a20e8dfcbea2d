import ArgumentParser
import Foundation
import Instances

/// `instance start NAME [--kernel F --initrd F --append S] [--memory M] [--accel tcg|kvm]
/// [--wait SECONDS] [-- extra qemu args]`: runs qemu-system-x86_64 daemonized with a QMP socket and
/// the serial console in a log file. `--wait` waits for the guest to power off and prints that log.
struct InstanceStartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Boot an instance in qemu-system-x86_64 (TCG unless --accel kvm).")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag
    @Option(help: ArgumentHelp("Boot this kernel directly.", valueName: "FILE")) var kernel: String?
    @Option(help: ArgumentHelp("Initial ramdisk for --kernel.", valueName: "FILE")) var initrd: String?
    @Option(help: ArgumentHelp("Kernel command line for --kernel.", valueName: "STRING")) var append: String?
    @Option(help: ArgumentHelp("Guest memory: MiB, or a size with a suffix (512M, 1G).", valueName: "M"))
    var memory = "256"
    @Option(help: ArgumentHelp("tcg (default) or kvm.", valueName: "ACCEL")) var accel = "tcg"
    @Option(
        help: ArgumentHelp(
            "Wait up to SECONDS for the guest to power off, then print its serial console.", valueName: "SECONDS"))
    var wait: Int?
    @Argument(help: "Instance name.") var name: String
    @Argument(parsing: .postTerminator, help: "Extra qemu-system-x86_64 arguments, after --.")
    var extra: [String] = []

    func validate() throws {
        guard ["tcg", "kvm"].contains(accel) else { throw ValidationError("--accel must be tcg or kvm") }
        if (initrd != nil || append != nil) && kernel == nil {
            throw ValidationError("--initrd and --append need --kernel")
        }
        if let wait, wait <= 0 { throw ValidationError("--wait needs a number of seconds above 0") }
    }

    func run() throws {
        let json = try output.isJSON()
        let options = StartOptions(
            kernel: kernel.map(absolute), initrd: initrd.map(absolute), append: append, memory: try mebibytes(),
            accel: accel, extraArguments: extra)
        let result = try home.run { try $0.start(name, options: options) }
        if json {
            try sayJSON(StartJSON(result: result))
        } else {
            say("Started '\(name)' (pid \(result.pid), \(result.status)); serial console: \(result.consoleLog)")
        }
        guard let wait else { return }
        let deadline = Date().addingTimeInterval(TimeInterval(wait))
        while try home.run(reportRecovery: false, { try $0.list() }).first(where: { $0.name == name })?.state
            == .running
        {
            guard Date() < deadline else {
                throw CLIError(
                    "'\(name)' still runs after \(wait) s (console: \(result.consoleLog)); "
                        + "stop it with 'vmimg instance stop \(name)'")
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        if !json {
            let log = (try? String(contentsOfFile: result.consoleLog, encoding: .utf8)) ?? ""
            Console.current.out(log.replacingOccurrences(of: "\r", with: ""))
            Console.current.err("vmimg: '\(name)' powered off\n")
        }
    }

    /// `--memory` in MiB: a bare number is MiB, a suffixed size is converted.
    func mebibytes() throws -> Int {
        if let plain = Int(memory), plain > 0 { return plain }
        let value = try parseSize(memory, "--memory")
        guard value >= 1 << 20 else { throw CLIError.usage("--memory must be at least 1 MiB") }
        return Int(value >> 20)
    }

    /// QEMU runs daemonized from the home's run directory's view; relative paths are made absolute.
    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
