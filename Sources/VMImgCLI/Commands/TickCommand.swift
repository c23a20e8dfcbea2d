import ArgumentParser
import Foundation
import Instances

/// `tick [--home DIR]` (vmimg): runs every drive's snapshot policy once — creates the snapshots
/// that are due, expires those no longer kept. Safe to run from cron or a systemd timer
/// (Samples/vmimg-tick.timer): idempotent within a slot, serialized by the home lock.
struct TickCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tick", abstract: "Take due policy snapshots and expire old ones (for cron or a timer).")

    @OptionGroup var home: HomeOptions
    @OptionGroup var quiet: QuietFlag

    func run() throws {
        let results = try home.run { try $0.tick() }
        var failed = false
        for r in results {
            if !quiet.quiet {
                if let c = r.created { Console.current.out("\(r.instance): created \(c)\n") }
                for e in r.expired { Console.current.out("\(r.instance): expired \(e)\n") }
                if let s = r.skipped { Console.current.out("\(r.instance): skipped: \(s)\n") }
            }
            for e in r.errors {
                Console.current.err("vmimg: \(r.instance): \(e)\n")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
