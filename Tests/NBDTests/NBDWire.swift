import NBDProtocol
import NIOCore

/// Client-side bytes and server-reply parsing for the tests (a tiny NBD client).
enum Wire {
    static func clientFlags(_ flags: UInt32 = 3) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(flags)
        return b
    }

    static func option(_ code: UInt32, _ data: [UInt8] = [], magic: UInt64 = NBDMagic.iHaveOpt, length: UInt32? = nil)
        -> ByteBuffer
    {
        var b = ByteBuffer()
        b.writeInteger(magic)
        b.writeInteger(code)
        b.writeInteger(length ?? UInt32(data.count))
        b.writeBytes(data)
        return b
    }

    /// NBD_OPT_GO / NBD_OPT_INFO data.
    static func goData(_ name: String, infos: [UInt16] = []) -> [UInt8] {
        var b = ByteBuffer()
        b.writeInteger(UInt32(name.utf8.count))
        b.writeString(name)
        b.writeInteger(UInt16(infos.count))
        for i in infos { b.writeInteger(i) }
        return Array(b.readableBytesView)
    }

    static func metaContextData(_ name: String, queries: [String]) -> [UInt8] {
        var b = ByteBuffer()
        b.writeInteger(UInt32(name.utf8.count))
        b.writeString(name)
        b.writeInteger(UInt32(queries.count))
        for q in queries {
            b.writeInteger(UInt32(q.utf8.count))
            b.writeString(q)
        }
        return Array(b.readableBytesView)
    }

    static func request(
        _ command: NBDCommand, cookie: UInt64, offset: UInt64, length: UInt32, flags: UInt16 = 0, payload: [UInt8] = []
    ) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(NBDMagic.request)
        b.writeInteger(flags)
        b.writeInteger(command.rawValue)
        b.writeInteger(cookie)
        b.writeInteger(offset)
        b.writeInteger(length)
        b.writeBytes(payload)
        return b
    }

    struct OptionReply: Equatable {
        var option: UInt32
        var type: NBDOptionReplyType
        var data: [UInt8]
    }

    struct SimpleReply: Equatable {
        var error: UInt32
        var cookie: UInt64
    }

    struct Chunk: Equatable {
        var flags: UInt16
        var type: UInt16
        var cookie: UInt64
        var payload: [UInt8]
    }

    static func readOptionReply(_ b: inout ByteBuffer) -> OptionReply? {
        guard let magic = b.readInteger(as: UInt64.self), magic == NBDMagic.optionReply,
            let option = b.readInteger(as: UInt32.self), let type = b.readInteger(as: UInt32.self),
            let length = b.readInteger(as: UInt32.self), let data = b.readBytes(length: Int(length))
        else { return nil }
        return OptionReply(option: option, type: NBDOptionReplyType(rawValue: type), data: data)
    }

    static func readSimpleReply(_ b: inout ByteBuffer) -> SimpleReply? {
        guard let magic = b.readInteger(as: UInt32.self), magic == NBDMagic.simpleReply,
            let error = b.readInteger(as: UInt32.self), let cookie = b.readInteger(as: UInt64.self)
        else { return nil }
        return SimpleReply(error: error, cookie: cookie)
    }

    static func readChunk(_ b: inout ByteBuffer) -> Chunk? {
        guard let magic = b.readInteger(as: UInt32.self), magic == NBDMagic.structuredReply,
            let flags = b.readInteger(as: UInt16.self), let type = b.readInteger(as: UInt16.self),
            let cookie = b.readInteger(as: UInt64.self), let length = b.readInteger(as: UInt32.self),
            let payload = b.readBytes(length: Int(length))
        else { return nil }
        return Chunk(flags: flags, type: type, cookie: cookie, payload: payload)
    }
}
