import ArgumentParser
import Foundation
import ImageKit
import QCow2

/// `compact [-q] [--output ofmt] filename` (vmimg extra): rewrites a qcow2 image in place with all
/// its internal snapshots, shared clusters stored once, data in guest order; reports file size,
/// fragmentation and per-snapshot space before and after.
struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Rewrite a qcow2 image in place, keeping its snapshots, to shrink and defragment it.")

    @OptionGroup var quiet: QuietFlag
    @OptionGroup var output: OutputFlag

    @Argument(help: "Image file.") var filename: String

    func run() throws {
        let json = try output.isJSON()
        let result = try engine { _ in try Compactor.compact(path: filename) }
        guard !quiet.quiet else { return }
        let report = CompactJSON(result)
        Console.current.out(json ? try JSONWriter.pretty(report) + "\n" : CompactJSON.human(result))
    }
}

/// `compact --output json`: one object per side, keys in qemu-img's kebab case.
struct CompactJSON: Encodable {
    struct Side: Encodable {
        var fileLength: UInt64
        var actualSize: UInt64
        var allocatedClusters: UInt64
        var fragmentedClusters: UInt64
        var snapshots: [Snapshot]
        enum CodingKeys: String, CodingKey {
            case fileLength = "file-length", actualSize = "actual-size", allocatedClusters = "allocated-clusters"
            case fragmentedClusters = "fragmented-clusters", snapshots
        }
    }
    struct Snapshot: Encodable {
        var id: String
        var name: String
        var referenced: UInt64
        var unique: UInt64
        var written: UInt64
    }
    var before: Side
    var after: Side

    init(_ result: CompactResult) {
        func side(_ f: CompactFigures) -> Side {
            Side(
                fileLength: f.fileLength, actualSize: f.allocatedBytes, allocatedClusters: f.allocatedClusters,
                fragmentedClusters: f.fragmentedClusters,
                snapshots: f.snapshots.map {
                    Snapshot(
                        id: $0.id, name: $0.name, referenced: $0.referencedBytes, unique: $0.uniqueBytes,
                        written: $0.writtenBytes)
                })
        }
        before = side(result.before)
        after = side(result.after)
    }

    static func human(_ r: CompactResult) -> String {
        func pct(_ f: CompactFigures) -> String { String(format: "%.2f%%", f.fragmentation) }
        var out = "file size: \(HumanFormat.size(r.before.fileLength)) -> \(HumanFormat.size(r.after.fileLength))\n"
        out +=
            "disk size: \(HumanFormat.size(r.before.allocatedBytes)) -> \(HumanFormat.size(r.after.allocatedBytes))\n"
        out += "fragmented: \(pct(r.before)) -> \(pct(r.after))\n"
        for (b, a) in zip(r.before.snapshots, r.after.snapshots) {
            out +=
                "snapshot \(b.id) \(b.name): referenced \(HumanFormat.size(b.referencedBytes)) -> "
                + "\(HumanFormat.size(a.referencedBytes)), unique \(HumanFormat.size(b.uniqueBytes)) -> "
                + "\(HumanFormat.size(a.uniqueBytes))\n"
        }
        return out
    }
}
