import ArgumentParser
import Instances

/// `instance disk NAME`: prints the drive's absolute path (for qemu-img, qemu-io, boot scripts).
struct InstanceDiskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk", abstract: "Print the path of an instance's drive (qcow2).")

    @OptionGroup var home: HomeOptions
    @Argument(help: "Instance name.") var name: String

    func run() throws {
        say(try home.run { try $0.disk(name) })
    }
}
