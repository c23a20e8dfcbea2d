import BlockIO
import QCow2
import QCow2Format

/// Space and layout figures of one qcow2 file, as `compact` reports them before and after.
public struct CompactFigures: Sendable, Equatable {
    /// Length of the file in bytes.
    public var fileLength: UInt64
    /// Bytes the file occupies on the host.
    public var allocatedBytes: UInt64
    /// Allocated clusters of the active layer (`qemu-img check`'s allocated clusters).
    public var allocatedClusters: UInt64
    /// Of those, clusters not directly after their predecessor (`qemu-img check`'s fragmented).
    public var fragmentedClusters: UInt64
    /// Per-snapshot space: referenced, unique, shared with the active layer, written.
    public var snapshots: [SnapshotSpace.Entry]
    /// What deleting every snapshot would free.
    public var allSnapshotsBytes: UInt64

    /// Fragmented share of the allocated clusters, in percent.
    public var fragmentation: Double {
        allocatedClusters == 0 ? 0 : Double(fragmentedClusters) * 100 / Double(allocatedClusters)
    }

    /// Measures an open image (refcounts and tables only; no guest data is read).
    public init(image: QCow2Image) throws {
        let check = try image.check()
        let space = try image.snapshotSpace()
        fileLength = try image.file.length()
        allocatedBytes = (image.file as? BlockFile).flatMap { try? $0.allocatedBytes() } ?? fileLength
        allocatedClusters = check.allocatedClusters
        fragmentedClusters = check.fragmentedClusters
        snapshots = space.snapshots
        allSnapshotsBytes = space.allSnapshotsBytes
    }
}

/// What `compact` did.
public struct CompactResult: Sendable, Equatable {
    public var before: CompactFigures
    public var after: CompactFigures
    public var copy: SnapshotCopyReport
}

/// `vmimg compact` and `convert --keep-snapshots`: rewrite a qcow2 image with all its internal
/// snapshots, each shared cluster stored once, data in guest order and metadata together.
public enum Compactor {
    /// Suffix of the file written beside the image; a stale one (from a killed run) is removed.
    public static let temporarySuffix = ".compact-tmp"

    /// Compacts `path` in place. The image stays locked read-write (QEMU's lock bytes) throughout,
    /// so a running QEMU makes this fail at once. The new file is written beside the original,
    /// checked (no corruption, no leak), flushed, then renamed over it and the directory flushed:
    /// a crash at any moment leaves the old file or the new one, both whole.
    /// - Parameter beforeRename: called with the temporary path once it is complete (tests).
    /// - Throws: `ImageError` (`.open` for a lock conflict or a non-qcow2 file, `.corrupt` when the
    ///   new file does not check clean), engine and I/O errors.
    public static func compact(path: String, beforeRename: (String) throws -> Void = { _ in }) throws
        -> CompactResult
    {
        let opened = try ImageOpener.open(path, options: OpenOptions(writable: true))
        guard let image = opened as? QCow2Image else {
            throw ImageError(.unsupported, "'\(path)' is not a qcow2 image: only qcow2 images can be compacted")
        }
        let before = try CompactFigures(image: image)
        let temporary = path + temporarySuffix
        let report: SnapshotCopyReport
        do {
            try FileReplacement.remove(temporary)
            let out = try BlockFile(path: temporary, writable: true, create: true, truncate: true)
            report = try image.writeSnapshotPreservingCopy(to: out, options: SnapshotCopyOptions(matching: image))
            let written = try QCow2Image(path: temporary)
            let check = try written.check()
            guard check.corruptions == 0, check.leaks == 0, check.checkErrors == 0 else {
                throw ImageError(
                    .corrupt,
                    "compacted copy of '\(path)' does not check clean (\(check.corruptions) errors, "
                        + "\(check.leaks) leaks); the original is unchanged")
            }
            try beforeRename(temporary)
            try FileReplacement.rename(temporary, to: path)
            try FileReplacement.syncDirectory(of: path)
        } catch {
            try? FileReplacement.remove(temporary)
            throw ImageError.wrap(error, context: "compact '\(path)'")
        }
        // `image` still locks the old inode until here; the new file is measured read-only.
        let after = try CompactFigures(image: QCow2Image(path: path))
        return CompactResult(before: before, after: after, copy: report)
    }

    /// `convert -O qcow2 --keep-snapshots`: writes `image` and its snapshots to a new file at `path`.
    /// - Throws: `ImageError(.open)` when the output cannot be created; engine errors.
    public static func convertKeepingSnapshots(_ image: QCow2Image, to path: String, options: SnapshotCopyOptions)
        throws -> SnapshotCopyReport
    {
        let out: BlockFile
        do {
            out = try BlockFile(path: path, writable: true, create: true, truncate: true)
        } catch {
            throw ImageError(.open, "Could not create '\(path)': \(ImageError.reason(error))")
        }
        do {
            try out.lock(.readWrite, format: .qcow2)
            return try image.writeSnapshotPreservingCopy(to: out, options: options)
        } catch {
            // The header is written last, so what is left is no image: remove it.
            try? FileReplacement.remove(path)
            throw error
        }
    }
}
