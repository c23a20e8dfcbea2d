/// Bounds-checked big-endian reader over bytes; every read that would run past the end throws
/// `.truncated` naming the structure, so no hostile length can index out of range.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var position: Int
    public let structure: String

    public init(_ bytes: [UInt8], structure: String, position: Int = 0) {
        self.bytes = bytes
        self.structure = structure
        self.position = position
    }

    public var remaining: Int { max(0, bytes.count - position) }

    private mutating func take(_ count: Int) throws(QCow2Error) -> Int {
        guard count >= 0, position >= 0, count <= bytes.count - position else {
            throw .truncated(structure: structure, needed: position + count, available: bytes.count)
        }
        defer { position += count }
        return position
    }

    public mutating func uint8() throws(QCow2Error) -> UInt8 { bytes[try take(1)] }
    public mutating func uint16() throws(QCow2Error) -> UInt16 { UInt16(truncatingIfNeeded: try integer(2)) }
    public mutating func uint32() throws(QCow2Error) -> UInt32 { UInt32(truncatingIfNeeded: try integer(4)) }
    public mutating func uint64() throws(QCow2Error) -> UInt64 { try integer(8) }

    private mutating func integer(_ width: Int) throws(QCow2Error) -> UInt64 {
        let start = try take(width)
        var value: UInt64 = 0
        for i in start..<(start + width) { value = value << 8 | UInt64(bytes[i]) }
        return value
    }

    public mutating func bytes(_ count: Int) throws(QCow2Error) -> [UInt8] {
        let start = try take(count)
        return Array(bytes[start..<(start + count)])
    }

    public mutating func skip(_ count: Int) throws(QCow2Error) { _ = try take(count) }

    public mutating func seek(to offset: Int) throws(QCow2Error) {
        guard offset >= 0, offset <= bytes.count else {
            throw .truncated(structure: structure, needed: offset, available: bytes.count)
        }
        position = offset
    }
}

/// Big-endian writer into a growing byte array.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func uint8(_ value: UInt8) { bytes.append(value) }
    public mutating func uint16(_ value: UInt16) { integer(UInt64(value), width: 2) }
    public mutating func uint32(_ value: UInt32) { integer(UInt64(value), width: 4) }
    public mutating func uint64(_ value: UInt64) { integer(value, width: 8) }
    public mutating func append(_ data: [UInt8]) { bytes.append(contentsOf: data) }
    public mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: max(0, count))) }

    /// Pads with zeros to the next multiple of `alignment`.
    public mutating func align(to alignment: Int) {
        let rest = bytes.count % alignment
        if rest != 0 { zeros(alignment - rest) }
    }

    private mutating func integer(_ value: UInt64, width: Int) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }
}

extension Array where Element == UInt8 {
    /// Reads a big-endian UInt64 at `offset`; the caller guarantees `offset + 8 <= count`.
    @inlinable public func bigEndianUInt64(at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in offset..<(offset + 8) { value = value << 8 | UInt64(self[i]) }
        return value
    }

    /// Stores a big-endian UInt64 at `offset`; the caller guarantees room.
    @inlinable public mutating func setBigEndianUInt64(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * i)) }
    }
}
