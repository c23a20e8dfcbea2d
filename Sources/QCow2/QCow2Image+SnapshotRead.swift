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
        try blockStatus(at: offset, maxLength: maxLength, l1: snapshotTable, size: UInt64.max)
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
