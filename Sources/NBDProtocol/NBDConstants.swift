/// Magic numbers and limits of the NBD protocol (`doc/proto.md` of NetworkBlockDevice/nbd).
public enum NBDMagic {
    /// `NBDMAGIC`, the first eight bytes the server sends.
    public static let initPasswd: UInt64 = 0x4e42_444d_4147_4943
    /// `IHAVEOPT`: follows `NBDMAGIC` in the newstyle handshake and starts every client option.
    public static let iHaveOpt: UInt64 = 0x4948_4156_454f_5054
    /// Starts every option reply.
    public static let optionReply: UInt64 = 0x0003_e889_0455_65a9
    /// `NBD_REQUEST_MAGIC`: starts every transmission request.
    public static let request: UInt32 = 0x2560_9513
    /// `NBD_SIMPLE_REPLY_MAGIC`.
    public static let simpleReply: UInt32 = 0x6744_6698
    /// `NBD_STRUCTURED_REPLY_MAGIC`.
    public static let structuredReply: UInt32 = 0x668e_33ef
}

/// Limits the server enforces on what clients send (security.md §6).
public enum NBDLimits {
    /// `NBD_MAX_STRING_SIZE`: export names, meta context names and queries (spec: MUST ≤ 4096).
    public static let maxStringSize = 4096
    /// `NBD_MAX_BUFFER_SIZE` (32 MiB): the largest READ/WRITE payload and the advertised maximum block size.
    public static let maxPayloadSize = 32 * 1024 * 1024
    /// The largest option payload read before disconnecting. QEMU allows 32 MiB (CVE-2017-15119 fix); no
    /// option we implement needs more than a few KiB, so we stop earlier.
    public static let maxOptionLength = 64 * 1024
    /// Queries accepted in one `NBD_OPT_SET_META_CONTEXT`/`NBD_OPT_LIST_META_CONTEXT`.
    public static let maxMetaContextQueries = 128
    /// Information requests accepted in one `NBD_OPT_INFO`/`NBD_OPT_GO`.
    public static let maxInfoRequests = 64
    /// Descriptors in one `NBD_REPLY_TYPE_BLOCK_STATUS` chunk.
    public static let maxBlockStatusExtents = 1024
}

/// Handshake flags the server sends after `IHAVEOPT` (16 bits).
public struct NBDHandshakeFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    /// Creates flags from their wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// `NBD_FLAG_FIXED_NEWSTYLE`.
    public static let fixedNewstyle = NBDHandshakeFlags(rawValue: 1 << 0)
    /// `NBD_FLAG_NO_ZEROES`: the 124 padding bytes after `NBD_OPT_EXPORT_NAME` may be omitted.
    public static let noZeroes = NBDHandshakeFlags(rawValue: 1 << 1)
}

/// Client flags, the 32 bits the client answers the handshake with.
public struct NBDClientFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates flags from their wire value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `NBD_FLAG_C_FIXED_NEWSTYLE`.
    public static let fixedNewstyle = NBDClientFlags(rawValue: 1 << 0)
    /// `NBD_FLAG_C_NO_ZEROES`.
    public static let noZeroes = NBDClientFlags(rawValue: 1 << 1)
}

/// Transmission flags of an export (16 bits, in `NBD_INFO_EXPORT` and the `EXPORT_NAME` reply).
public struct NBDTransmissionFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    /// Creates flags from their wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// `NBD_FLAG_HAS_FLAGS`, always set.
    public static let hasFlags = NBDTransmissionFlags(rawValue: 1 << 0)
    /// `NBD_FLAG_READ_ONLY`.
    public static let readOnly = NBDTransmissionFlags(rawValue: 1 << 1)
    /// `NBD_FLAG_SEND_FLUSH`.
    public static let sendFlush = NBDTransmissionFlags(rawValue: 1 << 2)
    /// `NBD_FLAG_SEND_FUA`.
    public static let sendFUA = NBDTransmissionFlags(rawValue: 1 << 3)
    /// `NBD_FLAG_ROTATIONAL`.
    public static let rotational = NBDTransmissionFlags(rawValue: 1 << 4)
    /// `NBD_FLAG_SEND_TRIM`.
    public static let sendTrim = NBDTransmissionFlags(rawValue: 1 << 5)
    /// `NBD_FLAG_SEND_WRITE_ZEROES`.
    public static let sendWriteZeroes = NBDTransmissionFlags(rawValue: 1 << 6)
    /// `NBD_FLAG_SEND_DF`.
    public static let sendDF = NBDTransmissionFlags(rawValue: 1 << 7)
    /// `NBD_FLAG_CAN_MULTI_CONN`: a flush on one connection covers writes on all.
    public static let canMultiConn = NBDTransmissionFlags(rawValue: 1 << 8)
    /// `NBD_FLAG_SEND_CACHE`.
    public static let sendCache = NBDTransmissionFlags(rawValue: 1 << 10)
    /// `NBD_FLAG_SEND_FAST_ZERO`.
    public static let sendFastZero = NBDTransmissionFlags(rawValue: 1 << 11)
}

/// Option codes (`NBD_OPT_*`). Unknown codes are kept as their raw value.
public struct NBDOption: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    /// Creates an option from its wire value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `NBD_OPT_EXPORT_NAME` (1).
    public static let exportName = NBDOption(rawValue: 1)
    /// `NBD_OPT_ABORT` (2).
    public static let abort = NBDOption(rawValue: 2)
    /// `NBD_OPT_LIST` (3).
    public static let list = NBDOption(rawValue: 3)
    /// `NBD_OPT_STARTTLS` (5).
    public static let startTLS = NBDOption(rawValue: 5)
    /// `NBD_OPT_INFO` (6).
    public static let info = NBDOption(rawValue: 6)
    /// `NBD_OPT_GO` (7).
    public static let go = NBDOption(rawValue: 7)
    /// `NBD_OPT_STRUCTURED_REPLY` (8).
    public static let structuredReply = NBDOption(rawValue: 8)
    /// `NBD_OPT_LIST_META_CONTEXT` (9).
    public static let listMetaContext = NBDOption(rawValue: 9)
    /// `NBD_OPT_SET_META_CONTEXT` (10).
    public static let setMetaContext = NBDOption(rawValue: 10)
    /// `NBD_OPT_EXTENDED_HEADERS` (11), not supported.
    public static let extendedHeaders = NBDOption(rawValue: 11)

    /// The spec name, or the number in hex.
    public var description: String {
        let names: [UInt32: String] = [
            1: "NBD_OPT_EXPORT_NAME", 2: "NBD_OPT_ABORT", 3: "NBD_OPT_LIST", 5: "NBD_OPT_STARTTLS", 6: "NBD_OPT_INFO",
            7: "NBD_OPT_GO", 8: "NBD_OPT_STRUCTURED_REPLY", 9: "NBD_OPT_LIST_META_CONTEXT",
            10: "NBD_OPT_SET_META_CONTEXT", 11: "NBD_OPT_EXTENDED_HEADERS",
        ]
        return names[rawValue] ?? "option 0x\(String(rawValue, radix: 16))"
    }
}

/// Option reply types (`NBD_REP_*`); errors have bit 31 set.
public struct NBDOptionReplyType: RawRepresentable, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates a reply type from its wire value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `NBD_REP_ACK`.
    public static let ack = NBDOptionReplyType(rawValue: 1)
    /// `NBD_REP_SERVER`: one export in an `NBD_OPT_LIST` answer.
    public static let server = NBDOptionReplyType(rawValue: 2)
    /// `NBD_REP_INFO`.
    public static let info = NBDOptionReplyType(rawValue: 3)
    /// `NBD_REP_META_CONTEXT`.
    public static let metaContext = NBDOptionReplyType(rawValue: 4)
    /// `NBD_REP_ERR_UNSUP`: unknown or unsupported option.
    public static let errUnsup = NBDOptionReplyType(rawValue: 1 << 31 | 1)
    /// `NBD_REP_ERR_POLICY`.
    public static let errPolicy = NBDOptionReplyType(rawValue: 1 << 31 | 2)
    /// `NBD_REP_ERR_INVALID`: syntactically or semantically invalid.
    public static let errInvalid = NBDOptionReplyType(rawValue: 1 << 31 | 3)
    /// `NBD_REP_ERR_PLATFORM`.
    public static let errPlatform = NBDOptionReplyType(rawValue: 1 << 31 | 4)
    /// `NBD_REP_ERR_TLS_REQD`.
    public static let errTLSReqd = NBDOptionReplyType(rawValue: 1 << 31 | 5)
    /// `NBD_REP_ERR_UNKNOWN`: no such export.
    public static let errUnknown = NBDOptionReplyType(rawValue: 1 << 31 | 6)
    /// `NBD_REP_ERR_SHUTDOWN`.
    public static let errShutdown = NBDOptionReplyType(rawValue: 1 << 31 | 7)
    /// `NBD_REP_ERR_BLOCK_SIZE_REQD`.
    public static let errBlockSizeReqd = NBDOptionReplyType(rawValue: 1 << 31 | 8)
    /// `NBD_REP_ERR_TOO_BIG`.
    public static let errTooBig = NBDOptionReplyType(rawValue: 1 << 31 | 9)

    /// Whether this is an error reply.
    public var isError: Bool { rawValue & (1 << 31) != 0 }
}

/// Information types of `NBD_REP_INFO` (`NBD_INFO_*`).
public enum NBDInfoType: UInt16, Sendable {
    /// `NBD_INFO_EXPORT`: size and transmission flags.
    case export = 0
    /// `NBD_INFO_NAME`.
    case name = 1
    /// `NBD_INFO_DESCRIPTION`.
    case description = 2
    /// `NBD_INFO_BLOCK_SIZE`: minimum, preferred, maximum.
    case blockSize = 3
}

/// Command types (`NBD_CMD_*`). Unknown types are kept as their raw value.
public struct NBDCommand: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    /// Creates a command from its wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// `NBD_CMD_READ` (0).
    public static let read = NBDCommand(rawValue: 0)
    /// `NBD_CMD_WRITE` (1): followed by `length` bytes of payload.
    public static let write = NBDCommand(rawValue: 1)
    /// `NBD_CMD_DISC` (2).
    public static let disc = NBDCommand(rawValue: 2)
    /// `NBD_CMD_FLUSH` (3).
    public static let flush = NBDCommand(rawValue: 3)
    /// `NBD_CMD_TRIM` (4).
    public static let trim = NBDCommand(rawValue: 4)
    /// `NBD_CMD_CACHE` (5), not advertised.
    public static let cache = NBDCommand(rawValue: 5)
    /// `NBD_CMD_WRITE_ZEROES` (6).
    public static let writeZeroes = NBDCommand(rawValue: 6)
    /// `NBD_CMD_BLOCK_STATUS` (7).
    public static let blockStatus = NBDCommand(rawValue: 7)

    /// The spec name, or the number.
    public var description: String {
        let names = [
            "NBD_CMD_READ", "NBD_CMD_WRITE", "NBD_CMD_DISC", "NBD_CMD_FLUSH", "NBD_CMD_TRIM", "NBD_CMD_CACHE",
            "NBD_CMD_WRITE_ZEROES", "NBD_CMD_BLOCK_STATUS",
        ]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "command \(rawValue)"
    }
}

/// Command flags (`NBD_CMD_FLAG_*`, 16 bits).
public struct NBDCommandFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    /// Creates flags from their wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// `NBD_CMD_FLAG_FUA`: the write is durable before the reply.
    public static let fua = NBDCommandFlags(rawValue: 1 << 0)
    /// `NBD_CMD_FLAG_NO_HOLE`: WRITE_ZEROES must not punch a hole.
    public static let noHole = NBDCommandFlags(rawValue: 1 << 1)
    /// `NBD_CMD_FLAG_DF`: a structured READ reply must not be fragmented.
    public static let df = NBDCommandFlags(rawValue: 1 << 2)
    /// `NBD_CMD_FLAG_REQ_ONE`: BLOCK_STATUS answers with one extent.
    public static let reqOne = NBDCommandFlags(rawValue: 1 << 3)
    /// `NBD_CMD_FLAG_FAST_ZERO`, not advertised.
    public static let fastZero = NBDCommandFlags(rawValue: 1 << 4)
}

/// Structured reply chunk types (`NBD_REPLY_TYPE_*`).
public enum NBDReplyType: UInt16, Sendable {
    /// `NBD_REPLY_TYPE_NONE`: an empty final chunk.
    case none = 0
    /// `NBD_REPLY_TYPE_OFFSET_DATA`: 64-bit offset, then data.
    case offsetData = 1
    /// `NBD_REPLY_TYPE_OFFSET_HOLE`: 64-bit offset, 32-bit length of zeros.
    case offsetHole = 2
    /// `NBD_REPLY_TYPE_BLOCK_STATUS`: context id, then (length, flags) descriptors.
    case blockStatus = 5
    /// `NBD_REPLY_TYPE_ERROR`: errno, message.
    case error = 0x8001
    /// `NBD_REPLY_TYPE_ERROR_OFFSET`: errno, message, offset.
    case errorOffset = 0x8002
}

/// Structured reply flags.
public struct NBDReplyFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    /// Creates flags from their wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// `NBD_REPLY_FLAG_DONE`: the last chunk for this cookie.
    public static let done = NBDReplyFlags(rawValue: 1 << 0)
}

/// Error values on the wire (`NBD_E*`), a subset of Linux errno values.
public enum NBDErrno: UInt32, Sendable, Error {
    /// `NBD_EPERM`: also sent for writes to a read-only export (QEMU maps EROFS here).
    case eperm = 1
    /// `NBD_EIO`.
    case eio = 5
    /// `NBD_ENOMEM`.
    case enomem = 12
    /// `NBD_EINVAL`.
    case einval = 22
    /// `NBD_ENOSPC`.
    case enospc = 28
    /// `NBD_EOVERFLOW`.
    case eoverflow = 75
    /// `NBD_ENOTSUP`.
    case enotsup = 95
    /// `NBD_ESHUTDOWN`.
    case eshutdown = 108
}

/// `base:allocation` status flags (`NBD_STATE_*`).
public struct NBDAllocationState: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates flags from their wire value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `NBD_STATE_HOLE`: not allocated on the server.
    public static let hole = NBDAllocationState(rawValue: 1 << 0)
    /// `NBD_STATE_ZERO`: reads as zeros.
    public static let zero = NBDAllocationState(rawValue: 1 << 1)
    /// The `base:allocation` context name.
    public static let contextName = "base:allocation"
}
