import BlockIO
import QCow2Format

extension QCow2State {
    /// Writes cached metadata in QEMU's dependency order, each stage made durable before the next
    /// can point at it: refcount blocks (and guest data) → L2 tables → L1 → deferred refcount
    /// decrements. A crash between any two stages leaves at most leaked clusters.
    mutating func flushMetadata(file: any BlockDevice, dataFile: (any BlockDevice)?) throws {
        let dirtyL2 = l2Cache.dirtyOffsets
        guard refcountCache.hasDirty || !dirtyL2.isEmpty || !l1DirtyIndices.isEmpty || !pendingDecrements.isEmpty
        else { return }
        try writeDirtyRefcountBlocks(file: file)
        try dataFile?.flush()
        try file.flush()
        if !dirtyL2.isEmpty {
            for offset in dirtyL2 {
                guard let table = l2Cache.peek(offset) else { continue }
                try file.writeTable(table, at: offset)
                l2Cache.markClean(offset)
            }
            try file.flush()
        }
        if !l1DirtyIndices.isEmpty {
            try writeL1Entries(file: file)
            try file.flush()
        }
        try applyPendingDecrements(file: file)
    }

    /// Writes the dirty active L1 entries in 512-byte groups (64 entries), the way QEMU updates
    /// single entries without rewriting the whole table.
    mutating func writeL1Entries(file: any BlockDevice) throws {
        let groups = Set(l1DirtyIndices.map { $0 / 64 }).sorted()
        for group in groups {
            let first = group * 64
            let last = min(l1.count, first + 64)
            guard first < last else { continue }
            try file.writeTable(Array(l1[first..<last]), at: header.l1TableOffset + UInt64(first) * 8)
        }
        l1DirtyIndices.removeAll()
    }

    /// Applies refcount decrements whose references are gone from durable tables, then makes them
    /// durable; clusters reaching 0 become free (and their space is returned to the host).
    mutating func applyPendingDecrements(file: any BlockDevice) throws {
        guard !pendingDecrements.isEmpty else { return }
        var freed: [UInt64] = []
        for (cluster, count) in pendingDecrements.sorted(by: { $0.key < $1.key }) {
            try adjustRefcount(ofCluster: cluster, by: -Int64(count), file: file)
            if try refcount(ofCluster: cluster, file: file) == 0 { freed.append(cluster) }
        }
        pendingDecrements.removeAll()
        try writeDirtyRefcountBlocks(file: file)
        try file.flush()
        let cs = UInt64(geometry.clusterSize)
        for cluster in freed where cluster * cs < fileLength {
            try? file.discard(offset: cluster * cs, count: cs)
        }
    }
}

extension QCow2Image {
    /// Makes every completed write durable: metadata in crash-safe order, then the data file.
    public func flush() throws {
        guard isWritable else { return }
        try state.withLock { s in
            try s.flushMetadata(file: file, dataFile: dataFile)
        }
        try dataFile?.flush()
        try file.flush()
    }

    /// Flushes and, for a clean shutdown, leaves nothing pending. Call before dropping a writable image.
    public func close() throws {
        try flush()
    }
}
