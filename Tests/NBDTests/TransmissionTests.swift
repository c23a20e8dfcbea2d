import NBDProtocol
import NIOCore
import NIOEmbedded
import Testing
import TestSupport

@testable import NBDServer

@Suite struct TransmissionTests {
    @Test func readPastEndIsEinval() throws {
        let server = try EmbeddedServer()
        try server.negotiate(structured: false)
        try server.send(Wire.request(.read, cookie: 7, offset: UInt64(server.size) - 512, length: 1024))
        var out = try server.output()
        #expect(Wire.readSimpleReply(&out) == .init(error: NBDErrno.einval.rawValue, cookie: 7))
        // offset + length overflows UInt64: still EINVAL, no trap.
        try server.send(Wire.request(.read, cookie: 8, offset: UInt64.max - 10, length: 4096))
        out = try server.output()
        #expect(Wire.readSimpleReply(&out) == .init(error: NBDErrno.einval.rawValue, cookie: 8))
        #expect(server.channel.isActive)
    }

    @Test func structuredReadPastEndIsErrorChunk() throws {
        let server = try EmbeddedServer()
        try server.negotiate()
        try server.send(Wire.request(.read, cookie: 9, offset: UInt64(server.size), length: 1))
        var out = try server.output()
        let chunk = try #require(Wire.readChunk(&out))
        #expect(chunk.type == NBDReplyType.error.rawValue)
        #expect(chunk.flags == NBDReplyFlags.done.rawValue)
        #expect(Array(chunk.payload.prefix(4)) == [0, 0, 0, 22])
    }

    @Test func oversizedReadIsEinvalAndOversizedWriteCloses() throws {
        let server = try EmbeddedServer()
        try server.negotiate(structured: false)
        try server.send(Wire.request(.read, cookie: 1, offset: 0, length: 32 << 20 + 1))
        var out = try server.output()
        #expect(Wire.readSimpleReply(&out)?.error == NBDErrno.einval.rawValue)
        #expect(server.channel.isActive)
        // A WRITE announcing more than 32 MiB: refused on the header, before its payload is buffered.
        try server.send(Wire.request(.write, cookie: 2, offset: 0, length: 64 << 20))
        #expect(!server.channel.isActive)
    }

    @Test func unknownCommandAndFlagsAreEinval() throws {
        let server = try EmbeddedServer()
        try server.negotiate(structured: false)
        try server.send(Wire.request(NBDCommand(rawValue: 99), cookie: 3, offset: 0, length: 0))
        try server.send(Wire.request(.flush, cookie: 4, offset: 0, length: 0, flags: 0x8000))
        try server.send(Wire.request(.cache, cookie: 5, offset: 0, length: 512))
        var out = try server.output()
        for cookie in [UInt64(3), 4, 5] {
            #expect(Wire.readSimpleReply(&out) == .init(error: NBDErrno.einval.rawValue, cookie: cookie))
        }
    }

    @Test func writeToReadOnlyExportIsEperm() throws {
        let server = try EmbeddedServer(readOnly: true)
        try server.negotiate(structured: false)
        try server.send(Wire.request(.write, cookie: 1, offset: 0, length: 4, payload: [1, 2, 3, 4]))
        try server.send(Wire.request(.trim, cookie: 2, offset: 0, length: 4096))
        try server.send(Wire.request(.writeZeroes, cookie: 3, offset: 0, length: 4096))
        var out = try server.output()
        for cookie in [UInt64(1), 2, 3] {
            #expect(Wire.readSimpleReply(&out) == .init(error: NBDErrno.eperm.rawValue, cookie: cookie))
        }
    }

    @Test func writeThenSimpleReadRoundTrips() throws {
        let server = try EmbeddedServer()
        try server.negotiate(structured: false)
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 3) }
        try server.send(Wire.request(.write, cookie: 1, offset: 5000, length: 1000, flags: 1, payload: data))
        try server.send(Wire.request(.read, cookie: 2, offset: 5000, length: 1000))
        var out = try server.output()
        #expect(Wire.readSimpleReply(&out) == .init(error: 0, cookie: 1))
        #expect(Wire.readSimpleReply(&out) == .init(error: 0, cookie: 2))
        #expect(out.readBytes(length: 1000) == data)
    }

    @Test func structuredReadSendsDataAndHoleChunks() throws {
        // 4 KiB of data, then zeros (a raw file reads them from disk; the hole is found by SEEK_DATA
        // only where the file system punched one, so the test asks for a range that is all zeros
        // after writing zeroes with unmap).
        let server = try EmbeddedServer()
        try server.negotiate()
        try server.send(Wire.request(.writeZeroes, cookie: 1, offset: 65536, length: 65536))
        try server.send(Wire.request(.read, cookie: 2, offset: 0, length: 131072))
        var out = try server.output()
        #expect(Wire.readSimpleReply(&out) == .init(error: 0, cookie: 1))
        var covered: UInt64 = 0
        var sawDone = false
        var content = [UInt8](repeating: 0, count: 131072)
        while let chunk = Wire.readChunk(&out) {
            #expect(chunk.cookie == 2)
            #expect(!sawDone)
            sawDone = chunk.flags & 1 != 0
            var p = ByteBuffer(bytes: chunk.payload)
            let rawOffset = p.readInteger(as: UInt64.self)
            let offset = try #require(rawOffset)
            if chunk.type == NBDReplyType.offsetData.rawValue {
                let bytes = Array(p.readableBytesView)
                content.replaceSubrange(Int(offset)..<Int(offset) + bytes.count, with: bytes)
                covered += UInt64(bytes.count)
            } else {
                #expect(chunk.type == NBDReplyType.offsetHole.rawValue)
                let holeLength = p.readInteger(as: UInt32.self)
                covered += UInt64(try #require(holeLength))
            }
        }
        #expect(sawDone)
        #expect(covered == 131072)
        #expect(Array(content[0..<4096]) == (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) })
        #expect(content[4096...].allSatisfy { $0 == 0 })
    }

    @Test func blockStatusNeedsContextAndReportsExtents() throws {
        let plain = try EmbeddedServer()
        try plain.negotiate(structured: false)
        try plain.send(Wire.request(.blockStatus, cookie: 1, offset: 0, length: 4096))
        var out = try plain.output()
        #expect(Wire.readSimpleReply(&out)?.error == NBDErrno.einval.rawValue)

        let server = try EmbeddedServer()
        try server.negotiate()
        try server.send(Wire.request(.blockStatus, cookie: 2, offset: 0, length: UInt32(server.size)))
        out = try server.output()
        let chunk = try #require(Wire.readChunk(&out))
        #expect(chunk.type == NBDReplyType.blockStatus.rawValue)
        #expect(chunk.flags == 1)
        var p = ByteBuffer(bytes: chunk.payload)
        #expect(p.readInteger(as: UInt32.self) == NBDNegotiation.baseAllocationContextID)
        var total: UInt64 = 0
        while let length = p.readInteger(as: UInt32.self), p.readInteger(as: UInt32.self) != nil {
            total += UInt64(length)
        }
        #expect(total == UInt64(server.size))
    }

    @Test func discWaitsThenCloses() throws {
        let server = try EmbeddedServer()
        try server.negotiate()
        try server.send(Wire.request(.disc, cookie: 1, offset: 0, length: 0))
        #expect(!server.channel.isActive)
    }

    @Test func truncatedRequestAtEOFIsHandled() throws {
        let server = try EmbeddedServer()
        try server.negotiate()
        var partial = Wire.request(.write, cookie: 1, offset: 0, length: 4096, payload: [1, 2, 3])
        try server.send(partial.readSlice(length: partial.readableBytes) ?? ByteBuffer())
        #expect(server.channel.isActive)
        _ = try? server.channel.finish()
    }
}

@Suite struct CodecTests {
    @Test func encoderWritesStructuredHeaderThenPayload() {
        var out = ByteBuffer()
        NBDServerEncoder.encode(
            .structuredReply(.offsetHole(cookie: 0xAABB, offset: 4096, length: 512, done: true)), into: &out)
        #expect(
            Array(out.readableBytesView)
                == [0x66, 0x8e, 0x33, 0xef, 0, 1, 0, 2] + [0, 0, 0, 0, 0, 0, 0xAA, 0xBB] + [0, 0, 0, 12]
                + [0, 0, 0, 0, 0, 0, 0x10, 0] + [0, 0, 2, 0])
    }

    @Test func decoderFramesSplitInput() throws {
        var decoder = NBDClientDecoder()
        var input = Wire.clientFlags()
        var option = Wire.option(NBDOption.go.rawValue, Wire.goData("x"))
        input.writeBuffer(&option)
        var messages: [NBDClientMessage] = []
        var pending = ByteBuffer()
        // One byte at a time: nothing is consumed until a whole message is there.
        for byte in input.readableBytesView {
            pending.writeInteger(byte)
            while let message = try decoder.decode(buffer: &pending) { messages.append(message) }
        }
        #expect(messages.count == 2)
        #expect(messages.first == .clientFlags([.fixedNewstyle, .noZeroes]))
        var request = Wire.request(.write, cookie: 5, offset: 512, length: 3, payload: [7, 8, 9])
        let decoded = try #require(try decoder.decode(buffer: &request))
        #expect(
            decoded
                == .request(
                    NBDRequest(
                        command: .write, cookie: 5, offset: 512, length: 3, payload: ByteBuffer(bytes: [7, 8, 9]))))
    }

    @Test func sessionChecksRangesInSubtractionForm() {
        let export = NBDExportDescriptor(name: "d", size: 1 << 20, flags: [.hasFlags])
        let session = NBDSession(export: export, structuredReplies: true, baseAllocationContextID: 1)
        #expect(session.check(NBDRequest(command: .read, cookie: 1, offset: 1 << 20, length: 0)) == .execute)
        #expect(session.check(NBDRequest(command: .read, cookie: 1, offset: (1 << 20) + 1, length: 0)) != .execute)
        #expect(
            session.check(NBDRequest(command: .writeZeroes, cookie: 1, offset: UInt64.max, length: UInt32.max))
                == .reject(
                    .enospc,
                    "NBD_CMD_WRITE_ZEROES: offset \(UInt64.max) + length \(UInt32.max) is past the end (1048576)"))
        #expect(session.check(NBDRequest(flags: .reqOne, command: .read, cookie: 1, offset: 0, length: 1)) != .execute)
        #expect(
            session.check(NBDRequest(flags: .reqOne, command: .blockStatus, cookie: 1, offset: 0, length: 1))
                == .execute)
    }
}
