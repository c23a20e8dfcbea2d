import BlockIO
import QCow2
import QCow2Format

/// `qemu-img compare`: guest contents equal, a larger image's excess must read as zeros (unless
/// strict, where sizes and allocation status must match too). Mismatch offsets are reported at
/// 512-byte sector granularity, as qemu-img does. The walk follows `img_compare` step for step
/// (one block-status run of each image per step, reads capped at 2 MiB) so that `-p` progress
/// advances by the same amounts.
public enum Comparer {
    static let chunk = 2 << 20

    /// `progress` receives the percentage qemu-img would hold after each step (not the initial
    /// 0, which the caller prints); `sizeMismatch` is called when the common part matched and the
    /// larger image's tail is checked next.
    public static func compare(
        _ a: any VirtualDisk, _ b: any VirtualDisk, strict: Bool, progress: (Double) -> Void = { _ in },
        sizeMismatch: () -> Void = {}
    ) throws -> CompareResult {
        let sizeA = a.virtualSize
        let sizeB = b.virtualSize
        let result = { (outcome: CompareResult.Outcome) in
            CompareResult(size1: Int64(sizeA), size2: Int64(sizeB), outcome: outcome)
        }
        if strict && sizeA != sizeB { return result(.strictSizeMismatch) }
        let common = min(sizeA, sizeB)
        let total = max(sizeA, sizeB)
        var percent = QemuProgress(base: total)
        var bufA = AlignedBytes(count: chunk)
        var bufB = AlignedBytes(count: chunk)
        var offset: UInt64 = 0
        while offset < common {
            try Cancellation.check()
            let sa = try status(a, offset, sizeA - offset)
            let sb = try status(b, offset, sizeB - offset)
            var n = min(sa.length, sb.length, common - offset)
            if strict && sa.present != sb.present { return result(.blockStatusMismatch(offset: Int64(offset))) }
            if sa.zero && sb.zero {
                // Both read as zeros: nothing to read.
            } else if sa.present == sb.present {
                if sa.present {
                    n = min(n, UInt64(chunk))
                    try a.read(into: &bufA.bytes, range: bufA.indices(0..<Int(n)), at: offset)
                    try b.read(into: &bufB.bytes, range: bufB.indices(0..<Int(n)), at: offset)
                    if let at = BlockIO.firstDifference(
                        bufA.bytes, from: bufA.base, bufB.bytes, from: bufB.base, count: Int(n))
                    {
                        return result(.contentMismatch(offset: Int64(offset) + Int64(at / 512 * 512)))
                    }
                }
            } else {
                n = min(n, UInt64(chunk))
                let allocated = sa.present ? a : b
                try allocated.read(into: &bufA.bytes, range: bufA.indices(0..<Int(n)), at: offset)
                if let at = bufA.firstNonZero(0..<Int(n)) {
                    return result(.contentMismatch(offset: Int64(offset) + Int64(at / 512 * 512)))
                }
            }
            offset += n
            progress(percent.advance(n))
        }
        // The larger image's tail must read as zeros.
        let larger = sizeA > sizeB ? a : b
        if sizeA != sizeB { sizeMismatch() }
        while offset < total {
            try Cancellation.check()
            let s = try status(larger, offset, total - offset)
            var n = min(s.length, total - offset)
            if s.present && !s.zero {
                n = min(n, UInt64(chunk))
                try larger.read(into: &bufA.bytes, range: bufA.indices(0..<Int(n)), at: offset)
                if let at = bufA.firstNonZero(0..<Int(n)) {
                    return result(.contentMismatch(offset: Int64(offset) + Int64(at / 512 * 512)))
                }
            }
            offset += n
            progress(percent.advance(n))
        }
        return result(.identical)
    }

    /// QEMU's progress arithmetic for `img_compare`: each step adds `(float)chunk / base * 100`
    /// to a `float` (util/qemu-progress.c), capped at 100, so the printed digits match.
    struct QemuProgress {
        let base: Float
        var current: Float = 0
        init(base: UInt64) { self.base = Float(base) }
        mutating func advance(_ bytes: UInt64) -> Double {
            let delta = Float(bytes) / base * 100
            current = min(100, current + delta / 100 * 100)
            return Double(current)
        }
    }

    static func status(_ disk: any VirtualDisk, _ offset: UInt64, _ want: UInt64) throws -> ChainExtent {
        do {
            return try disk.chainStatus(at: offset, maxLength: want)
        } catch {
            throw ImageError(
                .blockStatus, "Error while reading offset \(offset) of \(disk.filename): \(ImageError.reason(error))")
        }
    }

}

/// `qemu-img measure` for qcow2 and raw output, with QEMU's formulas (`qcow2_measure`,
/// `qcow2_calc_prealloc_size`, `qcow2_refcount_metadata_size`, `raw_measure`).
public enum Measurer {
    public static func measure(
        source: (any VirtualDisk)?, size: UInt64?, format: String, options: QCow2CreateOptions
    ) throws -> MeasureResult {
        let ssize = source?.virtualSize ?? size ?? 0
        if format == "raw" {
            var required = (ssize + 511) / 512 * 512
            if let source, options.preallocation != .full && options.preallocation != .falloc {
                required = 0
                var offset: UInt64 = 0
                while offset < ssize {
                    try Cancellation.check()
                    let e = try source.chainStatus(at: offset, maxLength: ssize - offset)
                    if !e.zero && e.data { required += e.length }
                    offset += e.length
                }
            }
            return MeasureResult(required: Int64(required), fullyAllocated: Int64((ssize + 511) / 512 * 512))
        }
        let cs = UInt64(1) << UInt64(options.clusterBits)
        let geometry = QCow2Geometry(
            clusterBits: Int(options.clusterBits), extendedL2: options.extendedL2,
            refcountOrder: Int(options.refcountOrder))
        guard ssize <= geometry.maxVirtualSize else {
            throw ImageError(.other, "The image size is too large (try using a larger cluster size)")
        }
        let virtual = (ssize + cs - 1) / cs * cs
        var required: UInt64 = 0
        if let source {
            if options.backingFile != nil {
                required = virtual
            } else {
                var offset: UInt64 = 0
                while offset < ssize {
                    try Cancellation.check()
                    let e = try source.chainStatus(at: offset, maxLength: ssize - offset)
                    var pnum = e.length
                    if !e.zero && e.data && e.present {
                        pnum = (offset + pnum + cs - 1) / cs * cs - offset
                        required += offset % cs + pnum
                    }
                    offset += pnum
                }
            }
        }
        if options.preallocation == .full || options.preallocation == .falloc { required = virtual }
        let fully = preallocSize(
            virtual, clusterSize: cs, refcountOrder: UInt64(options.refcountOrder), extendedL2: options.extendedL2)
        // qemu-img shows bitmaps only when both ends can hold persistent bitmaps (qcow2 v3).
        let sourceImage = (source as? QCow2Image).flatMap { $0.header.version >= 3 ? $0 : nil }
        let bitmaps: Int64? =
            options.version >= 3 && sourceImage != nil
            ? Int64(try bitmapsSize(sourceImage?.persistentBitmaps() ?? [], size: ssize, clusterSize: cs)) : nil
        return MeasureResult(
            required: Int64(fully - virtual + required), fullyAllocated: Int64(fully), bitmaps: bitmaps)
    }

    /// Room for `bitmaps` in an output of `clusterSize` (QEMU's `qcow2_measure`): each bitmap's
    /// data as if every cluster were stored, its table, and the directory.
    static func bitmapsSize(_ bitmaps: [BitmapDirectoryEntry], size: UInt64, clusterSize cs: UInt64) -> UInt64 {
        var total: UInt64 = 0
        var directory: UInt64 = 0
        for b in bitmaps {
            let clusters =
                (BitmapDirectoryEntry.dataBytes(virtualSize: size, granularityBits: b.granularityBits) + cs - 1) / cs
            total += clusters * cs + (clusters * 8 + cs - 1) / cs * cs
            directory += UInt64(BitmapDirectoryEntry.entrySize(nameLength: b.nameBytes.count))
        }
        return total + (directory + cs - 1) / cs * cs
    }

    static func preallocSize(_ total: UInt64, clusterSize cs: UInt64, refcountOrder: UInt64, extendedL2: Bool)
        -> UInt64
    {
        let aligned = (total + cs - 1) / cs * cs
        let l2e: UInt64 = extendedL2 ? 16 : 8
        var meta = cs
        var nl2e = aligned / cs
        nl2e = (nl2e + cs / l2e - 1) / (cs / l2e) * (cs / l2e)
        meta += nl2e * l2e
        var nl1e = nl2e * l2e / cs
        nl1e = (nl1e + cs / 8 - 1) / (cs / 8) * (cs / 8)
        meta += nl1e * 8
        meta += refcountMetadataSize(clusters: (meta + aligned) / cs, clusterSize: cs, refcountOrder: refcountOrder)
        return meta + aligned
    }

    static func refcountMetadataSize(clusters: UInt64, clusterSize cs: UInt64, refcountOrder: UInt64) -> UInt64 {
        let perTableCluster = cs / 8
        let perBlock = cs * 8 / (1 << refcountOrder)
        var table: UInt64 = 0
        var blocks: UInt64 = 0
        var n: UInt64 = 0
        var last: UInt64
        repeat {
            last = n
            blocks = (clusters + table + blocks + perBlock - 1) / perBlock
            table = (blocks + perTableCluster - 1) / perTableCluster
            n = clusters + blocks + table
        } while n != last
        return (blocks + table) * cs
    }
}
