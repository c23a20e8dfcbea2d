import BlockIO
import QCow2Format

/// An error with the file it concerns, printed by the CLI as one line `vmimg: <message>`.
public struct ImageError: ClassifiedImageError, CustomStringConvertible, Sendable {
    public var kind: ImageErrorKind
    public var path: String?
    public var message: String

    public init(_ kind: ImageErrorKind, _ message: String, path: String? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
    }

    public var description: String { message }

    /// Wraps any engine error as "Could not open 'path': reason", the way qemu-img words it.
    static func open(_ path: String, _ error: any Error) -> ImageError {
        if let e = error as? ImageError { return e }
        return ImageError(.open, "Could not open '\(path)': \(reason(error))")
    }

    /// The one-line reason of an engine error, without the file name.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let e as BlockIOError: return e.detail.isEmpty ? e.errnoText : e.detail
        case let e as ImageError: return e.message
        default: return "\(error)"
        }
    }

    /// Wraps an error met while working on an open image.
    static func wrap(_ error: any Error, kind: ImageErrorKind = .io, context: String? = nil) -> ImageError {
        if let e = error as? ImageError { return e }
        let text = reason(error)
        return ImageError(kind, context.map { "\($0): \(text)" } ?? text)
    }
}
