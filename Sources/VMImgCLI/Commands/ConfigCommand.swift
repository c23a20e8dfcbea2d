import ArgumentParser

/// `vmimg config set|show`: host-wide settings of the home (vmimg extension).
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show or set host-wide settings (the space budget).",
        subcommands: [ConfigSetCommand.self, ConfigShowCommand.self])
}
