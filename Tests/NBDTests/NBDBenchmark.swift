import Foundation
import Testing
import TestSupport

/// Not a test: starts the server in-process and runs `Samples/bench-nbd.sh` against it and qemu-nbd.
/// `VMIMG_LONG=1 swift test -c release --filter NBDBenchmark`; `VMIMG_BENCH_SIZE` (default 512M).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["VMIMG_LONG"] == "1", "benchmark: set VMIMG_LONG=1"))
struct NBDBenchmark {
    @Test(.timeLimit(.minutes(30))) func readThroughputVersusQemuNBD() async throws {
        let scratch = try Scratch(label: "nbd-bench")
        let size = ProcessInfo.processInfo.environment["VMIMG_BENCH_SIZE"] ?? "512M"
        let image = scratch.path("bench.qcow2")
        try Qemu.create(image, size: size)
        // Fully allocated with non-zero data, so convert cannot skip anything.
        let info = try Qemu.infoJSON(image)
        let bytes = try #require(info["virtual-size"]?.int)
        try Qemu.io(image, commands: ["write -P 0x5a 0 \(bytes)"])
        let running = try await RunningServer.start([.init(name: "disk", path: image, readOnly: true)])
        let result = try Tool.run(
            "bash", [Locations.samples + "/bench-nbd.sh", image, running.url("disk")], timeout: .seconds(1500))
        try await running.server.stop()
        print(result.stdoutText)
        try result.checked()
    }
}
