import NIOCore

/// Frames client bytes into ``NBDClientMessage``s, bounding every length before buffering it.
///
/// Options start with `IHAVEOPT` (8 bytes) and requests with `NBD_REQUEST_MAGIC` (4 bytes), so one
/// decoder frames both phases; the negotiation state machine rejects a message in the wrong phase.
/// Requests are only framed after the client has sent `NBD_OPT_GO` or `NBD_OPT_EXPORT_NAME`, so a
/// client that never chose an export cannot make us buffer a WRITE payload.
public struct NBDClientDecoder: ByteToMessageDecoder {
    public typealias InboundOut = NBDClientMessage

    enum Phase {
        case clientFlags
        case options
        case optionsOrRequests
    }

    var phase = Phase.clientFlags
    /// The largest option payload accepted.
    public let maxOptionLength: Int
    /// The largest WRITE payload accepted.
    public let maxPayloadSize: Int

    /// Creates a decoder.
    /// - Parameters:
    ///   - maxOptionLength: option payload limit (default ``NBDLimits/maxOptionLength``).
    ///   - maxPayloadSize: WRITE payload limit (default ``NBDLimits/maxPayloadSize``).
    public init(maxOptionLength: Int = NBDLimits.maxOptionLength, maxPayloadSize: Int = NBDLimits.maxPayloadSize) {
        self.maxOptionLength = maxOptionLength
        self.maxPayloadSize = maxPayloadSize
    }

    /// Decodes one message if enough bytes are buffered.
    /// - Throws: ``NBDProtocolError`` for a bad magic or an oversized option or WRITE.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try decode(buffer: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    /// Decodes what is left when the connection closes; a partial message is an error.
    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while let message = try decode(buffer: &buffer) {
            context.fireChannelRead(Self.wrapInboundOut(message))
        }
        if buffer.readableBytes > 0 {
            let left = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: left)
            throw NBDProtocolError.truncated(bytes: left)
        }
        return .needMoreData
    }

    /// Decodes one message from `buffer`, consuming it, or returns nil (nothing consumed) when more
    /// bytes are needed. Usable without a channel.
    /// - Throws: ``NBDProtocolError``.
    public mutating func decode(buffer: inout ByteBuffer) throws -> NBDClientMessage? {
        switch phase {
        case .clientFlags:
            guard let flags = buffer.readInteger(as: UInt32.self) else { return nil }
            phase = .options
            return .clientFlags(NBDClientFlags(rawValue: flags))
        case .options, .optionsOrRequests:
            guard let magic32 = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
            if magic32 == NBDMagic.request {
                guard phase == .optionsOrRequests else {
                    throw NBDProtocolError.unexpectedMessage("request before NBD_OPT_GO")
                }
                return try decodeRequest(&buffer)
            }
            guard let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt64.self) else {
                // Four bytes that cannot start IHAVEOPT are already a bad magic.
                if magic32 != UInt32(truncatingIfNeeded: NBDMagic.iHaveOpt >> 32) {
                    throw NBDProtocolError.badMagic(found: UInt64(magic32))
                }
                return nil
            }
            guard magic == NBDMagic.iHaveOpt else { throw NBDProtocolError.badMagic(found: magic) }
            return try decodeOption(&buffer)
        }
    }

    mutating func decodeOption(_ buffer: inout ByteBuffer) throws -> NBDClientMessage? {
        let start = buffer.readerIndex
        guard let option = buffer.getInteger(at: start + 8, as: UInt32.self),
            let length = buffer.getInteger(at: start + 12, as: UInt32.self)
        else { return nil }
        guard length <= maxOptionLength else {
            throw NBDProtocolError.optionTooLarge(
                option: NBDOption(rawValue: option), length: length, limit: maxOptionLength)
        }
        // Safe: length ≤ maxOptionLength, a small Int.
        guard buffer.readableBytes >= 16 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 16)
        guard let data = buffer.readSlice(length: Int(length)) else { return nil }
        let code = NBDOption(rawValue: option)
        if code == .go || code == .exportName { phase = .optionsOrRequests }
        return .option(NBDOptionRequest(option: code, data: data))
    }

    func decodeRequest(_ buffer: inout ByteBuffer) throws -> NBDClientMessage? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 28,
            let flags = buffer.getInteger(at: start + 4, as: UInt16.self),
            let type = buffer.getInteger(at: start + 6, as: UInt16.self),
            let cookie = buffer.getInteger(at: start + 8, as: UInt64.self),
            let offset = buffer.getInteger(at: start + 16, as: UInt64.self),
            let length = buffer.getInteger(at: start + 24, as: UInt32.self)
        else { return nil }
        let command = NBDCommand(rawValue: type)
        var payload: ByteBuffer?
        if command == .write {
            guard length <= maxPayloadSize else {
                throw NBDProtocolError.payloadTooLarge(command: command, length: length, limit: maxPayloadSize)
            }
            guard buffer.readableBytes >= 28 + Int(length) else { return nil }
            payload = buffer.getSlice(at: start + 28, length: Int(length))
            buffer.moveReaderIndex(forwardBy: 28 + Int(length))
        } else {
            buffer.moveReaderIndex(forwardBy: 28)
        }
        return .request(
            NBDRequest(
                flags: NBDCommandFlags(rawValue: flags), command: command, cookie: cookie, offset: offset,
                length: length, payload: payload))
    }
}

/// Writes ``NBDServerMessage``s. Read data goes out as its own buffer, after the header, uncopied.
public final class NBDServerEncoder: ChannelOutboundHandler {
    public typealias OutboundIn = NBDServerMessage
    public typealias OutboundOut = ByteBuffer

    /// Creates an encoder.
    public init() {}

    /// Encodes the message's header into one buffer and writes the bulk data (if any) after it.
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = unwrapOutboundIn(data)
        var head = context.channel.allocator.buffer(capacity: 32)
        let bulk = Self.encodeHead(message, into: &head)
        if let bulk, bulk.readableBytes > 0 {
            context.write(wrapOutboundOut(head), promise: nil)
            context.write(wrapOutboundOut(bulk), promise: promise)
        } else {
            context.write(wrapOutboundOut(head), promise: promise)
        }
    }

    /// Encodes everything but the bulk data of `message` into `buffer`.
    /// - Returns: the bulk data to write after `buffer` (read data), or nil.
    public static func encodeHead(_ message: NBDServerMessage, into buffer: inout ByteBuffer) -> ByteBuffer? {
        switch message {
        case .handshake(let flags):
            buffer.writeInteger(NBDMagic.initPasswd)
            buffer.writeInteger(NBDMagic.iHaveOpt)
            buffer.writeInteger(flags.rawValue)
            return nil
        case .optionReply(let option, let type, var data):
            buffer.writeInteger(NBDMagic.optionReply)
            buffer.writeInteger(option.rawValue)
            buffer.writeInteger(type.rawValue)
            buffer.writeInteger(UInt32(data.readableBytes))
            buffer.writeBuffer(&data)
            return nil
        case .exportNameReply(let size, let flags, let zeroPadding):
            buffer.writeInteger(size)
            buffer.writeInteger(flags.rawValue)
            if zeroPadding { buffer.writeRepeatingByte(0, count: 124) }
            return nil
        case .simpleReply(let cookie, let error, let data):
            buffer.writeInteger(NBDMagic.simpleReply)
            buffer.writeInteger(error)
            buffer.writeInteger(cookie)
            return data
        case .structuredReply(var chunk):
            buffer.writeInteger(NBDMagic.structuredReply)
            buffer.writeInteger(chunk.flags.rawValue)
            buffer.writeInteger(chunk.type.rawValue)
            buffer.writeInteger(chunk.cookie)
            buffer.writeInteger(UInt32(chunk.length))
            buffer.writeBuffer(&chunk.payload)
            return chunk.data
        }
    }

    /// Encodes the whole message, bulk data included (tests, small messages).
    public static func encode(_ message: NBDServerMessage, into buffer: inout ByteBuffer) {
        if var bulk = encodeHead(message, into: &buffer) { buffer.writeBuffer(&bulk) }
    }
}
