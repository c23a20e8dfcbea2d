import ArgumentParser
import Instances

/// `instance list [--output json]`.
struct InstanceListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List instances.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag

    func run() throws {
        let json = try output.isJSON()
        let list = try home.run { try $0.list() }
        if json { return try sayJSON(list.map(InstanceJSON.init)) }
        Console.current.out(
            TableRenderer.table(
                ["Name", "State", "Virtual size", "Snapshots", "Audit", "Base image"],
                list.map {
                    [
                        $0.name, $0.state.rawValue, bytes($0.virtualSize), String($0.snapshotCount), $0.audit.rawValue,
                        $0.baseImage ?? "-",
                    ]
                }))
    }
}
