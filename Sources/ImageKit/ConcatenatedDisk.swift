import BlockIO
import QCow2

/// `convert a b c out`: the sources one after another, as qemu-img concatenates them. Every
/// disk's size is a whole number of sectors (raw files are counted in sectors), so each part
/// starts where the one before ends. Block status is each part's own, resolved down its chain.
public final class ConcatenatedDisk: VirtualDisk {
    /// The parts with the guest offset each starts at.
    public let parts: [(disk: any VirtualDisk, start: UInt64)]
    public let virtualSize: UInt64

    public init(_ disks: [any VirtualDisk]) {
        var parts: [(disk: any VirtualDisk, start: UInt64)] = []
        var start: UInt64 = 0
        for disk in disks {
            parts.append((disk, start))
            start += disk.virtualSize
        }
        self.parts = parts
        virtualSize = start
    }

    public var filename: String { parts.first?.disk.filename ?? "" }
    public var formatName: String { parts.first?.disk.formatName ?? "raw" }
    /// Each part's chain is resolved by `blockStatus`; the whole has no backing disk.
    public var backingDisk: (any VirtualDisk)? { nil }

    /// The index of the part holding guest byte `offset` (`offset < virtualSize`).
    public func partIndex(at offset: UInt64) -> Int {
        var low = 0
        var high = parts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if parts[mid].start <= offset { low = mid } else { high = mid - 1 }
        }
        return low
    }

    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws {
        var done = range.lowerBound
        var at = offset
        while done < range.upperBound {
            guard at < virtualSize, !parts.isEmpty else {
                for i in done..<range.upperBound { buffer[i] = 0 }
                return
            }
            let part = parts[partIndex(at: at)]
            let inPart = at - part.start
            let n = Int(min(UInt64(range.upperBound - done), part.disk.virtualSize - inPart))
            try part.disk.read(into: &buffer, range: done..<(done + n), at: inPart)
            done += n
            at += UInt64(n)
        }
    }

    public func blockStatus(at offset: UInt64, maxLength: UInt64) throws -> BlockStatus {
        guard offset < virtualSize, !parts.isEmpty else {
            return BlockStatus(kind: .unallocated(hostOffset: nil), length: maxLength, file: filename)
        }
        let part = parts[partIndex(at: offset)]
        let inPart = offset - part.start
        let e = try part.disk.chainStatus(at: inPart, maxLength: min(maxLength, part.disk.virtualSize - inPart))
        let file = e.filename ?? part.disk.filename
        if e.data {
            return BlockStatus(kind: .data(hostOffset: e.offset), length: e.length, file: file, hostHole: e.zero)
        }
        if e.present {
            return BlockStatus(kind: .zero(hostOffset: e.offset), length: e.length, file: file)
        }
        return BlockStatus(kind: .unallocated(hostOffset: nil), length: e.length, file: file)
    }
}
