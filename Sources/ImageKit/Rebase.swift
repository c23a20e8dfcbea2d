import BlockIO
import QCow2
import QCow2Format

/// `qemu-img rebase [-u] -b backing [-F fmt]`.
public enum ImageRebase {
    /// Changes the backing file of the qcow2 image at `path`.
    ///
    /// Safe mode (default): every cluster the image does not allocate itself is compared between
    /// the old and the new backing view; where they differ the old content is written into the
    /// image, so the guest sees the same bytes afterwards. Then the header is rewritten.
    /// Unsafe mode (`-u`): only the backing name and format are rewritten.
    /// - Parameters:
    ///   - backingFile: the new backing file name as stored ("" removes it); relative names are
    ///     relative to the image's directory, as QEMU resolves them.
    ///   - backingFormat: `-F`; nil probes (qcow2 or refused, per the opener's policy) in safe mode
    ///     and stores no format in unsafe mode.
    public static func rebase(
        _ path: String, backingFile: String, backingFormat: String?, unsafe: Bool,
        open: OpenOptions = OpenOptions(), progress: ((Double) -> Void)? = nil
    ) throws {
        var format = backingFormat
        if !unsafe {
            var openOptions = open
            openOptions.writable = true
            let disk = try ImageOpener.open(path, options: openOptions)
            guard let image = disk as? QCow2Image else {
                throw ImageError(.unsupported, "Could not rebase '\(path)': not a qcow2 image")
            }
            var newBacking: (any VirtualDisk)?
            if !backingFile.isEmpty {
                let resolved = try ImageOpener.resolveBacking(backingFile, overlay: path)
                var backingOptions = open
                backingOptions.writable = false
                backingOptions.format = backingFormat
                backingOptions.cache = QCow2CacheOptions()
                backingOptions.displayName = nil
                newBacking = try ImageOpener.open(resolved, options: backingOptions)
                format = format ?? newBacking?.formatName
            }
            do {
                try copyDifferences(image, oldBacking: image.backingDisk, newBacking: newBacking, progress: progress)
            } catch let error as OperationCancelled {
                // Clusters copied so far read as they did through the old backing file, which stays
                // in the header: the image is unchanged for its guest. Keep them, durably.
                try image.flush()
                throw error
            }
            try image.flush()
        }
        try setBacking(path, backingFile: backingFile, backingFormat: backingFile.isEmpty ? nil : format)
    }

    /// Writes into `image` every unallocated cluster whose old backing content differs from the new.
    static func copyDifferences(
        _ image: QCow2Image, oldBacking: (any VirtualDisk)?, newBacking: (any VirtualDisk)?,
        progress: ((Double) -> Void)?
    ) throws {
        let size = image.virtualSize
        let cs = UInt64(image.geometry.clusterSize)
        var oldBytes = [UInt8](repeating: 0, count: Int(cs))
        var newBytes = [UInt8](repeating: 0, count: Int(cs))
        var offset: UInt64 = 0
        var poll = CancellationPoll(every: 64)
        while offset < size {
            try Cancellation.check()
            let status = try image.blockStatus(at: offset, maxLength: size - offset)
            let length = max(1, min(status.length, size - offset))
            guard case .unallocated = status.kind else {
                offset += length
                continue
            }
            let end = offset + length
            var pos = offset
            while pos < end {
                try poll.check()
                let n = Int(min(cs - pos % cs, end - pos))
                try read(oldBacking, into: &oldBytes, count: n, at: pos)
                try read(newBacking, into: &newBytes, count: n, at: pos)
                if oldBytes[0..<n] != newBytes[0..<n] {
                    try image.write(oldBytes, range: 0..<n, at: pos)
                }
                pos += UInt64(n)
            }
            offset = end
            progress?(Double(offset) / Double(max(size, 1)))
        }
    }

    /// Reads `count` bytes of a backing view; zeros past its end or without one.
    static func read(_ disk: (any VirtualDisk)?, into buffer: inout [UInt8], count: Int, at offset: UInt64) throws {
        guard let disk, offset < disk.virtualSize else {
            for i in 0..<count { buffer[i] = 0 }
            return
        }
        let inside = Int(min(UInt64(count), disk.virtualSize - offset))
        try disk.read(into: &buffer, range: 0..<inside, at: offset)
        for i in inside..<count { buffer[i] = 0 }
    }

    /// Rewrites cluster 0 with the new backing name and format in one write (as QEMU's
    /// `qcow2_update_header`), then flushes.
    /// - Throws: `ImageError(.unsupported)` when the names do not fit in cluster 0.
    public static func setBacking(_ path: String, backingFile: String, backingFormat: String?) throws {
        let device: BlockFile
        do {
            device = try BlockFile(path: path, writable: true)
        } catch {
            throw ImageError.open(path, error)
        }
        var (header, extensions) = try QCow2Image.readHeader(from: device)
        guard backingFile.utf8.count <= HeaderExtensions.maxBackingFileName else {
            throw ImageError(.usage, "Could not change the backing file to '\(backingFile)': File name too long")
        }
        extensions.backingFile = backingFile.isEmpty ? nil : backingFile
        extensions.backingFormat = backingFile.isEmpty ? nil : backingFormat
        guard var cluster0 = extensions.encodeCluster0(header: &header) else {
            throw ImageError(
                .unsupported, "Could not change the backing file to '\(backingFile)': No space left on device")
        }
        // The whole cluster, so the tail of a longer old name does not linger.
        cluster0 += [UInt8](repeating: 0, count: header.clusterSize - cluster0.count)
        try device.write(cluster0, at: 0)
        try device.flush()
    }
}
