import ArgumentParser
import Instances

/// `instance audit INSTANCE [--output json]`: the instance's audit log, oldest first.
struct InstanceAuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Print an instance's audit log (see --audit on create).")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag
    @Argument(help: "Instance name.") var instance: String

    func run() throws {
        let json = try output.isJSON()
        let entries = try home.run { try $0.auditLog(instance: instance) }
        if json { return try sayJSON(entries.map(AuditJSON.init)) }
        Console.current.out(
            TableRenderer.table(
                ["At", "Operation", "Subject", "Mode", "Detail"],
                entries.map { [humanDate($0.at), $0.operation, $0.subject, $0.mode.rawValue, $0.detail] }))
    }
}
