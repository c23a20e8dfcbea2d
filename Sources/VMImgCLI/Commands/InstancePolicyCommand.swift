import ArgumentParser
import Foundation
import Instances

/// `instance policy set|show|clear INSTANCE`: a drive's snapshot schedule and retention (vmimg).
struct InstancePolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Scheduled snapshots with hourly, daily and weekly retention.",
        subcommands: [Set.self, Show.self, Clear.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Take a snapshot every interval; keep the newest per hour, day, week.")
        @OptionGroup var home: HomeOptions
        @Option(help: ArgumentHelp("Interval between snapshots (30m, 1h, 1d).", valueName: "interval"))
        var every: String
        @Option(name: .customLong("keep-hourly"), help: "Hours whose newest snapshot is kept.") var keepHourly = 0
        @Option(name: .customLong("keep-daily"), help: "Days whose newest snapshot is kept.") var keepDaily = 0
        @Option(name: .customLong("keep-weekly"), help: "ISO weeks whose newest snapshot is kept.") var keepWeekly = 0
        @Argument(help: "Instance name.") var instance: String

        func run() throws {
            try home.run { manager in
                let policy = try SnapshotPolicy(
                    every: SnapshotPolicy.parseInterval(every), keepHourly: keepHourly, keepDaily: keepDaily,
                    keepWeekly: keepWeekly)
                try manager.setPolicy(instance: instance, policy)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the drive's policy.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputFlag
        @Argument(help: "Instance name.") var instance: String

        func run() throws {
            let json = try output.isJSON()
            let policy = try home.run { try $0.policy(instance: instance) }
            if json {
                Console.current.out(try JSONWriter.pretty(policy.map(PolicyJSON.init)) + "\n")
            } else if let p = policy {
                Console.current.out(
                    "every: \(p.every)s\nkeep-hourly: \(p.keepHourly)\nkeep-daily: \(p.keepDaily)\n"
                        + "keep-weekly: \(p.keepWeekly)\n")
            } else {
                Console.current.out("no policy\n")
            }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear", abstract: "Remove the drive's policy.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "Instance name.") var instance: String

        func run() throws { try home.run { try $0.clearPolicy(instance: instance) } }
    }
}

/// `instance policy show --output json`.
struct PolicyJSON: Encodable {
    var every: Int64
    var keepHourly: Int
    var keepDaily: Int
    var keepWeekly: Int
    init(_ p: SnapshotPolicy) {
        every = p.every
        keepHourly = p.keepHourly
        keepDaily = p.keepDaily
        keepWeekly = p.keepWeekly
    }
    enum CodingKeys: String, CodingKey {
        case every, keepHourly = "keep-hourly", keepDaily = "keep-daily", keepWeekly = "keep-weekly"
    }
}
