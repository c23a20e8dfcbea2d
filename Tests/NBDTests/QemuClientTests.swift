import Foundation
import NBDProtocol
import NIOCore
import NIOPosix
import Testing
import TestSupport

@testable import NBDServer

/// A server on 127.0.0.1 with a free port, stopped by the test.
struct RunningServer {
    let server: NBDServer
    let port: Int

    static func start(_ exports: [NBDServer.Export]) async throws -> RunningServer {
        let server = try NBDServer(configuration: .init(exports: exports, port: 0))
        let address = try await server.start()
        return RunningServer(server: server, port: try #require(address.port))
    }

    func url(_ name: String) -> String { "nbd://127.0.0.1:\(port)/\(name)" }
}

/// An 8 MiB qcow2 image with data, a zero cluster and unallocated space.
func sampleImage(_ scratch: Scratch) throws -> String {
    let path = scratch.path("disk.qcow2")
    try Qemu.create(path, size: "8M")
    try Qemu.io(
        path,
        commands: [
            "write -P 0xab 0 64k", "write -P 0x5c 1M 128k", "write -z 2M 64k", "write -P 0x11 3000k 4k",
            "write -P 0xee 8128k 64k",
        ])
    return path
}

/// `qemu-img map --output=json` reduced to (data, zero) per 64 KiB granule.
func allocationGranules(_ target: String, format: String) throws -> [String] {
    let result = try Qemu.img(["map", "--output=json", "-f", format, target], timeout: .seconds(60)).checked()
    let extents = try #require(try JSON(parsing: result.stdoutText).array)
    var granules: [String] = []
    for extent in extents {
        let length = try #require(extent["length"]?.int)
        let data = extent["data"]?.bool == true
        let zero = extent["zero"]?.bool == true
        for _ in 0..<(length / 65536) { granules.append(data ? "data" : (zero ? "zero" : "hole")) }
    }
    return granules
}

@Suite(.timeLimit(.minutes(15))) struct QemuClientTests {
    @Test func convertOverNBDEqualsImageContent() async throws {
        let scratch = try Scratch(label: "nbd-convert")
        let image = try sampleImage(scratch)
        let running = try await RunningServer.start([.init(name: "disk", path: image, readOnly: true)])
        let out = scratch.path("out.raw")
        let result = try Qemu.img(["convert", "-f", "raw", "-O", "raw", running.url("disk"), out])
        try await running.server.stop()
        try result.checked()
        try Qemu.convertToRaw(image, scratch.path("ref.raw"))
        #expect(try filesEqual(out, scratch.path("ref.raw")))
    }

    @Test func defaultExportNameServesTheOnlyExport() async throws {
        let scratch = try Scratch(label: "nbd-default")
        let image = try sampleImage(scratch)
        let running = try await RunningServer.start([.init(name: "disk", path: image, readOnly: true)])
        let result = try Qemu.io(["-r", "-f", "raw", "-c", "read -P 0xab 0 64k", "nbd://127.0.0.1:\(running.port)"])
        try await running.server.stop()
        try result.checked()
        #expect(!result.stdoutText.contains("fail"), "\(result.stdoutText)")
    }

    @Test func mapOverNBDShowsHolesAndData() async throws {
        let scratch = try Scratch(label: "nbd-map")
        let image = try sampleImage(scratch)
        let running = try await RunningServer.start([.init(name: "disk", path: image, readOnly: true)])
        let overNBD = try allocationGranules(running.url("disk"), format: "raw")
        try await running.server.stop()
        let direct = try allocationGranules(image, format: "qcow2").map { $0 == "hole" ? "zero" : $0 }
        #expect(overNBD == direct)
        #expect(overNBD.contains("zero") && overNBD.contains("data"))
    }

    @Test func qemuIOWritesLandAndCheckStaysClean() async throws {
        let scratch = try Scratch(label: "nbd-write")
        let image = try sampleImage(scratch)
        let running = try await RunningServer.start([.init(name: "disk", path: image)])
        let result = try Qemu.io([
            "-f", "raw", "-c", "write -P 0xcd 512k 192k", "-c", "write -P 0x77 5243880 3000", "-c",
            "write -z 1M 64k", "-c", "discard 0 64k", "-c", "write -z -u 4M 128k", "-c", "flush", running.url("disk"),
        ])
        try await running.server.stop()
        try result.checked()
        #expect(!result.stdoutText.contains("failed"), "\(result.stdoutText)")
        let check = try Qemu.checkJSON(image)
        #expect(check.status == 0, "\(check.report)")
        try Qemu.io(
            image,
            commands: [
                "read -P 0xcd 512k 192k", "read -P 0x77 5243880 3000", "read -P 0 1M 64k", "read -P 0 0 64k",
                "read -P 0x5c 1088k 64k", "read -P 0 4M 128k", "read -P 0xee 8128k 64k",
            ])
    }

    @Test func writeToReadOnlyExportFailsCleanly() async throws {
        let scratch = try Scratch(label: "nbd-ro")
        let image = try sampleImage(scratch)
        let before = try fileSHA256(image)
        let running = try await RunningServer.start([.init(name: "disk", path: image, readOnly: true)])
        let result = try Qemu.io(["-f", "raw", "-c", "write -P 0x99 0 4k", running.url("disk")])
        // The server is still healthy afterwards.
        let after = try Qemu.io(["-r", "-f", "raw", "-c", "read -P 0xab 0 4k", running.url("disk")])
        try await running.server.stop()
        let text = result.stdoutText + result.stderrText
        #expect(result.status != 0 || text.contains("failed") || text.contains("read-only"), "\(result)")
        #expect(text.lowercased().contains("read-only") || text.contains("Permission denied"), "\(text)")
        try after.checked()
        #expect(try fileSHA256(image) == before)
    }

    @Test func malformedClientBytesDoNotCrashTheServer() async throws {
        let scratch = try Scratch(label: "nbd-fuzz")
        let image = try sampleImage(scratch)
        let running = try await RunningServer.start([.init(name: "disk", path: image)])
        var rng = SplitMix64.fromEnvironment()
        var inputs: [[UInt8]] = [
            [],
            [0, 0, 0, 3] + bigEndianBytes(NBDMagic.iHaveOpt) + [0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff],
            [0, 0, 0, 3] + bigEndianBytes(UInt64(0xdead_beef)),
            [0, 0, 0, 3] + bigEndianBytes(NBDMagic.iHaveOpt) + [0, 0, 0, 7, 0, 0, 0, 10] + [0, 0, 0, 4]
                + Array("disk".utf8)
                + [0, 0] + bigEndianBytes(NBDMagic.request) + [0, 0, 0, 1] + [UInt8](repeating: 0xff, count: 20),
            [0, 0, 0, 3] + bigEndianBytes(NBDMagic.iHaveOpt) + [
                0, 0, 0, 10, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            ],
        ]
        for _ in 0..<20 { inputs.append([0, 0, 0, 3] + rng.bytes(Int(rng.next() % 200))) }
        for input in inputs {
            try await sendAndClose(input, port: running.port)
        }
        // Still serving, seed=\(rng.seed).
        let after = try Qemu.io(["-r", "-f", "raw", "-c", "read -P 0xab 0 64k", running.url("disk")])
        try await running.server.stop()
        try after.checked()
        #expect(!after.stdoutText.contains("fail"), "seed=\(rng.seed) \(after.stdoutText)")
        #expect(try Qemu.checkJSON(image).status == 0, "seed=\(rng.seed)")
    }

    @Test func secondConnectionToAWritableExportIsReadOnly() throws {
        let scratch = try Scratch(label: "nbd-writer")
        let image = try sampleImage(scratch)
        let registry = try NBDServer.openExports([.init(name: "disk", path: image)])
        let first = ConnectionCatalog(registry: registry)
        let second = ConnectionCatalog(registry: registry)
        #expect(first.claim("disk")?.isReadOnly == false)
        #expect(second.claim("disk")?.isReadOnly == true)
        first.release()
        #expect(ConnectionCatalog(registry: registry).claim("disk")?.isReadOnly == false)
        registry.close()
    }

    @Test func clientCapClosesExtraConnections() async throws {
        let scratch = try Scratch(label: "nbd-cap")
        let image = try sampleImage(scratch)
        let server = try NBDServer(
            // A long handshake deadline: the idle connection must hold the only slot however slowly
            // qemu-io starts on a loaded machine.
            configuration: .init(
                exports: [.init(name: "disk", path: image, readOnly: true)], port: 0, maxClients: 1,
                handshakeTimeout: .seconds(300)))
        let port = try #require(try await server.start().port)
        // Hold the only slot with an idle connection, then a client is turned away.
        let idle = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try await Task.sleep(for: .milliseconds(100))
        let refused = try Qemu.io(
            ["-r", "-f", "raw", "-c", "read 0 4k", "nbd://127.0.0.1:\(port)/disk"], timeout: .seconds(30))
        try? await idle.close()  // the server may already have dropped it (handshake deadline under load)
        try await Task.sleep(for: .milliseconds(100))
        let accepted = try Qemu.io(["-r", "-f", "raw", "-c", "read -P 0xab 0 4k", "nbd://127.0.0.1:\(port)/disk"])
        try await server.stop()
        #expect(refused.status != 0 || refused.stdoutText.isEmpty, "\(refused)")
        try accepted.checked()
    }

    @Test func refusesNonLoopbackWithoutOptIn() {
        let error = #expect(throws: NBDServerError.self) {
            try NBDServer(configuration: .init(exports: [.init(name: "d", path: "/nonexistent")], host: "0.0.0.0"))
        }
        #expect(error?.description.contains("0.0.0.0") == true)
        #expect(NBDServer.isLoopback("127.0.0.1") && NBDServer.isLoopback("::1") && !NBDServer.isLoopback("10.0.0.1"))
    }

    /// Connects, writes `bytes`, half a second for the server to react, closes.
    func sendAndClose(_ bytes: [UInt8], port: Int) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        try? await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
        try await Task.sleep(for: .milliseconds(20))
        try? await channel.close()
    }
}
