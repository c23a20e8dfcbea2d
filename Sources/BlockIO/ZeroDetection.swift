import CBlockIO

/// Whether `buffer[range]` holds only zero bytes.
///
/// Compares 64 bytes per step as eight unaligned 64-bit words (QEMU's `buffer_is_zero` does the
/// same with vector registers); the optimizer vectorizes the OR. Used by convert and raw export
/// to leave zero clusters unallocated, so it runs over every byte converted.
/// - Precondition: `range` lies inside `buffer`.
public func isAllZero(_ buffer: [UInt8], range: Range<Int>) -> Bool {
    precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "range outside the buffer")
    return unsafe buffer.withUnsafeBytes { raw in
        unsafe isAllZero(UnsafeRawBufferPointer(rebasing: raw[range]))
    }
}

/// Whether every byte of `bytes` is zero (see `isAllZero(_:range:)`).
func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let count = bytes.count
    guard count > 0, let base = bytes.baseAddress else { return true }
    var i = 0
    // A quick look at the first word rejects most data blocks at once.
    if count >= 8, unsafe base.loadUnaligned(as: UInt64.self) != 0 { return false }
    while i + 64 <= count {
        var acc: UInt64 = 0
        for k in stride(from: 0, to: 64, by: 8) {
            acc |= unsafe base.loadUnaligned(fromByteOffset: i + k, as: UInt64.self)
        }
        if acc != 0 { return false }
        i += 64
    }
    var tail: UInt8 = 0
    while i < count {
        tail |= unsafe base.load(fromByteOffset: i, as: UInt8.self)
        i += 1
    }
    return tail == 0
}

/// The index of the first byte in `0..<count` where `x` and `y` differ, or nil when they are
/// equal there (`compare` runs this over every allocated byte of both images).
/// - Precondition: `count` lies inside both buffers.
public func firstDifference(_ x: [UInt8], _ y: [UInt8], count: Int) -> Int? {
    firstDifference(x, from: 0, y, from: 0, count: count)
}

/// The offset of the first byte where `x[xStart..<xStart + count]` and `y[yStart..<yStart + count]`
/// differ, or nil when they are equal.
public func firstDifference(_ x: [UInt8], from xStart: Int, _ y: [UInt8], from yStart: Int, count: Int) -> Int? {
    precondition(
        count >= 0 && xStart >= 0 && yStart >= 0 && xStart + count <= x.count && yStart + count <= y.count,
        "count outside the buffers")
    guard count > 0 else { return nil }
    let at = unsafe x.withUnsafeBytes { a in
        unsafe y.withUnsafeBytes { b in
            unsafe cblockio_first_difference(
                a.baseAddress.map { unsafe $0 + xStart }, b.baseAddress.map { unsafe $0 + yStart }, count)
        }
    }
    return at < count ? at : nil
}
