/// What to do with one transmission request after the bounds and flag checks.
public enum NBDRequestDecision: Equatable, Sendable {
    /// Run it.
    case execute
    /// Reply with this error and keep the connection.
    case reject(NBDErrno, String)
    /// `NBD_CMD_DISC`: finish in-flight requests, then close; no reply.
    case disconnect
}

extension NBDSession {
    /// Checks a request against the export before any engine call or allocation: known command,
    /// flag allow-list, read-only export, length limit, range in subtraction form (no overflow).
    /// - Parameter request: a decoded request (a WRITE's payload is already bounded by the decoder).
    /// - Returns: the decision; errors use QEMU's choice of errno.
    public func check(_ request: NBDRequest) -> NBDRequestDecision {
        let command = request.command
        var allowed: NBDCommandFlags = [.fua]
        switch command {
        case .disc: return .disconnect
        case .read: if structuredReplies { allowed.insert(.df) }
        case .writeZeroes: allowed.insert(.noHole)
        case .blockStatus: allowed.insert(.reqOne)
        case .write, .flush, .trim: break
        default: return .reject(.einval, "\(command) is not supported")
        }
        guard request.flags.isSubset(of: allowed) else {
            return .reject(.einval, "\(command): unsupported flags 0x\(String(request.flags.rawValue, radix: 16))")
        }
        let writes = command == .write || command == .trim || command == .writeZeroes
        if writes && export.isReadOnly { return .reject(.eperm, "\(command): export is read-only") }
        if command == .flush { return .execute }
        if command == .read || command == .write, request.length > export.maximumBlockSize {
            return .reject(.einval, "\(command): length \(request.length) exceeds \(export.maximumBlockSize)")
        }
        if command == .write, request.payload?.readableBytes != Int(request.length) {
            return .reject(.einval, "\(command): payload does not match length")
        }
        let size = export.size
        guard request.offset <= size, UInt64(request.length) <= size - request.offset else {
            return .reject(
                writes ? .enospc : .einval,
                "\(command): offset \(request.offset) + length \(request.length) is past the end (\(size))")
        }
        if command == .blockStatus {
            guard structuredReplies, baseAllocationContextID != nil else {
                return .reject(.einval, "\(command): no metadata context was negotiated")
            }
            guard request.length > 0 else { return .reject(.einval, "\(command): length 0") }
        }
        return .execute
    }
}
