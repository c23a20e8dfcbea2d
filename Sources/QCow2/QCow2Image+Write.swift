import BlockIO
import QCow2Format

extension QCow2Image {
    /// Writes guest bytes. Clusters that are not exclusively ours (unallocated, zero, compressed,
    /// shared with a snapshot) are copied on write into newly allocated clusters; the metadata that
    /// points at them reaches the disk at the next `flush()` in crash-safe order.
    public func write(_ buffer: [UInt8], range: Range<Int>, at offset: UInt64) throws {
        try checkWritable(offset: offset, count: UInt64(range.count))
        try state.withLock { s in
            var done = 0
            while done < range.count {
                done += try writeChunk(
                    &s, buffer, from: range.lowerBound + done, count: range.count - done,
                    at: offset + UInt64(done))
            }
            if s.l2Cache.count > s.l2Cache.capacity || s.refcountCache.count > s.refcountCache.capacity {
                try s.flushMetadata(file: file, dataFile: dataFile)
                s.l2Cache.trimToCapacity()
                s.refcountCache.trimToCapacity()
            }
        }
    }

    func checkWritable(offset: UInt64, count: UInt64) throws {
        guard isWritable else { throw QCow2Error.unsupported("\(filename): image is opened read-only") }
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= virtualSize else {
            throw QCow2Error.invalid(
                field: "write", reason: "offset \(offset) + \(count) is past the end of the image (\(virtualSize))")
        }
        try state.withLock { s in
            if s.markedCorrupt {
                throw QCow2Error.unsupported("\(filename): image was marked corrupt; further writes refused")
            }
            try s.guardBitmaps(file: file)
        }
    }

    /// Writes as much as fits in one L2 table's range (a run of whole new clusters at once, or a
    /// single cluster otherwise). Returns the bytes written.
    func writeChunk(_ s: inout QCow2State, _ buffer: [UInt8], from start: Int, count: Int, at pos: UInt64) throws
        -> Int
    {
        let g = s.geometry
        let cs = g.clusterSize
        let inCluster = g.offsetInCluster(pos)
        let l1Index = g.l1Index(pos)
        var l2Index = g.l2Index(pos)
        let l2Offset = try s.l2TableForWrite(l1Index, file: file)
        var table = try s.l2Table(at: l2Offset, file: file)
        let external = s.header.hasExternalDataFile

        // Whole clusters that need new space: allocate them together and write them in one request.
        if inCluster == 0 && count >= cs && !external {
            var k = 0
            while k < count / cs && l2Index + k < g.l2Entries && !canWriteInPlace(s.entry(table, l2Index + k), s) {
                k += 1
            }
            if k > 0 {
                let before = s.fileLength
                let host = try s.allocateClusters(k, file: file)
                let end = host + UInt64(k * cs)
                if s.reservesFileGrowth && end > before {
                    try file.preallocate(offset: max(host, before), count: end - max(host, before))
                }
                try file.write(buffer, range: start..<(start + k * cs), at: host)
                for i in 0..<k {
                    let old = s.entry(table, l2Index + i)
                    setEntry(
                        &table, l2Index + i,
                        L2Entry(
                            raw: (host + UInt64(i * cs)) | L2Entry.copiedFlag,
                            bitmap: g.extendedL2 ? 0xffff_ffff : 0), g)
                    s.releaseLater(old)
                }
                s.l2Cache.update(l2Offset, table)
                return k * cs
            }
        }
        // One cluster, possibly partial.
        let n = min(count, cs - inCluster)
        let old = s.entry(table, l2Index)
        let clusterStart = pos - UInt64(inCluster)
        if canWriteInPlace(old, s) {
            try checkInPlace(old, &s, clusterStart: clusterStart)
            var entry = old
            var head = inCluster
            var tail = inCluster + n
            if g.extendedL2 {
                // Subclusters we touch that held no data get their untouched bytes from below.
                let sub = g.subclusterSize
                head = inCluster / sub * sub
                tail = (inCluster + n + sub - 1) / sub * sub
                var merged = try oldContent(&s, old, clusterStart: clusterStart, range: head..<tail)
                merged.replaceSubrange((inCluster - head)..<(inCluster - head + n), with: buffer[start..<(start + n)])
                try (dataFile ?? file).write(merged, at: old.hostOffset + UInt64(head))
                let touched = subclusterMask(head..<tail, sub)
                entry.bitmap = (entry.bitmap | UInt64(touched)) & ~(UInt64(touched) << 32)
            } else {
                try (dataFile ?? file).write(buffer, range: start..<(start + n), at: old.hostOffset + UInt64(inCluster))
            }
            if entry != old {
                setEntry(&table, l2Index, entry, g)
                s.l2Cache.update(l2Offset, table)
            }
            return n
        }
        // Copy on write: the cluster as this layer shows it, with the new bytes over it.
        var merged: [UInt8]
        if n == cs {
            merged = Array(buffer[start..<(start + n)])
        } else {
            merged = try oldContent(&s, old, clusterStart: clusterStart, range: 0..<cs)
            merged.replaceSubrange(inCluster..<(inCluster + n), with: buffer[start..<(start + n)])
        }
        let host: UInt64
        if external {
            host = clusterStart
            try (dataFile ?? file).write(merged, at: host)
        } else if old.clusterType(extendedL2: g.extendedL2, externalDataFile: false) == .zeroAllocated && old.isCopied {
            try checkInPlace(old, &s, clusterStart: clusterStart)
            host = old.hostOffset
            try file.write(merged, at: host)
        } else {
            host = try s.allocateClusters(1, file: file)
            try file.write(merged, at: host)
            s.releaseLater(old)
        }
        var bitmap: UInt64 = 0
        if g.extendedL2 {
            let sub = g.subclusterSize
            let touched = UInt64(subclusterMask((inCluster / sub * sub)..<((inCluster + n + sub - 1) / sub * sub), sub))
            let wasNormal = old.clusterType(extendedL2: true, externalDataFile: external) == .normal
            let wasCompressed = old.isCompressed
            let keptAlloc = wasCompressed ? 0xffff_ffff : (wasNormal ? UInt64(old.allocatedMask) : 0)
            let keptZero = wasCompressed ? 0 : UInt64(old.zeroMask)
            bitmap = (keptAlloc | touched) | ((keptZero & ~touched & ~keptAlloc) << 32)
        }
        setEntry(&table, l2Index, L2Entry(raw: host | L2Entry.copiedFlag, bitmap: bitmap), g)
        l2Index += 1
        s.l2Cache.update(l2Offset, table)
        return n
    }

    /// In place only into a cluster we own alone (COPIED, or any allocation in a data file).
    func canWriteInPlace(_ e: L2Entry, _ s: QCow2State) -> Bool {
        let external = s.header.hasExternalDataFile
        switch e.clusterType(extendedL2: s.geometry.extendedL2, externalDataFile: external) {
        case .normal: return e.isCopied || external
        default: return false
        }
    }

    /// Before writing into the cluster an entry already points at: QEMU's `handle_copied` alignment
    /// check, the data-file identity mapping, and (stricter) a start inside the image file, so a
    /// hostile entry cannot aim a write far past the end. A failure marks the image corrupt.
    func checkInPlace(_ e: L2Entry, _ s: inout QCow2State, clusterStart: UInt64) throws {
        let host = e.hostOffset
        let reason: String
        if !s.geometry.isClusterAligned(host) {
            reason =
                "Preallocated zero/normal cluster offset 0x\(hex(host)) unaligned (guest offset: "
                + "0x\(hex(clusterStart)))"
        } else if s.header.hasExternalDataFile && host != clusterStart {
            reason =
                "External data file host cluster offset 0x\(hex(host)) does not match guest cluster offset: "
                + "0x\(hex(clusterStart))"
        } else if !s.header.hasExternalDataFile && host >= s.fileLength {
            reason =
                "Cluster offset 0x\(hex(host)) lies past the end of the file (guest offset: "
                + "0x\(hex(clusterStart)))"
        } else {
            return
        }
        s.markedCorrupt = true
        throw QCow2Error.corrupt(offset: host, reason: reason)
    }

    /// Bytes `range` of the guest cluster at `clusterStart` as this layer shows them.
    func oldContent(_ s: inout QCow2State, _ e: L2Entry, clusterStart: UInt64, range: Range<Int>) throws -> [UInt8] {
        let g = s.geometry
        var out = [UInt8](repeating: 0, count: range.count)
        let external = s.header.hasExternalDataFile
        if e.isCompressed {
            let cluster = try decompress(
                CompressedDescriptor(entry: e.raw, clusterBits: UInt32(g.clusterBits)), fileLength: s.fileLength)
            return Array(cluster[range])
        }
        let sub = g.subclusterSize
        var i = range.lowerBound
        while i < range.upperBound {
            let end = min(range.upperBound, (i / sub + 1) * sub)
            let part = (i - range.lowerBound)..<(end - range.lowerBound)
            switch e.subclusterType(i / sub, extendedL2: g.extendedL2, externalDataFile: external) {
            case .normal:
                try (dataFile ?? file).read(into: &out, range: part, at: e.hostOffset + UInt64(i))
            case .unallocatedPlain, .unallocatedAllocated:
                try readBacking(into: &out, range: part, at: clusterStart + UInt64(i))
            case .zeroPlain, .zeroAllocated, .compressed:
                break
            case .invalid:
                throw QCow2Error.corrupt(offset: clusterStart, reason: "Invalid subcluster bitmap 0x\(hex(e.bitmap))")
            }
            i = end
        }
        return out
    }

    /// Stores an entry (and its bitmap with extended L2) into a loaded table.
    func setEntry(_ table: inout [UInt64], _ index: Int, _ e: L2Entry, _ g: QCow2Geometry) {
        if g.extendedL2 {
            table[index * 2] = e.raw
            table[index * 2 + 1] = e.bitmap
        } else {
            table[index] = e.raw
        }
    }

    /// Bit i set for every subcluster i that `range` (subcluster aligned) covers.
    func subclusterMask(_ range: Range<Int>, _ sub: Int) -> UInt32 {
        var mask: UInt32 = 0
        for i in (range.lowerBound / sub)..<(range.upperBound / sub) { mask |= 1 << UInt32(i) }
        return mask
    }
}

extension QCow2State {
    /// The L2 table for `l1Index`, ready to change: allocated if missing, copied if shared.
    mutating func l2TableForWrite(_ l1Index: Int, file: any BlockDevice) throws -> UInt64 {
        guard l1Index < l1.count else {
            throw QCow2Error.invalid(field: "l1_size", reason: "L1 index \(l1Index) beyond the table (\(l1.count))")
        }
        let e = L1Entry(raw: l1[l1Index])
        if e.l2Offset != 0 && e.isCopied { return e.l2Offset }
        var table = [UInt64](repeating: 0, count: geometry.clusterSize / 8)
        if e.l2Offset != 0 {
            table = try l2Table(at: e.l2Offset, file: file)
        }
        let offset = try allocateClusters(1, file: file)
        if e.l2Offset != 0 { releaseClusterLater(e.l2Offset) }
        l2Cache.put(offset, table, dirty: true)
        l1[l1Index] = offset | L1Entry.copiedFlag
        l1DirtyIndices.insert(l1Index)
        return offset
    }
}
