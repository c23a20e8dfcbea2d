import BlockIO
import QCow2Format

extension QCow2Image {
    /// Changes the guest size. Growing enlarges the L1 table (new table written and flushed, then
    /// one 12-byte header update, then the old table freed) and optionally preallocates the new
    /// range; shrinking (`allowShrink`) drops clusters past the new end. v2 images with snapshots
    /// cannot be resized, as in QEMU.
    public func resize(
        to newSize: UInt64, preallocation: QCow2CreateOptions.Preallocation = .off, allowShrink: Bool = true
    ) throws {
        guard isWritable else { throw QCow2Error.unsupported("\(filename): image is opened read-only") }
        let size = (newSize + 511) / 512 * 512
        try state.withLock { s in
            if s.header.version < 3 && !s.snapshots.isEmpty {
                throw QCow2Error.unsupported("Can't resize a v2 image which has snapshots")
            }
            guard size <= s.geometry.maxVirtualSize else {
                throw QCow2Error.invalid(
                    field: "size",
                    reason: "The image size is too large for file format 'qcow2' (try using a larger cluster size)")
            }
            let oldSize = s.header.size
            if size != oldSize { try s.refuseResizeWithBitmaps(file: file) }
            try s.flushMetadata(file: file, dataFile: dataFile)
            if size < oldSize {
                guard allowShrink else {
                    throw QCow2Error.invalid(
                        field: "size", reason: "Use the --shrink option to perform a shrink operation.")
                }
                try shrink(&s, from: oldSize, to: size)
            }
            let needed = Int(s.geometry.l1EntriesNeeded(size: size))
            if needed > s.l1.count {
                try s.growL1(to: needed, file: file)
            }
            s.header.size = size
            var w = ByteWriter()
            w.uint64(size)
            try file.write(w.bytes, at: UInt64(QCow2Header.FieldOffset.size))
            try file.flush()
            if size > oldSize && preallocation != .off {
                try preallocate(&s, from: oldSize, to: size, mode: preallocation)
                try s.flushMetadata(file: file, dataFile: dataFile)
            }
        }
    }

    /// Drops every cluster wholly past the new end: their entries are cleared, L2 tables of L1
    /// entries past the end are released (QEMU keeps l1_size and zeroes the tail).
    func shrink(_ s: inout QCow2State, from oldSize: UInt64, to size: UInt64) throws {
        let g = s.geometry
        let cs = UInt64(g.clusterSize)
        var pos = (size + cs - 1) / cs * cs
        while pos < oldSize {
            let l1Index = g.l1Index(pos)
            let l1End = (UInt64(l1Index) + 1) * g.bytesPerL1Entry
            let l1Entry = L1Entry(raw: s.l1[l1Index])
            if l1Entry.l2Offset != 0 {
                if pos % g.bytesPerL1Entry == 0 {
                    // The whole table goes: release its clusters, then the table itself.
                    // Data refcounts count every L1 path, so a table shared with a snapshot
                    // still drops one reference from each cluster it holds.
                    let table = try s.l2Table(at: l1Entry.l2Offset, file: file)
                    for i in 0..<g.l2Entries { s.releaseLater(s.entry(table, i)) }
                    s.l1[l1Index] = 0
                    s.l1DirtyIndices.insert(l1Index)
                    s.releaseClusterLater(l1Entry.l2Offset)
                } else {
                    var p = pos
                    while p < min(l1End, oldSize) {
                        try updateWholeCluster(&s, at: p) { _ in L2Entry(raw: 0) }
                        p += cs
                    }
                }
            }
            pos = l1End
        }
        try s.flushMetadata(file: file, dataFile: dataFile)
    }

    /// Preallocates [from, to): every cluster gets a host cluster (metadata), space is reserved
    /// (falloc) or written with zeros (full).
    func preallocate(
        _ s: inout QCow2State, from: UInt64, to: UInt64, mode: QCow2CreateOptions.Preallocation
    ) throws {
        let g = s.geometry
        let cs = UInt64(g.clusterSize)
        let external = s.header.hasExternalDataFile
        if (mode == .falloc || mode == .full) && !external {
            let first = try s.lookup(from / cs * cs, maxLength: cs, file: file).0
            if case .unallocated(nil) = first {
                try preallocateData(&s, from: from, to: to, mode: mode)
                return
            }
        }
        var pos = from / cs * cs
        var lastEnd: UInt64 = 0
        while pos < to {
            let l1Index = g.l1Index(pos)
            let l2Offset = try s.l2TableForWrite(l1Index, file: file)
            var table = try s.l2Table(at: l2Offset, file: file)
            var index = g.l2Index(pos)
            var count = 0
            while index + count < g.l2Entries && pos + UInt64(count) * cs < to { count += 1 }
            let host = try external ? pos : s.allocateClusters(count, file: file)
            for i in 0..<count {
                let old = s.entry(table, index)
                if old.hostOffset == 0 && !old.isCompressed {
                    setEntry(&table, index, L2Entry(raw: (host + UInt64(i) * cs) | L2Entry.copiedFlag), g)
                }
                index += 1
            }
            s.l2Cache.update(l2Offset, table)
            lastEnd = max(lastEnd, host + UInt64(count) * cs)
            if mode == .falloc || mode == .full {
                try (dataFile ?? file).preallocate(offset: host, count: UInt64(count) * cs)
            }
            pos += UInt64(count) * cs
        }
        if try !external && lastEnd > file.length() {
            try file.setLength(lastEnd)
        }
    }
}

extension QCow2Image {
    /// `preallocation=falloc|full` laid out as QEMU's `qcow2_co_truncate` does: new self-covering
    /// refcount structures at the end of the used clusters (sized for the data plus its L2
    /// tables, the old table freed), then the data clusters in one run after them, the file
    /// extended over that run, and last the L2 entries (tables first-fit, so the first one takes
    /// the old refcount table's cluster). Entries keep an empty subcluster bitmap, as QEMU's.
    func preallocateData(
        _ s: inout QCow2State, from: UInt64, to: UInt64, mode: QCow2CreateOptions.Preallocation
    ) throws {
        let g = s.geometry
        let cs = UInt64(g.clusterSize)
        try s.flushMetadata(file: file, dataFile: dataFile)
        // qcow2_get_last_cluster: the file ends after the last referenced cluster.
        var usedEnd = (try file.length() + cs - 1) / cs
        var index = usedEnd
        while index > 0 {
            index -= 1
            if try s.refcount(ofCluster: index, file: file) != 0 {
                usedEnd = index + 1
                break
            }
        }
        let firstGuest = from / cs
        let dataClusters = (to + cs - 1) / cs - firstGuest
        guard dataClusters > 0 else { return }
        let l2Tables = (dataClusters + UInt64(g.l2Entries) - 1) / UInt64(g.l2Entries) + 1
        let dataStart = try s.refcountArea(
            startCluster: usedEnd, additionalClusters: dataClusters + l2Tables, file: file)
        for cluster in dataStart..<(dataStart + dataClusters) {
            try s.setRefcount(ofCluster: cluster, to: 1, file: file)
        }
        let dataEnd = (dataStart + dataClusters) * cs
        s.fileLength = max(s.fileLength, dataEnd)
        let length = try file.length()
        if dataEnd > length { try file.preallocate(offset: length, count: dataEnd - length) }
        var guest = firstGuest
        var host = dataStart * cs
        while guest < firstGuest + dataClusters {
            let l1Index = g.l1Index(guest * cs)
            let l2Offset = try s.l2TableForWrite(l1Index, file: file)
            var table = try s.l2Table(at: l2Offset, file: file)
            var l2Index = g.l2Index(guest * cs)
            while l2Index < g.l2Entries && guest < firstGuest + dataClusters {
                setEntry(&table, l2Index, L2Entry(raw: host | L2Entry.copiedFlag), g)
                l2Index += 1
                guest += 1
                host += cs
            }
            s.l2Cache.update(l2Offset, table)
        }
    }
}

extension QCow2State {
    /// QEMU's `qcow2_refcount_area`: from `startCluster` (nothing in use at or past it), the
    /// refcount blocks still missing to cover everything up to `additionalClusters` past the new
    /// structures, then a new refcount table holding all blocks (50 % spare entries unless
    /// `exact`; `newBlock` entered at its index); the structures count themselves, the header is
    /// switched, and the old table is freed at once (its clusters are reusable, as QEMU's
    /// `free_cluster_index` moves back). Returns the first cluster after the new table.
    mutating func refcountArea(
        startCluster: UInt64, additionalClusters: UInt64, exact: Bool = true,
        newBlock: (index: UInt64, offset: UInt64)? = nil, file: any BlockDevice
    ) throws -> UInt64 {
        let cs = UInt64(geometry.clusterSize)
        let perBlock = UInt64(geometry.refcountBlockEntries)
        let perTableCluster = cs / 8
        // qcow2_refcount_metadata_size: blocks for the clusters, the blocks and the table.
        var clusters = startCluster + additionalClusters
        var (blocks, tableClusters, total, last): (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var generous = !exact
        repeat {
            last = total
            blocks = (clusters + tableClusters + blocks + perBlock - 1) / perBlock
            tableClusters = (blocks + perTableCluster - 1) / perTableCluster
            total = clusters + blocks + tableClusters
            if total == last && generous {
                clusters += (tableClusters + 1) / 2
                total = 0
                generous = false
            }
        } while total != last
        let wanted = exact ? blocks : blocks + (blocks + 1) / 2
        let tableEntries = (wanted + perTableCluster - 1) / perTableCluster * perTableCluster
        guard tableEntries * 8 <= UInt64(QCow2Geometry.maxRefcountTableBytes) else {
            throw QCow2Error.tooLarge(
                field: "refcount table", value: tableEntries * 8, limit: UInt64(QCow2Geometry.maxRefcountTableBytes))
        }
        tableClusters = tableEntries / perTableCluster
        var table = [UInt64](repeating: 0, count: Int(tableEntries))
        for (i, entry) in refcountTable.prefix(Int(tableEntries)).enumerated() { table[i] = entry }
        if let newBlock, newBlock.index < blocks { table[Int(newBlock.index)] = newBlock.offset }
        let areaIndex = startCluster / perBlock
        let missing = (areaIndex..<max(areaIndex, blocks)).filter { table[Int($0)] == 0 }.count
        let tableStart = startCluster + UInt64(missing)
        let end = tableStart + tableClusters
        var nextBlock = startCluster
        var newBlocks: [UInt64: [UInt8]] = [:]
        for i in areaIndex..<max(areaIndex, blocks) {
            let firstCovered = i * perBlock
            let lower = max(firstCovered, startCluster)
            let range = lower..<max(lower, min(firstCovered + perBlock, end))
            if table[Int(i)] != 0 {
                // An existing block: count the area's clusters in it through the cache.
                refcountTable = table
                for cluster in range { try setRefcount(ofCluster: cluster, to: 1, file: file) }
                continue
            }
            var block = [UInt8](repeating: 0, count: Int(cs))
            for cluster in range {
                RefcountBlockCodec.set(
                    &block, index: Int(cluster - firstCovered), order: geometry.refcountOrder, value: 1)
            }
            table[Int(i)] = nextBlock * cs
            newBlocks[nextBlock * cs] = block
            nextBlock += 1
        }
        for (offset, block) in newBlocks.sorted(by: { $0.key < $1.key }) {
            try file.write(block, at: offset)
            refcountCache.put(offset, block, dirty: false)
        }
        let oldOffset = header.refcountTableOffset
        let oldClusters = UInt64(header.refcountTableClusters)
        try switchRefcountTable(to: table, atCluster: tableStart, clusters: tableClusters, file: file)
        fileLength = max(fileLength, end * cs)
        for cluster in (oldOffset / cs)..<(oldOffset / cs + oldClusters) {
            try adjustRefcount(ofCluster: cluster, by: -1, file: file)
        }
        return end
    }

    /// Replaces the active L1 with one of `count` entries: written and flushed at a new place,
    /// then `l1_size` and `l1_table_offset` switched in one 12-byte header write, then the old
    /// table released. The caller has flushed dirty metadata first.
    mutating func growL1(to count: Int, file: any BlockDevice) throws {
        guard count <= QCow2Geometry.maxL1Entries else {
            throw QCow2Error.tooLarge(field: "l1_size", value: UInt64(count), limit: UInt64(QCow2Geometry.maxL1Entries))
        }
        let bytes = UInt64(count) * 8
        let clusters = Int(geometry.clustersFor(bytes: bytes))
        let offset = try allocateClusters(clusters, file: file)
        let table = l1 + [UInt64](repeating: 0, count: count - l1.count)
        // Refcounts of the new table must be durable before the header points at it.
        try writeDirtyRefcountBlocks(file: file)
        // Only the entries are written, as QEMU does (the file may end right after them).
        try file.writeTable(table, at: offset)
        try file.flush()
        let oldOffset = header.l1TableOffset
        let oldClusters = geometry.clustersFor(bytes: UInt64(l1.count) * 8)
        var w = ByteWriter()
        w.uint32(UInt32(count))
        w.uint64(offset)
        try file.write(w.bytes, at: UInt64(QCow2Header.FieldOffset.l1Size))
        try file.flush()
        header.l1Size = UInt32(count)
        header.l1TableOffset = offset
        l1 = table
        l1DirtyIndices.removeAll()
        if oldOffset != 0 {
            for i in 0..<oldClusters { releaseClusterLater(oldOffset + i * UInt64(geometry.clusterSize)) }
        }
    }
}
