import BlockIO
import QCow2

/// The state of a run of guest bytes through a whole backing chain, as `qemu-img map` prints it.
public struct ChainExtent: Equatable, Sendable {
    public var start: UInt64
    public var length: UInt64
    /// Index of the layer that decided the run (0 = top); the chain length when none did.
    public var depth: Int
    /// Some layer stored data or zeros for the run.
    public var present: Bool
    public var zero: Bool
    public var data: Bool
    public var offset: UInt64?
    public var filename: String?

    /// Whether `next` continues this extent (same flags and file, contiguous host offsets).
    func canMerge(_ next: ChainExtent) -> Bool {
        guard depth == next.depth, present == next.present, zero == next.zero, data == next.data,
            filename == next.filename, start + length == next.start
        else { return false }
        switch (offset, next.offset) {
        case (nil, nil): return true
        case (let a?, let b?): return a + length == b
        default: return false
        }
    }
}

extension VirtualDisk {
    /// Status of the run at `offset` resolved down the chain.
    public func chainStatus(at offset: UInt64, maxLength: UInt64) throws -> ChainExtent {
        var layer: any VirtualDisk = self
        var depth = 0
        var limit = min(maxLength, virtualSize - offset)
        while true {
            let status = try layer.blockStatus(at: offset, maxLength: limit)
            let length = min(status.length, limit)
            switch status.kind {
            case .data(let host):
                return ChainExtent(
                    start: offset, length: length, depth: depth, present: true, zero: status.hostHole, data: true,
                    offset: host, filename: host == nil ? nil : status.file)
            case .zero(let host):
                return ChainExtent(
                    start: offset, length: length, depth: depth, present: true, zero: true, data: false,
                    offset: host, filename: host == nil ? nil : status.file)
            case .unallocated(let host):
                // As QEMU's bdrv_co_block_status: without a backing layer, or past its end, this
                // layer answers "zero" itself (not present); only otherwise does the query descend.
                guard let backing = layer.backingDisk, offset < backing.virtualSize else {
                    return ChainExtent(
                        start: offset, length: length, depth: depth, present: false, zero: true, data: false,
                        offset: host, filename: host == nil ? nil : status.file)
                }
                depth += 1
                limit = min(length, backing.virtualSize - offset)
                layer = backing
            }
        }
    }

    /// All extents from `start` for `length` bytes, merged as qemu-img map merges them.
    public func mapExtents(start: UInt64 = 0, length: UInt64? = nil) throws -> [ChainExtent] {
        let end = min(virtualSize, start &+ (length ?? virtualSize))
        var extents: [ChainExtent] = []
        var offset = start
        while offset < end {
            try Cancellation.check()
            let e = try chainStatus(at: offset, maxLength: end - offset)
            guard e.length > 0 else { break }
            if let last = extents.last, last.canMerge(e) {
                extents[extents.count - 1].length += e.length
            } else {
                extents.append(e)
            }
            offset += e.length
        }
        return extents
    }
}
