/// One run of guest bytes with the same allocation status: qemu-img's `MapEntry`.
///
/// The engine returns block-status extents in guest order; the CLI merges neighbours the way
/// qemu-img does before printing (`Offset Length Mapped to File` or one JSON object a line).
public struct MapExtent: Sendable, Equatable {
    /// First guest byte (`start`).
    public var start: Int64
    /// Length in bytes (`length`).
    public var length: Int64
    /// Chain depth the data comes from: 0 = this image, 1 = its backing file, … (`depth`).
    public var depth: Int64
    /// Whether some layer of the chain defines these bytes (`present`).
    public var present: Bool
    /// Whether the bytes read as zeros (`zero`).
    public var zero: Bool
    /// Whether the bytes are stored as data (`data`).
    public var data: Bool
    /// Host offset in `filename`; `nil` for holes and compressed or encrypted clusters (`offset`).
    public var offset: Int64?
    /// File holding the bytes at `offset` (human output's `File` column).
    public var filename: String?

    /// Creates an extent.
    public init(
        start: Int64, length: Int64, depth: Int64 = 0, present: Bool, zero: Bool, data: Bool,
        offset: Int64? = nil, filename: String? = nil
    ) {
        self.start = start
        self.length = length
        self.depth = depth
        self.present = present
        self.zero = zero
        self.data = data
        self.offset = offset
        self.filename = filename
    }
}
