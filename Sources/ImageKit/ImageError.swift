import BlockIO
import QCow2Format

/// An error with the file it concerns, printed by the CLI as one line `vmimg: <message>`.
public struct ImageError: Error, CustomStringConvertible, Sendable {
    /// Stable kinds the CLI maps to exit codes.
    public enum Kind: Sendable { case usage, notFound, unsupported, corrupt, io, locked, policy }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Wraps any engine error as "Could not open 'path': reason", the way qemu-img words it.
    static func open(_ path: String, _ error: any Error) -> ImageError {
        if let e = error as? ImageError { return e }
        let kind: Kind
        let reason: String
        switch error {
        case let e as BlockIOError:
            kind = e.errno == 2 ? .notFound : (e.errno == 11 ? .locked : .io)
            reason = e.detail.isEmpty ? e.errnoText : e.detail
        case let e as QCow2Error:
            switch e {
            case .unsupported, .unknownIncompatibleFeatures, .unsupportedVersion: kind = .unsupported
            default: kind = .corrupt
            }
            reason = e.description
        default:
            kind = .io
            reason = "\(error)"
        }
        return ImageError(kind, "Could not open '\(path)': \(reason)")
    }
}
