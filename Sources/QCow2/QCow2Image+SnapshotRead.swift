import BlockIO
import QCow2Format

extension QCow2Image {
    /// Reads guest bytes through a snapshot's L1 table loaded once with `snapshotL1(_:)` (for
    /// exports that read a snapshot piece by piece).
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64, snapshotTable: [UInt64])
        throws
    {
        try read(into: &buffer, range: range, at: offset, snapshotL1: snapshotTable)
    }

    /// Allocation status of a run in a snapshot's view (this layer only), as `blockStatus`.
    public func blockStatus(at offset: UInt64, maxLength: UInt64, snapshotTable: [UInt64]) throws -> BlockStatus {
        let (mapping, length) = try state.withLock { s in
            try s.lookup(offset, maxLength: maxLength, l1: snapshotTable, file: file)
        }
        let name = dataFile?.name ?? filename
        switch mapping {
        case .data(let host): return BlockStatus(kind: .data(hostOffset: host), length: length, file: name)
        case .zero(let host): return BlockStatus(kind: .zero(hostOffset: host), length: length, file: name)
        case .unallocated: return BlockStatus(kind: .unallocated, length: length, file: filename)
        case .compressed: return BlockStatus(kind: .data(hostOffset: nil), length: length, file: filename)
        }
    }

    /// Empties the active layer: every cluster becomes unallocated, so reads fall through to the
    /// backing file again (QEMU's `bdrv_make_empty`, used by `qemu-img commit`). Snapshots keep
    /// their data.
    public func makeEmpty() throws {
        let size = virtualSize
        try checkWritable(offset: 0, count: size)
        try forEachPiece(offset: 0, count: size) { s, pos, _, _ in
            try updateWholeCluster(&s, at: pos) { _ in L2Entry(raw: 0, bitmap: 0) }
        }
        try flush()
    }
}
