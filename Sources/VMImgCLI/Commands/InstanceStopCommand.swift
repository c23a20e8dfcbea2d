import ArgumentParser
import Instances

/// `instance stop NAME`: ACPI power-down, then QMP `quit`, then SIGKILL.
struct InstanceStopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a running instance.")

    @OptionGroup var home: HomeOptions
    @Option(help: ArgumentHelp("Seconds to wait for the guest to power off before quitting QEMU.", valueName: "S"))
    var timeout = 30
    @Argument(help: "Instance name.") var name: String

    func run() throws {
        let result = try home.run { try $0.stop(name, timeout: Double(timeout)) }
        say("Stopped '\(name)'" + (result.graceful ? " (guest powered off)" : " (forced: QEMU quit)"))
    }
}
