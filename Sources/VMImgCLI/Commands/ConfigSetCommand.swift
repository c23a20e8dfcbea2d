import ArgumentParser
import Instances

/// `config set budget SIZE|none`: the host-wide limit checked before each snapshot.
struct ConfigSetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a setting: budget SIZE (or none).")

    @OptionGroup var home: HomeOptions
    @Argument(help: "Setting: budget.") var key: String
    @Argument(help: "Value: a size (k, M, G, T suffixes), or none.") var value: String

    func validate() throws {
        guard key == "budget" else { throw ValidationError("unknown setting '\(key)'; settings: budget") }
    }

    func run() throws {
        let budget: UInt64? = ["none", "off"].contains(value) ? nil : try parseSize(value, "budget")
        try home.run { try $0.setBudget(budget) }
        say(budget.map { "budget set to \(bytes($0))" } ?? "budget removed")
    }
}
