import NIOCore

/// The fixed-newstyle negotiation as a state machine: feed it decoded client messages, do what the
/// returned action says. No I/O, so it runs the same on a socket and on `EmbeddedChannel`.
public struct NBDNegotiation {
    /// Where the negotiation is.
    public enum State: Equatable, Sendable {
        /// Handshake sent, waiting for the client flags.
        case awaitingClientFlags
        /// Accepting options.
        case options
        /// An export was chosen; requests follow.
        case transmission
        /// The connection must close.
        case closed
    }

    /// What the caller must do next.
    public enum Action: Equatable, Sendable {
        /// Send these messages and keep reading.
        case send([NBDServerMessage])
        /// Send these messages, then close the connection.
        case sendAndClose([NBDServerMessage])
        /// Close the connection now (protocol violation).
        case close(NBDProtocolError)
        /// Send these messages; transmission starts with `session`.
        case startTransmission([NBDServerMessage], NBDSession)
    }

    /// The context id we give `base:allocation` (server-chosen; any value works).
    public static let baseAllocationContextID: UInt32 = 1

    public private(set) var state = State.awaitingClientFlags
    let catalog: any NBDExportCatalog
    var noZeroes = false
    var structuredReplies = false
    /// `base:allocation` selected by `NBD_OPT_SET_META_CONTEXT`, and for which export.
    var selectedContext: String?

    /// Creates a negotiation over `catalog`.
    public init(catalog: any NBDExportCatalog) {
        self.catalog = catalog
    }

    /// The server's opening: `NBDMAGIC`, `IHAVEOPT`, fixed newstyle and no zeroes.
    public var greeting: NBDServerMessage { .handshake([.fixedNewstyle, .noZeroes]) }

    /// Advances on one client message.
    /// - Parameter message: a decoded message.
    /// - Returns: what to send, and whether to close or start transmission.
    public mutating func receive(_ message: NBDClientMessage) -> Action {
        switch (state, message) {
        case (.awaitingClientFlags, .clientFlags(let flags)):
            let known: NBDClientFlags = [.fixedNewstyle, .noZeroes]
            // Spec: unknown client flags MUST close; we speak fixed newstyle only.
            guard flags.isSubset(of: known), flags.contains(.fixedNewstyle) else {
                state = .closed
                return .close(.badClientFlags(flags.rawValue))
            }
            noZeroes = flags.contains(.noZeroes)
            state = .options
            return .send([])
        case (.options, .option(let request)):
            return option(request)
        case (.options, .request):
            state = .closed
            return .close(.unexpectedMessage("transmission request during negotiation"))
        case (.transmission, _):
            state = .closed
            return .close(.unexpectedMessage("option after NBD_OPT_GO"))
        default:
            state = .closed
            return .close(.unexpectedMessage("message in state \(state)"))
        }
    }

    mutating func option(_ request: NBDOptionRequest) -> Action {
        let option = request.option
        var data = request.data
        switch option {
        case .exportName:
            return exportName(data)
        case .abort:
            state = .closed
            return .sendAndClose([.ack(option)])
        case .list:
            guard data.readableBytes == 0 else {
                return .send([.optionError(option, .errInvalid, "NBD_OPT_LIST takes no data")])
            }
            var replies: [NBDServerMessage] = catalog.exportNames().map { name in
                var payload = ByteBuffer()
                payload.writeInteger(UInt32(name.utf8.count))
                payload.writeString(name)
                return .optionReply(option: option, type: .server, data: payload)
            }
            replies.append(.ack(option))
            return .send(replies)
        case .structuredReply:
            guard data.readableBytes == 0 else {
                return .send([.optionError(option, .errInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")])
            }
            structuredReplies = true
            return .send([.ack(option)])
        case .info, .go:
            return infoOrGo(option, &data)
        case .listMetaContext, .setMetaContext:
            return metaContext(option, &data)
        case .startTLS:
            return .send([.optionError(option, .errUnsup, "TLS is not supported by this server")])
        default:
            return .send([.optionError(option, .errUnsup, "\(option) is not supported")])
        }
    }

    mutating func exportName(_ data: ByteBuffer) -> Action {
        guard data.readableBytes <= NBDLimits.maxStringSize,
            let name = data.getString(at: data.readerIndex, length: data.readableBytes),
            let export = catalog.claim(name)
        else {
            // This option has no error reply: the spec says to close.
            state = .closed
            return .close(
                .unknownExport(data.getString(at: data.readerIndex, length: min(data.readableBytes, 256)) ?? ""))
        }
        state = .transmission
        let session = NBDSession(export: export, structuredReplies: structuredReplies, baseAllocationContextID: nil)
        return .startTransmission(
            [.exportNameReply(size: export.size, flags: export.flags.union(.hasFlags), zeroPadding: !noZeroes)], session
        )
    }

    /// `NBD_OPT_INFO`/`NBD_OPT_GO`: name length, name, info request count, requests; every length checked.
    mutating func infoOrGo(_ option: NBDOption, _ data: inout ByteBuffer) -> Action {
        guard let name = readString(&data), let count = data.readInteger(as: UInt16.self),
            count <= NBDLimits.maxInfoRequests, data.readableBytes == Int(count) * 2
        else { return .send([.optionError(option, .errInvalid, "\(option): malformed request")]) }
        var requested: Set<UInt16> = []
        for _ in 0..<count {
            if let type = data.readInteger(as: UInt16.self) { requested.insert(type) }
        }
        let found = option == .go ? catalog.claim(name) : catalog.describe(name)
        guard let export = found else {
            return .send([.optionError(option, .errUnknown, "no export named '\(name.prefix(256))'")])
        }
        var replies: [NBDServerMessage] = []
        var info = ByteBuffer()
        info.writeInteger(NBDInfoType.export.rawValue)
        info.writeInteger(export.size)
        info.writeInteger(export.flags.union(.hasFlags).rawValue)
        replies.append(.optionReply(option: option, type: .info, data: info))
        // Sent whether or not requested, as QEMU does; a minimum of 1 needs no client cooperation.
        var sizes = ByteBuffer()
        sizes.writeInteger(NBDInfoType.blockSize.rawValue)
        sizes.writeInteger(export.minimumBlockSize)
        sizes.writeInteger(export.preferredBlockSize)
        sizes.writeInteger(export.maximumBlockSize)
        replies.append(.optionReply(option: option, type: .info, data: sizes))
        if requested.contains(NBDInfoType.name.rawValue) {
            var payload = ByteBuffer()
            payload.writeInteger(NBDInfoType.name.rawValue)
            payload.writeString(export.name)
            replies.append(.optionReply(option: option, type: .info, data: payload))
        }
        if requested.contains(NBDInfoType.description.rawValue), let text = export.description {
            var payload = ByteBuffer()
            payload.writeInteger(NBDInfoType.description.rawValue)
            payload.writeBytes(Array(text.utf8.prefix(NBDLimits.maxStringSize)))
            replies.append(.optionReply(option: option, type: .info, data: payload))
        }
        replies.append(.ack(option))
        guard option == .go else { return .send(replies) }
        state = .transmission
        let contextID = selectedContext == name ? Self.baseAllocationContextID : nil
        return .startTransmission(
            replies,
            NBDSession(export: export, structuredReplies: structuredReplies, baseAllocationContextID: contextID))
    }

    /// `NBD_OPT_LIST_META_CONTEXT`/`NBD_OPT_SET_META_CONTEXT`: export name, query count, queries.
    mutating func metaContext(_ option: NBDOption, _ data: inout ByteBuffer) -> Action {
        let set = option == .setMetaContext
        guard let name = readString(&data), let count = data.readInteger(as: UInt32.self),
            count <= NBDLimits.maxMetaContextQueries
        else { return .send([.optionError(option, .errInvalid, "\(option): malformed request")]) }
        var queries: [String] = []
        for _ in 0..<count {
            guard let query = readString(&data) else {
                return .send([.optionError(option, .errInvalid, "\(option): malformed query")])
            }
            queries.append(query)
        }
        guard data.readableBytes == 0 else {
            return .send([.optionError(option, .errInvalid, "\(option): trailing bytes")])
        }
        guard !set || structuredReplies else {
            return .send([.optionError(option, .errInvalid, "\(option) needs NBD_OPT_STRUCTURED_REPLY first")])
        }
        guard catalog.describe(name) != nil else {
            return .send([.optionError(option, .errUnknown, "no export named '\(name.prefix(256))'")])
        }
        let context = NBDAllocationState.contextName
        // LIST with no queries lists everything; "base:" names the whole namespace (LIST only).
        let matches = queries.contains(context) || (!set && (queries.isEmpty || queries.contains("base:")))
        if set { selectedContext = matches ? name : nil }
        var replies: [NBDServerMessage] = []
        if matches {
            var payload = ByteBuffer()
            payload.writeInteger(Self.baseAllocationContextID)
            payload.writeString(context)
            replies.append(.optionReply(option: option, type: .metaContext, data: payload))
        }
        replies.append(.ack(option))
        return .send(replies)
    }

    /// A 32-bit length and that many bytes of UTF-8, at most ``NBDLimits/maxStringSize``.
    func readString(_ data: inout ByteBuffer) -> String? {
        guard let length = data.readInteger(as: UInt32.self), length <= NBDLimits.maxStringSize,
            let bytes = data.readBytes(length: Int(length)), !bytes.contains(0)
        else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}
