import BlockIO
import Codecs
import QCow2Format

extension QCow2Image {
    /// Stores one already-compressed guest cluster (QEMU's compressed write): the target cluster
    /// must be unallocated; the stream is packed after the previous compressed one, spilling into
    /// the next host cluster only when that one is allocated contiguously.
    /// - Parameters:
    ///   - stream: the compressed bytes (shorter than a cluster).
    ///   - offset: guest offset of the cluster (cluster aligned).
    public func writeCompressedCluster(_ stream: [UInt8], at offset: UInt64) throws {
        try checkWritable(offset: offset, count: 1)
        try state.withLock { s in
            let g = s.geometry
            guard !s.header.hasExternalDataFile else {
                throw QCow2Error.unsupported("compressed writes are not supported with an external data file")
            }
            guard g.isClusterAligned(offset), stream.count < g.clusterSize, !stream.isEmpty else {
                throw QCow2Error.invalid(
                    field: "compressed write", reason: "offset \(offset) or length \(stream.count)")
            }
            let l2Offset = try s.l2TableForWrite(g.l1Index(offset), file: file)
            var table = try s.l2Table(at: l2Offset, file: file)
            let index = g.l2Index(offset)
            let old = s.entry(table, index)
            let host = try s.allocateCompressedBytes(stream.count, file: file)
            try file.write(stream, at: host)
            let raw = CompressedDescriptor.encode(
                offset: host, length: stream.count, clusterBits: UInt32(g.clusterBits))
            setEntry(&table, index, L2Entry(raw: raw, bitmap: 0), g)
            s.l2Cache.update(l2Offset, table)
            s.releaseLater(old)
            if s.l2Cache.count > s.l2Cache.capacity || s.refcountCache.count > s.refcountCache.capacity {
                try s.flushMetadata(file: file, dataFile: dataFile)
                s.l2Cache.trimToCapacity()
                s.refcountCache.trimToCapacity()
            }
        }
    }

    /// Compresses one full guest cluster with this image's codec; nil when it does not shrink
    /// below a cluster (the caller then writes it plainly, as QEMU does).
    public func compressCluster(_ data: [UInt8], range: Range<Int>, using compressor: ClusterCompressor) throws
        -> [UInt8]?
    {
        try compressor.compress(data, range: range)
    }

    /// A compressor for this image's compression type and cluster size (one per thread).
    public func makeCompressor() throws -> ClusterCompressor {
        try ClusterCompressor(type: codecType, clusterSize: geometry.clusterSize)
    }
}

extension QCow2State {
    /// QEMU's byte allocator for compressed data: continues in the current host cluster when the
    /// stream fits, or when the next cluster can be allocated right after it; otherwise starts a
    /// new cluster. Each host cluster touched gets one more reference.
    mutating func allocateCompressedBytes(_ count: Int, file: any BlockDevice) throws -> UInt64 {
        let cs = UInt64(geometry.clusterSize)
        let limit = CompressedDescriptor.offsetLimit(clusterBits: UInt32(geometry.clusterBits))
        var cursor = compressedWriteCursor
        if cursor != 0 && cursor % cs != 0 {
            let clusterEnd = (cursor / cs + 1) * cs
            let end = cursor + UInt64(count)
            if end <= clusterEnd {
                try adjustRefcount(ofCluster: cursor / cs, by: 1, file: file)
                compressedWriteCursor = end
                return cursor
            }
            // Spill over only into a freshly allocated cluster directly after this one.
            let next = try allocateClusters(1, file: file)
            if next == clusterEnd {
                try adjustRefcount(ofCluster: cursor / cs, by: 1, file: file)
                compressedWriteCursor = end
                return cursor
            }
            cursor = next
        } else {
            cursor = try allocateClusters(1, file: file)
        }
        guard cursor + UInt64(count) <= limit else {
            throw QCow2Error.unsupported("compressed data would lie past the offset a descriptor can hold")
        }
        compressedWriteCursor = cursor + UInt64(count)
        return cursor
    }
}
