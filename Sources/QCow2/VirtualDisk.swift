import BlockIO

/// What a guest sees: a byte range of `virtualSize` bytes. qcow2 images, raw files and backing
/// chains all present this, so a qcow2 image reads through to any backing format.
public protocol VirtualDisk: AnyObject, Sendable {
    /// The file name as given (messages, `map` output).
    var filename: String { get }
    /// The format name qemu-img prints (`qcow2`, `raw`).
    var formatName: String { get }
    var virtualSize: UInt64 { get }
    /// The backing disk, if any.
    var backingDisk: (any VirtualDisk)? { get }
    /// Reads guest bytes into `buffer[range]`; bytes past `virtualSize` read as zero.
    func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws
    /// Allocation status of the run starting at `offset`, at most `maxLength` long (≥ 1 byte returned
    /// when `offset < virtualSize`).
    func blockStatus(at offset: UInt64, maxLength: UInt64) throws -> BlockStatus
}

/// The state of a run of guest bytes in one layer, as `qemu-img map` reports it.
public struct BlockStatus: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Data stored in this layer; `hostOffset` is where (nil for compressed data).
        case data(hostOffset: UInt64?)
        /// Reads as zeros, decided by this layer (zero flag, or a hole in a raw file).
        case zero(hostOffset: UInt64?)
        /// Not decided here: read from the backing disk, or zeros without one. `hostOffset` is the
        /// cluster an extended L2 entry keeps for unallocated subclusters (qemu-img map prints it).
        case unallocated(hostOffset: UInt64?)
    }
    public var kind: Kind
    public var length: UInt64
    /// The file holding the data (an external data file differs from the image file).
    public var file: String
    /// `.data` whose host range is a hole in the file (qcow2 with metadata preallocation, where
    /// QEMU asks the file too): qemu-img map reports it as both data and zero.
    public var hostHole: Bool

    public init(kind: Kind, length: UInt64, file: String, hostHole: Bool = false) {
        self.kind = kind
        self.length = length
        self.file = file
        self.hostHole = hostHole
    }

    /// Whether this layer leaves the range to its backing disk (whatever host offset it keeps).
    public var isUnallocated: Bool {
        if case .unallocated = kind { return true }
        return false
    }
}

extension VirtualDisk {
    /// Reads `count` guest bytes at `offset` into a new array.
    public func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try read(into: &bytes, range: 0..<count, at: offset)
        return bytes
    }

    /// Number of layers below this one.
    public var chainDepth: Int {
        var depth = 0
        var disk = backingDisk
        while let d = disk {
            depth += 1
            disk = d.backingDisk
        }
        return depth
    }
}
