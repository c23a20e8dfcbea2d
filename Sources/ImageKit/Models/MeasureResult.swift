/// Space needed to convert an image: qemu-img's QAPI `BlockMeasureInfo` (`measure`).
public struct MeasureResult: Sendable, Equatable, Encodable {
    /// Bytes needed for the allocated data plus metadata (`required`).
    public var required: Int64
    /// Bytes needed when every cluster is allocated (`fully-allocated`).
    public var fullyAllocated: Int64
    /// Bytes for persistent bitmaps (`bitmaps`); `nil` when measuring `--size` only.
    public var bitmaps: Int64?

    /// Creates a result.
    public init(required: Int64, fullyAllocated: Int64, bitmaps: Int64? = nil) {
        self.required = required
        self.fullyAllocated = fullyAllocated
        self.bitmaps = bitmaps
    }

    enum CodingKeys: String, CodingKey {
        case required
        case fullyAllocated = "fully-allocated"
        case bitmaps
    }
}
