import NIOCore

/// One option the client sent during negotiation: `IHAVEOPT`, option, length, data.
public struct NBDOptionRequest: Sendable, Equatable {
    /// The option code.
    public var option: NBDOption
    /// The option data (`length` bytes, already bounded by the decoder).
    public var data: ByteBuffer

    /// Creates an option request.
    public init(option: NBDOption, data: ByteBuffer) {
        self.option = option
        self.data = data
    }
}

/// One transmission request: magic, flags, type, cookie, offset, length (28 bytes), and for
/// `NBD_CMD_WRITE` the `length` bytes of payload.
public struct NBDRequest: Sendable, Equatable {
    /// Command flags as sent, unknown bits included (they are rejected later).
    public var flags: NBDCommandFlags
    /// The command type.
    public var command: NBDCommand
    /// The client's cookie (`handle` in older spec versions), echoed in the reply.
    public var cookie: UInt64
    /// Byte offset into the export.
    public var offset: UInt64
    /// Byte count.
    public var length: UInt32
    /// The data of a WRITE; nil for every other command.
    public var payload: ByteBuffer?

    /// Creates a request.
    public init(
        flags: NBDCommandFlags = [], command: NBDCommand, cookie: UInt64, offset: UInt64, length: UInt32,
        payload: ByteBuffer? = nil
    ) {
        self.flags = flags
        self.command = command
        self.cookie = cookie
        self.offset = offset
        self.length = length
        self.payload = payload
    }
}

/// What the decoder produces from client bytes.
public enum NBDClientMessage: Sendable, Equatable {
    /// The 32 client flags that answer the handshake.
    case clientFlags(NBDClientFlags)
    /// A negotiation option.
    case option(NBDOptionRequest)
    /// A transmission request.
    case request(NBDRequest)
}

/// One chunk of a structured reply: a 20-byte header, then `payload`, then `data` (kept apart so
/// read data is written without a copy).
public struct NBDStructuredChunk: Sendable, Equatable {
    /// `NBD_REPLY_FLAG_DONE` on the last chunk.
    public var flags: NBDReplyFlags
    /// The chunk type.
    public var type: NBDReplyType
    /// The request's cookie.
    public var cookie: UInt64
    /// Fixed fields of the chunk (offset, hole size, context id and descriptors, error).
    public var payload: ByteBuffer
    /// Bulk data after `payload` (read data), or nil.
    public var data: ByteBuffer?

    /// Creates a chunk.
    public init(flags: NBDReplyFlags, type: NBDReplyType, cookie: UInt64, payload: ByteBuffer, data: ByteBuffer? = nil)
    {
        self.flags = flags
        self.type = type
        self.cookie = cookie
        self.payload = payload
        self.data = data
    }

    /// The chunk's `length` field: payload plus data bytes.
    public var length: Int { payload.readableBytes + (data?.readableBytes ?? 0) }

    /// `NBD_REPLY_TYPE_OFFSET_DATA`: `data` read at `offset`.
    public static func offsetData(cookie: UInt64, offset: UInt64, data: ByteBuffer, done: Bool) -> Self {
        var payload = ByteBuffer()
        payload.writeInteger(offset)
        return Self(flags: done ? .done : [], type: .offsetData, cookie: cookie, payload: payload, data: data)
    }

    /// `NBD_REPLY_TYPE_OFFSET_HOLE`: `length` bytes of zeros at `offset`.
    public static func offsetHole(cookie: UInt64, offset: UInt64, length: UInt32, done: Bool) -> Self {
        var payload = ByteBuffer()
        payload.writeInteger(offset)
        payload.writeInteger(length)
        return Self(flags: done ? .done : [], type: .offsetHole, cookie: cookie, payload: payload)
    }

    /// `NBD_REPLY_TYPE_BLOCK_STATUS`: descriptors (length, flags) for one metadata context.
    public static func blockStatus(
        cookie: UInt64, contextID: UInt32, extents: [(length: UInt32, flags: UInt32)], done: Bool
    ) -> Self {
        var payload = ByteBuffer()
        payload.writeInteger(contextID)
        for extent in extents {
            payload.writeInteger(extent.length)
            payload.writeInteger(extent.flags)
        }
        return Self(flags: done ? .done : [], type: .blockStatus, cookie: cookie, payload: payload)
    }

    /// `NBD_REPLY_TYPE_ERROR`, always the final chunk here. The message is cut to 4096 bytes.
    public static func error(cookie: UInt64, errno: NBDErrno, message: String) -> Self {
        var payload = ByteBuffer()
        let text = Array(message.utf8.prefix(NBDLimits.maxStringSize))
        payload.writeInteger(errno.rawValue)
        payload.writeInteger(UInt16(text.count))
        payload.writeBytes(text)
        return Self(flags: .done, type: .error, cookie: cookie, payload: payload)
    }

    /// `NBD_REPLY_TYPE_NONE` with `NBD_REPLY_FLAG_DONE`: success with nothing more to say.
    public static func none(cookie: UInt64) -> Self {
        Self(flags: .done, type: .none, cookie: cookie, payload: ByteBuffer())
    }
}

/// What the server sends.
public enum NBDServerMessage: Sendable, Equatable {
    /// `NBDMAGIC`, `IHAVEOPT`, handshake flags.
    case handshake(NBDHandshakeFlags)
    /// An option reply: magic, option, reply type, length, data.
    case optionReply(option: NBDOption, type: NBDOptionReplyType, data: ByteBuffer)
    /// The answer to `NBD_OPT_EXPORT_NAME`: size, transmission flags, and 124 zero bytes unless
    /// both sides agreed to `NO_ZEROES`.
    case exportNameReply(size: UInt64, flags: NBDTransmissionFlags, zeroPadding: Bool)
    /// A simple reply; `data` follows for a successful READ.
    case simpleReply(cookie: UInt64, error: UInt32, data: ByteBuffer?)
    /// One structured reply chunk.
    case structuredReply(NBDStructuredChunk)

    /// An option reply carrying a UTF-8 message, as error replies may.
    public static func optionError(_ option: NBDOption, _ type: NBDOptionReplyType, _ message: String) -> Self {
        var data = ByteBuffer()
        data.writeBytes(Array(message.utf8.prefix(NBDLimits.maxStringSize)))
        return .optionReply(option: option, type: type, data: data)
    }

    /// `NBD_REP_ACK` for `option`.
    public static func ack(_ option: NBDOption) -> Self {
        .optionReply(option: option, type: .ack, data: ByteBuffer())
    }
}

/// Protocol violations that end a connection.
public enum NBDProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A message did not start with the expected magic.
    case badMagic(found: UInt64)
    /// An option's length exceeded ``NBDLimits/maxOptionLength``.
    case optionTooLarge(option: NBDOption, length: UInt32, limit: Int)
    /// A WRITE payload exceeded the maximum payload; the stream cannot be resynchronised cheaply.
    case payloadTooLarge(command: NBDCommand, length: UInt32, limit: Int)
    /// The client flags had bits we do not know, or lacked `NBD_FLAG_C_FIXED_NEWSTYLE`.
    case badClientFlags(UInt32)
    /// A message arrived in a phase where it is not allowed (an option during transmission, a
    /// request during negotiation).
    case unexpectedMessage(String)
    /// `NBD_OPT_EXPORT_NAME` named an export that does not exist (that option cannot carry an error).
    case unknownExport(String)
    /// The connection ended in the middle of a message.
    case truncated(bytes: Int)

    /// One line naming the field and value.
    public var description: String {
        switch self {
        case .badMagic(let found): "bad magic 0x\(String(found, radix: 16))"
        case .optionTooLarge(let option, let length, let limit): "\(option): length \(length) exceeds \(limit)"
        case .payloadTooLarge(let command, let length, let limit): "\(command): length \(length) exceeds \(limit)"
        case .badClientFlags(let flags): "client flags 0x\(String(flags, radix: 16)) not supported"
        case .unexpectedMessage(let what): "unexpected \(what)"
        case .unknownExport(let name): "NBD_OPT_EXPORT_NAME: no export named '\(name)'"
        case .truncated(let bytes): "connection closed inside a message (\(bytes) bytes left)"
        }
    }
}
