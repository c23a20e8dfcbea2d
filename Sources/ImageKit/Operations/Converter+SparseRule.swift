import BlockIO
import QCow2

extension Converter {
    /// Whether the output's zero runs follow qemu-img's sector rule (``SparseRule``) instead of
    /// one test per unit. When `-S` fits in a unit (the default 4 KiB against clusters or file
    /// blocks of 4 KiB or more) the rule writes exactly the units holding a non-zero byte, which
    /// the per-unit test finds faster; past that (`-S` above the cluster size, 512-byte clusters)
    /// the rule's merged runs and aligned run ends decide which units are allocated.
    static func followsSparseRule(_ target: ConvertTarget, unit: Int) -> Bool {
        target.sparseSize > unit && !target.compress && !target.outputMayHoldData && !target.copyTopLayerOnly
    }

    /// qemu-img's read buffer (`buf_sectors`: 2 MiB, or a larger qcow2 output cluster, at most 16 MiB).
    static func sparseRuleRequestSize(unit: Int) -> Int { min(16 << 20, max(2 << 20, unit)) }

    /// The largest block-status query qemu-img makes (BDRV_REQUEST_MAX_SECTORS).
    static let maxStatusQuery: UInt64 = (UInt64(Int32.max) >> 9) << 9

    /// `plan` under the sparse rule. Steps are qemu-img's own read requests: runs of one block
    /// status (their end moved down to the source's alignment, as qemu-img does), data runs cut
    /// into `sparseRuleRequestSize` pieces, so zero runs split where qemu-img splits them. Each
    /// request is read widened to whole units; a unit is written when a range the rule writes
    /// touches it. Neighbouring requests may share a unit: it is then written by each that
    /// touches it, with the same source bytes.
    static func planBySparseRule(
        _ disk: any VirtualDisk, unit: Int, target: ConvertTarget, buffers: BlockingQueue<ChunkBuffer>,
        stop: StopFlag, emit: (ConvertStep) throws -> Void
    ) throws {
        let size = disk.virtualSize
        let rule = SparseRule(sparseSize: target.sparseSize)
        let requestSize = UInt64(sparseRuleRequestSize(unit: unit))
        let u = UInt64(unit)
        var offset: UInt64 = 0
        var statusEnd: UInt64 = 0
        var isData = false
        while offset < size && !stop.isSet {
            try Cancellation.check()
            if statusEnd <= offset {
                let e = try disk.chainStatus(at: offset, maxLength: min(size - offset, maxStatusQuery))
                var n = (e.length + 511) / 512 * 512
                let source = readAlignment(of: disk, at: offset)
                let tail = (offset - source.start + n) % source.alignment
                if n > tail { n -= tail }
                // Without a backing file for the output, qemu-img copies all but what reads as zeros.
                isData = !e.zero
                statusEnd = offset + n
            }
            let end = min(size, isData ? min(statusEnd, offset + requestSize) : statusEnd)
            if isData {
                let windowStart = offset / u * u
                let windowEnd = min(size, (end + u - 1) / u * u)
                let length = Int(windowEnd - windowStart)
                let buffer = buffers.take()
                try read(disk, into: &buffer.data, count: length, at: windowStart, target: target)
                let request = buffer.data.indices(Int(offset - windowStart)..<Int(end - windowStart))
                let base = buffer.data.base
                var zero = [Bool](repeating: true, count: (length + unit - 1) / unit)
                for range in rule.dataRanges(buffer.data.bytes, request, firstSector: offset / 512) {
                    for i in ((range.lowerBound - base) / unit)...((range.upperBound - 1 - base) / unit) {
                        zero[i] = false
                    }
                }
                try emit(.data(offset: windowStart, length: length, buffer: buffer, zero: zero, streams: nil))
            }
            offset = end
        }
    }

    /// The read alignment of the source at guest byte `offset` as qemu-img takes it (its
    /// cluster size, else a sector), and where that source starts (concatenated sources).
    static func readAlignment(of disk: any VirtualDisk, at offset: UInt64) -> (alignment: UInt64, start: UInt64) {
        if let whole = disk as? ConcatenatedDisk, !whole.parts.isEmpty {
            let part = whole.parts[whole.partIndex(at: offset)]
            return (readAlignment(of: part.disk, at: 0).alignment, part.start)
        }
        if let image = disk as? QCow2Image { return (UInt64(image.geometry.clusterSize), 0) }
        if let view = disk as? SnapshotView { return (UInt64(view.image.geometry.clusterSize), 0) }
        return (UInt64(SparseRule.sector), 0)
    }
}
