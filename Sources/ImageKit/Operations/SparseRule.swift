import BlockIO
import QCow2

/// qemu-img convert's `-S` rule, sector by sector (`is_allocated_sectors_min` in qemu-img.c):
/// within one read request, a zero run shorter than `-S` between data is written with the data;
/// a data run ends on a boundary of `alignment` sectors (pow2floor of `-S`) when the request goes
/// on past it; a zero run ends on such a boundary too, and one shorter than the way to it is
/// written as data. The request's first and last zero runs stay holes whatever their length.
///
/// A new output (qcow2 or raw) allocates exactly the clusters (file-system blocks) these writes
/// touch, so following the rule gives qemu-img's allocation map, not only its content.
struct SparseRule {
    static let sector = 512
    /// `-S` in sectors.
    let minimum: Int
    /// A power of two, in sectors.
    let alignment: Int

    init(sparseSize: Int) {
        minimum = max(1, sparseSize / Self.sector)
        var a = 1
        while a * 2 <= minimum { a *= 2 }
        alignment = a
    }

    /// The parts of `buffer[request]` (one read request starting at guest sector `firstSector`)
    /// that qemu-img writes, as ranges of `buffer`; the rest it leaves unwritten on an output that
    /// reads as zeros.
    func dataRanges(_ buffer: [UInt8], _ request: Range<Int>, firstSector: UInt64) -> [Range<Int>] {
        let sectors = (request.count + Self.sector - 1) / Self.sector
        var zeroCache = ZeroSectors(buffer: buffer, request: request)
        var ranges: [Range<Int>] = []
        var at = 0
        while at < sectors {
            let (data, count) = allocatedMin(
                &zeroCache, from: at, count: sectors - at, sector: firstSector + UInt64(at))
            if data {
                let start = request.lowerBound + at * Self.sector
                let range = start..<min(request.upperBound, start + count * Self.sector)
                if let last = ranges.last, last.upperBound == range.lowerBound {
                    ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    ranges.append(range)
                }
            }
            at += count
        }
        return ranges
    }

    /// `is_allocated_sectors_min`: whether the run at `from` is written, and its length in sectors.
    private func allocatedMin(_ zero: inout ZeroSectors, from: Int, count n: Int, sector: UInt64) -> (Bool, Int) {
        let minimum = min(self.minimum, n)
        let first = allocated(&zero, from: from, count: n, sector: sector)
        guard first.data else { return (false, first.count) }
        var used = first.count
        var checked = used
        while checked < n {
            let run = allocated(&zero, from: from + checked, count: n - checked, sector: sector + UInt64(checked))
            checked += run.count
            if run.data {
                used = checked
            } else if run.count >= minimum {
                break
            }
        }
        return (true, used)
    }

    /// `is_allocated_sectors`: the run of sectors sharing the first one's state, with its end moved
    /// to an `alignment` boundary when the request goes on past it.
    private func allocated(_ zero: inout ZeroSectors, from: Int, count n: Int, sector: UInt64) -> (
        data: Bool, count: Int
    ) {
        let firstIsZero = zero[from]
        var i = 1
        while i < n && zero[from + i] == firstIsZero { i += 1 }
        if i == n { return (!firstIsZero, i) }
        var isZero = firstIsZero
        let tail = Int((sector + UInt64(i)) & UInt64(alignment - 1))
        if tail != 0 {
            // A zero run no longer than the way back to the boundary is rewritten by the data after
            // it anyway (read-modify-write), so qemu-img writes it now.
            if isZero && i <= tail { isZero = false }
            i = isZero ? i - tail : min(i + alignment - tail, n)
        }
        return (!isZero, i)
    }
}

/// Whether each sector of a request is all zeros, each scanned at most once (the rule looks at
/// some sectors again after moving a run's end).
private struct ZeroSectors {
    let buffer: [UInt8]
    let request: Range<Int>
    private var known: [UInt8]  // 0 unknown, 1 zero, 2 data

    init(buffer: [UInt8], request: Range<Int>) {
        self.buffer = buffer
        self.request = request
        known = [UInt8](repeating: 0, count: (request.count + SparseRule.sector - 1) / SparseRule.sector)
    }

    subscript(index: Int) -> Bool {
        mutating get {
            if known[index] == 0 {
                let start = request.lowerBound + index * SparseRule.sector
                let end = min(request.upperBound, start + SparseRule.sector)
                known[index] = isZero(buffer, start..<end) ? 1 : 2
            }
            return known[index] == 1
        }
    }
}
