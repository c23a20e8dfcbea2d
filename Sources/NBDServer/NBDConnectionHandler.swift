import BlockIO
import NBDProtocol
import NIOCore
import QCow2
import QCow2Format

/// One client: runs the negotiation state machine, then executes requests on the blocking executor
/// and writes replies on the event loop. Loop-confined.
///
/// Back-pressure: while too many requests (or bytes) are in flight, `read()` is held back, so a
/// client cannot queue unbounded work.
final class NBDConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = NBDClientMessage
    typealias OutboundIn = NBDServerMessage
    typealias OutboundOut = NBDServerMessage

    struct Limits {
        var handshakeTimeout: TimeAmount = .seconds(10)
        var maxInFlightRequests = 16
        var maxInFlightBytes = 64 * 1024 * 1024
    }

    let catalog: ConnectionCatalog
    let executor: BlockingExecutor
    let limits: Limits
    var negotiation: NBDNegotiation
    var session: NBDSession?
    var backend: NBDBackend?
    var handshakeDeadline: Scheduled<Void>?
    var inFlight = 0
    var inFlightBytes = 0
    var readHeld = false
    var disconnecting = false

    init(catalog: ConnectionCatalog, executor: BlockingExecutor, limits: Limits = Limits()) {
        self.catalog = catalog
        self.executor = executor
        self.limits = limits
        self.negotiation = NBDNegotiation(catalog: catalog)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(negotiation.greeting), promise: nil)
        // CVE-2024-7409: a client that never reaches transmission must not hold a slot forever.
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        handshakeDeadline = context.eventLoop.scheduleTask(in: limits.handshakeTimeout) {
            loopContext.value.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeDeadline?.cancel()
        let catalog = self.catalog
        if let backend, backend.isWritable, session?.export.isReadOnly == false {
            // A writer that leaves without NBD_CMD_FLUSH still gets its metadata written.
            executor.run(on: context.eventLoop) { try backend.flush() }.whenComplete { _ in catalog.release() }
        } else {
            catalog.release()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case NBDProtocolError.optionTooLarge(let option, _, _) = error, session == nil {
            let reply = NBDServerMessage.optionError(option, .errTooBig, "\(error)")
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if inFlight >= limits.maxInFlightRequests || inFlightBytes >= limits.maxInFlightBytes || disconnecting {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard let session else {
            negotiate(context: context, message)
            return
        }
        guard case .request(let request) = message else {
            context.close(promise: nil)
            return
        }
        guard !disconnecting else { return }  // nothing may follow NBD_CMD_DISC
        switch session.check(request) {
        case .disconnect:
            disconnecting = true
            if inFlight == 0 { context.close(promise: nil) }
        case .reject(let errno, let message):
            context.writeAndFlush(wrapOutboundOut(errorReply(request, errno, message)), promise: nil)
        case .execute:
            execute(context: context, request, session: session)
        }
    }

    func negotiate(context: ChannelHandlerContext, _ message: NBDClientMessage) {
        switch negotiation.receive(message) {
        case .send(let replies):
            send(context: context, replies)
        case .sendAndClose(let replies):
            send(context: context, replies)
            context.close(promise: nil)
        case .close:
            context.close(promise: nil)
        case .startTransmission(let replies, let session):
            handshakeDeadline?.cancel()
            handshakeDeadline = nil
            self.session = session
            backend = catalog.backend
            send(context: context, replies)
        }
    }

    func send(context: ChannelHandlerContext, _ messages: [NBDServerMessage]) {
        guard !messages.isEmpty else { return }
        for message in messages { context.write(wrapOutboundOut(message), promise: nil) }
        context.flush()
    }

    func errorReply(_ request: NBDRequest, _ errno: NBDErrno, _ message: String) -> NBDServerMessage {
        let structured = session?.structuredReplies == true
        if structured && (request.command == .read || request.command == .blockStatus) {
            return .structuredReply(.error(cookie: request.cookie, errno: errno, message: message))
        }
        return .simpleReply(cookie: request.cookie, error: errno.rawValue, data: nil)
    }

    /// Runs a checked request off the event loop and replies when it completes.
    func execute(context: ChannelHandlerContext, _ request: NBDRequest, session: NBDSession) {
        guard let backend else {
            context.writeAndFlush(wrapOutboundOut(errorReply(request, .eio, "no export")), promise: nil)
            return
        }
        let cost = Int(request.length)
        inFlight += 1
        inFlightBytes += request.command == .read || request.command == .write ? cost : 0
        let work = Self.work(request, session: session, backend: backend)
        executor.run(on: context.eventLoop, work).assumeIsolated().whenComplete { result in
            self.inFlight -= 1
            self.inFlightBytes -= request.command == .read || request.command == .write ? cost : 0
            let replies: [NBDServerMessage]
            switch result {
            case .success(let messages): replies = messages
            case .failure(let error):
                let (errno, text) = Self.errno(for: error)
                replies = [self.errorReply(request, errno, "\(request.command): \(text)")]
            }
            if context.channel.isActive { self.send(context: context, replies) }
            if self.disconnecting && self.inFlight == 0 {
                context.close(promise: nil)
            } else if self.readHeld && self.inFlight < self.limits.maxInFlightRequests
                && self.inFlightBytes < self.limits.maxInFlightBytes
            {
                self.readHeld = false
                context.read()
            }
        }
    }

    /// The blocking part of a request, returning the replies to send.
    static func work(_ request: NBDRequest, session: NBDSession, backend: NBDBackend)
        -> @Sendable () throws -> [NBDServerMessage]
    {
        let cookie = request.cookie
        let offset = request.offset
        let length = request.length
        let flags = request.flags
        let ok = NBDServerMessage.simpleReply(cookie: cookie, error: 0, data: nil)
        switch request.command {
        case .read:
            return {
                guard session.structuredReplies, !flags.contains(.df) else {
                    let bytes = try backend.read(offset: offset, length: Int(length))
                    if session.structuredReplies {
                        return [
                            .structuredReply(
                                .offsetData(cookie: cookie, offset: offset, data: ByteBuffer(bytes: bytes), done: true))
                        ]
                    }
                    return [.simpleReply(cookie: cookie, error: 0, data: ByteBuffer(bytes: bytes))]
                }
                let pieces = try backend.readPieces(offset: offset, length: Int(length))
                return pieces.enumerated().map { index, piece in
                    let done = index == pieces.count - 1
                    switch piece {
                    case .hole(let at, let count):
                        return .structuredReply(.offsetHole(cookie: cookie, offset: at, length: count, done: done))
                    case .data(let at, let bytes):
                        return .structuredReply(
                            .offsetData(cookie: cookie, offset: at, data: ByteBuffer(bytes: bytes), done: done))
                    }
                }
            }
        case .write:
            let payload = request.payload ?? ByteBuffer()
            return {
                try backend.write(Array(payload.readableBytesView), at: offset)
                if flags.contains(.fua) { try backend.flush() }
                return [ok]
            }
        case .writeZeroes:
            return {
                try backend.writeZeroes(at: offset, count: UInt64(length), mayUnmap: !flags.contains(.noHole))
                if flags.contains(.fua) { try backend.flush() }
                return [ok]
            }
        case .trim:
            return {
                try backend.trim(at: offset, count: UInt64(length))
                if flags.contains(.fua) { try backend.flush() }
                return [ok]
            }
        case .flush:
            return {
                try backend.flush()
                return [ok]
            }
        case .blockStatus:
            let contextID = session.baseAllocationContextID ?? NBDNegotiation.baseAllocationContextID
            return {
                let maxExtents = flags.contains(.reqOne) ? 1 : NBDLimits.maxBlockStatusExtents
                let extents = try backend.allocation(offset: offset, length: length, maxExtents: maxExtents)
                return [
                    .structuredReply(.blockStatus(cookie: cookie, contextID: contextID, extents: extents, done: true))
                ]
            }
        default:
            return { throw NBDErrno.einval }
        }
    }

    /// Maps an engine error to the wire errno, with one line for structured replies.
    static func errno(for error: any Error) -> (NBDErrno, String) {
        switch error {
        case let e as NBDErrno: return (e, "\(e)")
        case let e as BlockIOError:
            switch e.errno {
            case 28: return (.enospc, e.description)
            case 1, 13, 30: return (.eperm, e.description)
            case 12: return (.enomem, e.description)
            case 22: return (.einval, e.description)
            default: return (.eio, e.description)
            }
        case let e as QCow2Error:
            if case .invalid = e { return (.einval, e.description) }
            return (.eio, e.description)
        default: return (.eio, "\(error)")
        }
    }
}
