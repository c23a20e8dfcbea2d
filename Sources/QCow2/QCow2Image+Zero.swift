import BlockIO
import QCow2Format

extension QCow2Image {
    /// Makes a guest range read as zeros. Whole clusters get the zero flag (v3) or, in v2 without
    /// a backing file, are deallocated; with `unmap` their space is released. Partial clusters
    /// are written with zero bytes.
    public func writeZeroes(at offset: UInt64, count: UInt64, unmap: Bool = false) throws {
        try checkWritable(offset: offset, count: count)
        try forEachPiece(offset: offset, count: count) { s, pos, n, isWhole in
            let g = s.geometry
            let v2 = s.header.version < 3
            if !isWhole || (v2 && backingDisk != nil)
                || s.header.hasExternalDataFile
                    && s.header.autoclearFeatures
                        .contains(.dataFileRaw)
            {
                try writeZeroBytes(&s, at: pos, count: n)
                return
            }
            let external = s.header.hasExternalDataFile
            try updateWholeCluster(&s, at: pos) { old in
                if v2 { return L2Entry(raw: 0) }
                let keep =
                    !unmap && old.clusterType(extendedL2: g.extendedL2, externalDataFile: false) == .normal
                    && old.isCopied && !external
                if g.extendedL2 {
                    return L2Entry(raw: keep ? old.raw : 0, bitmap: L2Entry.allZeroBitmap)
                }
                return L2Entry(raw: keep ? (old.raw | L2Entry.zeroFlag) : L2Entry.zeroFlag)
            }
        }
    }

    /// Discards a guest range (`qemu-io discard`, NBD TRIM): whole clusters are deallocated; with a
    /// backing file they become zero clusters (v3) so the backing data does not show through.
    /// Partial clusters are left as they are.
    public func discard(at offset: UInt64, count: UInt64) throws {
        try checkWritable(offset: offset, count: count)
        try forEachPiece(offset: offset, count: count) { s, pos, n, isWhole in
            guard isWhole else { return }
            let g = s.geometry
            let hasBacking = backingDisk != nil && s.header.version >= 3
            let external = s.header.hasExternalDataFile
            try updateWholeCluster(&s, at: pos) { old in
                if external {
                    return hasBacking
                        ? L2Entry(raw: 0, bitmap: g.extendedL2 ? L2Entry.allZeroBitmap : 0)
                            .withZeroFlag(!g.extendedL2) : L2Entry(raw: 0)
                }
                if g.extendedL2 { return L2Entry(raw: 0, bitmap: hasBacking ? L2Entry.allZeroBitmap : 0) }
                return L2Entry(raw: hasBacking ? L2Entry.zeroFlag : 0)
            }
        }
    }

    /// Calls `body` under the lock for each cluster-bounded piece of the range.
    func forEachPiece(
        offset: UInt64, count: UInt64, _ body: (inout QCow2State, UInt64, Int, Bool) throws -> Void
    ) throws {
        try state.withLock { s in
            let cs = UInt64(s.geometry.clusterSize)
            var pos = offset
            let end = offset + count
            while pos < end {
                let clusterEnd = (pos / cs + 1) * cs
                let pieceEnd = min(end, clusterEnd)
                // The last cluster of an image whose size is not a cluster multiple counts as whole
                // when the range reaches the image end.
                let whole = pos % cs == 0 && (pieceEnd == clusterEnd || pieceEnd == s.header.size)
                try body(&s, pos, Int(pieceEnd - pos), whole)
                pos = pieceEnd
            }
            if s.l2Cache.count > s.l2Cache.capacity {
                try s.flushMetadata(file: file, dataFile: dataFile)
                s.l2Cache.trimToCapacity()
                s.refcountCache.trimToCapacity()
            }
        }
    }

    /// Replaces the L2 entry of the whole cluster at `pos`, releasing what the old one held.
    func updateWholeCluster(_ s: inout QCow2State, at pos: UInt64, _ makeEntry: (L2Entry) -> L2Entry) throws {
        let g = s.geometry
        let l1Index = g.l1Index(pos)
        guard l1Index < s.l1.count else { return }
        let l1Entry = L1Entry(raw: s.l1[l1Index])
        // Nothing to change where no table exists and the new entry would be empty.
        if l1Entry.l2Offset == 0 && makeEntry(L2Entry(raw: 0)) == L2Entry(raw: 0) { return }
        let l2Offset = try s.l2TableForWrite(l1Index, file: file)
        var table = try s.l2Table(at: l2Offset, file: file)
        let index = g.l2Index(pos)
        let old = s.entry(table, index)
        let new = makeEntry(old)
        guard new != old else { return }
        setEntry(&table, index, new, g)
        s.l2Cache.update(l2Offset, table)
        let keptHost = !old.isCompressed && new.hostOffset == old.hostOffset && old.hostOffset != 0
        if !keptHost { s.releaseLater(old) }
    }

    /// Writes zero bytes through the normal write path (inside the lock).
    func writeZeroBytes(_ s: inout QCow2State, at pos: UInt64, count: Int) throws {
        let zeros = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            done += try writeChunk(&s, zeros, from: done, count: count - done, at: pos + UInt64(done))
        }
    }
}

extension L2Entry {
    func withZeroFlag(_ on: Bool) -> L2Entry {
        on ? L2Entry(raw: raw | L2Entry.zeroFlag, bitmap: bitmap) : self
    }
}
