import BlockIO
import Codecs
import QCow2Format

extension QCow2Image {
    /// Reads guest bytes of the active layer; unallocated runs come from the backing disk.
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws {
        try read(into: &buffer, range: range, at: offset, snapshotL1: nil)
    }

    /// Reads guest bytes as they were in an internal snapshot.
    public func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64, snapshot: SnapshotEntry) throws {
        let l1 = try snapshotL1(snapshot)
        try read(into: &buffer, range: range, at: offset, snapshotL1: l1)
    }

    /// Loads a snapshot's L1 table (validated at open).
    public func snapshotL1(_ snapshot: SnapshotEntry) throws -> [UInt64] {
        try file.readTable(at: snapshot.l1TableOffset, count: Int(snapshot.l1Size))
    }

    func read(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64, snapshotL1: [UInt64]?) throws {
        let size = snapshotL1 == nil ? virtualSize : UInt64.max
        var done = 0
        while done < range.count {
            let pos = offset + UInt64(done)
            let want = range.count - done
            let start = range.lowerBound + done
            guard pos < size else {
                for i in start..<range.upperBound { buffer[i] = 0 }
                return
            }
            let (mapping, length) = try state.withLock { s in
                try s.lookup(pos, maxLength: min(UInt64(want), size - pos), l1: snapshotL1, file: file)
            }
            let n = Int(min(length, UInt64(want)))
            let part = start..<(start + n)
            switch mapping {
            case .data(let host):
                try (dataFile ?? file).read(into: &buffer, range: part, at: host)
            case .zero:
                for i in part { buffer[i] = 0 }
            case .unallocated:
                try readBacking(into: &buffer, range: part, at: pos)
            case .compressed(let descriptor, let clusterOffset):
                let cluster = try decompress(descriptor, fileLength: state.withLock { $0.fileLength })
                let from = Int(pos - clusterOffset)
                buffer.replaceSubrange(part, with: cluster[from..<(from + n)])
            }
            done += n
        }
    }

    /// Reads from the backing disk; zeros past its end or without one.
    func readBacking(into buffer: inout [UInt8], range: Range<Int>, at offset: UInt64) throws {
        guard let backing = backingDisk, offset < backing.virtualSize else {
            for i in range { buffer[i] = 0 }
            return
        }
        let inside = Int(min(UInt64(range.count), backing.virtualSize - offset))
        try backing.read(into: &buffer, range: range.lowerBound..<(range.lowerBound + inside), at: offset)
        for i in (range.lowerBound + inside)..<range.upperBound { buffer[i] = 0 }
    }

    /// Decompresses one cluster; the output is exactly one cluster, whatever the input claims.
    func decompress(_ descriptor: CompressedDescriptor, fileLength: UInt64) throws -> [UInt8] {
        guard descriptor.hostOffset < fileLength else {
            throw QCow2Error.corrupt(
                offset: descriptor.hostOffset,
                reason: "compressed cluster at 0x\(hex(descriptor.hostOffset)) lies outside the file")
        }
        let count = Int(min(UInt64(descriptor.byteLength), fileLength - descriptor.hostOffset))
        let input = try file.read(count: count, at: descriptor.hostOffset)
        var output = [UInt8](repeating: 0, count: geometry.clusterSize)
        let box = try decompressors.withLock { pool in
            try pool.popLast() ?? DecompressorBox(ClusterDecompressor(type: codecType))
        }
        defer { decompressors.withLock { $0.append(box) } }
        do {
            try box.decompressor.decompress(input, range: 0..<input.count, into: &output, outputRange: 0..<output.count)
        } catch {
            throw QCow2Error.corrupt(
                offset: descriptor.hostOffset,
                reason: "compressed cluster at 0x\(hex(descriptor.hostOffset)) does not decompress: \(error)")
        }
        return output
    }

    var codecType: CompressionType { compressionType == .zstd ? .zstd : .zlib }

    /// Allocation status for `map`, in this layer only.
    public func blockStatus(at offset: UInt64, maxLength: UInt64) throws -> BlockStatus {
        try blockStatus(at: offset, maxLength: maxLength, l1: nil, size: virtualSize)
    }

    /// Allocation status through the active L1 or a snapshot's. On a metadata-preallocated image,
    /// data runs are split where the host file has holes and those parts flagged (QEMU's
    /// `BDRV_BLOCK_RECURSE` in `qcow2_co_block_status`).
    func blockStatus(at offset: UInt64, maxLength: UInt64, l1: [UInt64]?, size: UInt64) throws -> BlockStatus {
        guard offset < size else {
            return BlockStatus(kind: .unallocated(hostOffset: nil), length: maxLength, file: filename)
        }
        let (mapping, length, preallocated) = try state.withLock { s in
            let (mapping, length) = try s.lookup(offset, maxLength: min(maxLength, size - offset), l1: l1, file: file)
            guard case .data = mapping else { return (mapping, length, false) }
            return (mapping, length, try s.detectMetadataPreallocation(file: file))
        }
        let name = dataFile?.name ?? filename
        switch mapping {
        case .data(let host):
            guard preallocated else { return BlockStatus(kind: .data(hostOffset: host), length: length, file: name) }
            let (hole, run) = try hostStatus(host, length: length)
            return BlockStatus(kind: .data(hostOffset: host), length: run, file: name, hostHole: hole)
        case .zero(let host): return BlockStatus(kind: .zero(hostOffset: host), length: length, file: name)
        case .unallocated(let host):
            return BlockStatus(
                kind: .unallocated(hostOffset: host), length: length, file: host == nil ? filename : name)
        case .compressed: return BlockStatus(kind: .data(hostOffset: nil), length: length, file: filename)
        }
    }

    /// Whether `[host, host+length)` of the data-holding file starts in a hole, and how far that
    /// answer holds, as QEMU's file-posix block status (SEEK_DATA/SEEK_HOLE) answers it: a hole
    /// reaching the end of the file, or a range past it, covers the whole run.
    func hostStatus(_ host: UInt64, length: UInt64) throws -> (hole: Bool, length: UInt64) {
        let device = dataFile ?? file
        let end = try device.length()
        guard host < end else { return (true, length) }
        let inside = min(length, end - host)
        guard let data = try device.nextData(from: host) else { return (true, length) }
        if data > host { return (true, min(data - host, inside)) }
        let hole = try device.nextHole(from: host)
        return (false, max(1, min(hole - host, inside)))
    }
}

extension QCow2State {
    /// QEMU's `qcow2_detect_metadata_preallocation`: the image counts as metadata-preallocated when
    /// the refcounted clusters outnumber the file's allocated clusters by at least a ninth (and 2).
    /// Only host files can tell their allocation; other devices never count.
    mutating func detectMetadataPreallocation(file: any BlockDevice) throws -> Bool {
        if let known = metadataPreallocation { return known }
        var result = false
        if let host = file as? BlockFile {
            let cs = UInt64(geometry.clusterSize)
            let realClusters = try host.allocatedBytes() / cs
            let threshold = max(realClusters * 10 / 9, realClusters + 2)
            let endCluster = (try host.length() + cs - 1) / cs
            var count: UInt64 = 0
            var index: UInt64 = 0
            while index < endCluster && count < threshold {
                if try refcount(ofCluster: index, file: file) != 0 { count += 1 }
                index += 1
            }
            result = count >= threshold
        }
        metadataPreallocation = result
        return result
    }
}

/// A pooled decompressor. `@unchecked Sendable`: a box is used by one thread at a time, the one
/// that popped it from the pool's mutex, and goes back to the pool when done.
final class DecompressorBox: @unchecked Sendable {
    let decompressor: ClusterDecompressor
    init(_ decompressor: ClusterDecompressor) { self.decompressor = decompressor }
}
