/// Outcome of comparing two images' guest contents (`compare`).
public struct CompareResult: Sendable, Equatable {
    /// How the comparison ended.
    public enum Outcome: Sendable, Equatable {
        /// Contents match (the longer image is zero past the shorter one's end).
        case identical
        /// First differing guest byte: "Content mismatch at offset N!".
        case contentMismatch(offset: Int64)
        /// Strict mode and the sizes differ: "Strict mode: Image size mismatch!".
        case strictSizeMismatch
        /// Strict mode and allocation differs at `offset`:
        /// "Strict mode: Offset N block status mismatch!".
        case blockStatusMismatch(offset: Int64)
    }

    /// Virtual size of the first image.
    public var size1: Int64
    /// Virtual size of the second image.
    public var size2: Int64
    /// How the comparison ended.
    public var outcome: Outcome

    /// Creates a result.
    public init(size1: Int64, size2: Int64, outcome: Outcome) {
        self.size1 = size1
        self.size2 = size2
        self.outcome = outcome
    }

    /// Whether the images count as identical (exit 0).
    public var isIdentical: Bool { outcome == .identical }
}
