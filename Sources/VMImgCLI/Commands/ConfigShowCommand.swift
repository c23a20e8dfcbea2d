import ArgumentParser
import Instances

/// `config show [--output json]`: the home, the budget and the bytes vmimg's files use.
struct ConfigShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the settings.")

    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputFlag

    func run() throws {
        let json = try output.isJSON()
        let (root, status) = try home.run { ($0.home.root, try $0.budgetStatus()) }
        if json { return try sayJSON(ConfigJSON(home: root, status: status)) }
        Console.current.out(
            TableRenderer.fields([
                ("home", root), ("budget", status.budget.map(bytes) ?? "none"), ("in use", bytes(status.inUse)),
            ]))
    }
}
