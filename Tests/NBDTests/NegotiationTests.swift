import Foundation
import NBDProtocol
import NIOCore
import NIOEmbedded
import Testing
import TestSupport

@testable import NBDServer

/// The server's connection pipeline on `EmbeddedChannel`, over a small raw image, engine calls inline.
final class EmbeddedServer {
    let scratch: Scratch
    let channel: EmbeddedChannel
    let size: Int

    init(size: Int = 1 << 20, readOnly: Bool = false, content: [UInt8]? = nil) throws {
        scratch = try Scratch(label: "nbd-embedded")
        self.size = size
        let path = scratch.path("disk.raw")
        var bytes = content ?? [UInt8](repeating: 0, count: size)
        if content == nil { for i in 0..<4096 { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1) } }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let registry = try NBDServer.openExports([.init(name: "disk", path: path, readOnly: readOnly, format: "raw")])
        let handler = NBDConnectionHandler(catalog: ConnectionCatalog(registry: registry), executor: .inline)
        channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(NBDClientDecoder()), NBDServerEncoder(), handler,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Everything the server wrote so far.
    func output() throws -> ByteBuffer {
        var all = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
        return all
    }

    func send(_ buffer: ByteBuffer) throws { try channel.writeInbound(buffer) }

    /// Handshake, client flags, optional structured replies + base:allocation, then GO.
    func negotiate(structured: Bool = true, sendFlags: Bool = true) throws {
        _ = try output()
        if sendFlags { try send(Wire.clientFlags()) }
        if structured {
            try send(Wire.option(NBDOption.structuredReply.rawValue))
            try send(
                Wire.option(
                    NBDOption.setMetaContext.rawValue, Wire.metaContextData("disk", queries: ["base:allocation"])))
        }
        try send(Wire.option(NBDOption.go.rawValue, Wire.goData("disk")))
        var out = try output()
        while let reply = Wire.readOptionReply(&out) {
            if reply.option == NBDOption.go.rawValue && reply.type == .ack { return }
            #expect(!reply.type.isError, "negotiation failed: \(reply)")
        }
        Issue.record("no ACK for NBD_OPT_GO")
    }
}

@Suite struct NegotiationTests {
    @Test func handshakeStartsWithMagicAndFlags() throws {
        let server = try EmbeddedServer()
        var out = try server.output()
        #expect(out.readInteger(as: UInt64.self) == NBDMagic.initPasswd)
        #expect(out.readInteger(as: UInt64.self) == NBDMagic.iHaveOpt)
        #expect(out.readInteger(as: UInt16.self) == 3)  // FIXED_NEWSTYLE | NO_ZEROES
        #expect(out.readableBytes == 0)
    }

    @Test func goAnswersExportInfoBlockSizeThenAck() throws {
        let server = try EmbeddedServer(readOnly: true)
        _ = try server.output()
        try server.send(Wire.clientFlags())
        try server.send(Wire.option(NBDOption.go.rawValue, Wire.goData("disk", infos: [3])))
        var out = try server.output()
        let export = try #require(Wire.readOptionReply(&out))
        #expect(export.type == .info)
        var info = ByteBuffer(bytes: export.data)
        #expect(info.readInteger(as: UInt16.self) == 0)
        #expect(info.readInteger(as: UInt64.self) == UInt64(server.size))
        let rawFlags = info.readInteger(as: UInt16.self)
        let flags = NBDTransmissionFlags(rawValue: try #require(rawFlags))
        #expect(flags.contains([.hasFlags, .readOnly, .sendFlush]))
        let sizes = try #require(Wire.readOptionReply(&out))
        var s = ByteBuffer(bytes: sizes.data)
        #expect(s.readInteger(as: UInt16.self) == 3)
        #expect(s.readInteger(as: UInt32.self) == 1)
        #expect(s.readInteger(as: UInt32.self) == 4096)
        #expect(s.readInteger(as: UInt32.self) == 32 << 20)
        #expect(Wire.readOptionReply(&out)?.type == .ack)
    }

    @Test func listNamesTheExport() throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        try server.send(Wire.option(NBDOption.list.rawValue))
        var out = try server.output()
        let entry = try #require(Wire.readOptionReply(&out))
        #expect(entry.type == .server)
        #expect(entry.data == [0, 0, 0, 4] + Array("disk".utf8))
        #expect(Wire.readOptionReply(&out)?.type == .ack)
    }

    @Test func badMagicClosesTheConnection() throws {
        let server = try EmbeddedServer()
        try server.send(Wire.clientFlags())
        try server.send(Wire.option(NBDOption.go.rawValue, Wire.goData("disk"), magic: 0x1122_3344_5566_7788))
        #expect(!server.channel.isActive)
    }

    @Test func unknownClientFlagsClose() throws {
        let server = try EmbeddedServer()
        try server.send(Wire.clientFlags(0x8000_0001))
        #expect(!server.channel.isActive)
    }

    @Test func oversizeOptionGetsTooBigAndCloses() throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        // Only the header: the server must refuse on the length alone, before buffering 4 GiB.
        try server.send(Wire.option(NBDOption.go.rawValue, length: UInt32.max))
        var out = try server.output()
        let reply = try #require(Wire.readOptionReply(&out))
        #expect(reply.type == .errTooBig)
        #expect(!server.channel.isActive)
    }

    @Test(arguments: [UInt32(4), 42, 11, 0x7fff_ffff])
    func unknownOptionIsUnsupported(code: UInt32) throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        try server.send(Wire.option(code, [1, 2, 3]))
        var out = try server.output()
        let reply = try #require(Wire.readOptionReply(&out))
        #expect(reply.option == code)
        #expect(reply.type == .errUnsup)
        #expect(server.channel.isActive)
    }

    @Test func unknownExportIsErrUnknownAndNegotiationContinues() throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        try server.send(Wire.option(NBDOption.go.rawValue, Wire.goData("nope")))
        var out = try server.output()
        #expect(Wire.readOptionReply(&out)?.type == .errUnknown)
        try server.negotiate(structured: false, sendFlags: false)
    }

    @Test func malformedGoIsInvalid() throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        // Name length runs past the option data.
        try server.send(Wire.option(NBDOption.go.rawValue, [0, 0, 0x10, 0, 0x41, 0, 0]))
        var out = try server.output()
        #expect(Wire.readOptionReply(&out)?.type == .errInvalid)
        #expect(server.channel.isActive)
    }

    @Test func setMetaContextNeedsStructuredReplies() throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        try server.send(
            Wire.option(NBDOption.setMetaContext.rawValue, Wire.metaContextData("disk", queries: ["base:allocation"])))
        var out = try server.output()
        #expect(Wire.readOptionReply(&out)?.type == .errInvalid)
    }

    @Test func abortAcksAndCloses() throws {
        let server = try EmbeddedServer()
        _ = try server.output()
        try server.send(Wire.clientFlags())
        try server.send(Wire.option(NBDOption.abort.rawValue))
        var out = try server.output()
        #expect(Wire.readOptionReply(&out)?.type == .ack)
        #expect(!server.channel.isActive)
    }

    @Test func requestBeforeGoCloses() throws {
        let server = try EmbeddedServer()
        try server.send(Wire.clientFlags())
        try server.send(Wire.request(.read, cookie: 1, offset: 0, length: 512))
        #expect(!server.channel.isActive)
    }

    @Test func handshakeDeadlineClosesIdleClients() throws {
        let server = try EmbeddedServer()
        try server.send(Wire.clientFlags())
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(server.channel.isActive)
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!server.channel.isActive)
    }

    @Test func deadlineDoesNotApplyAfterGo() throws {
        let server = try EmbeddedServer()
        try server.negotiate()
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(server.channel.isActive)
    }
}
