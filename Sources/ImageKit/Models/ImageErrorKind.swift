/// Stable classes of failure; the CLI maps each to an exit code.
///
/// Most commands exit 1 for any failure; `compare` tells them apart (2 open, 3 block status,
/// 4 read) and `check` exits 63 when the format has no check.
public enum ImageErrorKind: Sendable, Equatable {
    /// Bad arguments or option values.
    case usage
    /// The image or a backing file could not be opened (missing, bad header, locked).
    case open
    /// The format or an operation on it is not supported.
    case unsupported
    /// The format has no consistency check: "This image format does not support checks".
    case checkNotSupported
    /// The image is corrupt.
    case corrupt
    /// Querying allocation status failed.
    case blockStatus
    /// Reading or writing data failed.
    case io
    /// Anything else.
    case other
}

/// An error that says which ``ImageErrorKind`` it is and how to print it.
///
/// The CLI prints `vmimg: <path>: <message>` when ``path`` is set, else `vmimg: <message>`.
/// Errors that don't conform print their description and count as ``ImageErrorKind/other``.
public protocol ClassifiedImageError: Error {
    /// The class of failure.
    var kind: ImageErrorKind { get }
    /// File the message is about, when qemu-img would prefix it (`create`, `amend` errors).
    var path: String? { get }
    /// One-line message in qemu-img's words, e.g. `Could not open 'x': No such file or directory`.
    var message: String { get }
}
