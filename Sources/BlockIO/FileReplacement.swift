import CBlockIO

/// Atomic file replacement: the write-beside, flush, rename, flush-directory sequence that leaves
/// either the old or the new file whole at every instant.
public enum FileReplacement {
    /// `rename(2)`: `from` takes the place of `to` in one step (both on one file system).
    /// - Throws: ``BlockIOError`` with operation `rename` and the errno.
    public static func rename(_ from: String, to: String) throws(BlockIOError) {
        let err = unsafe cblockio_rename(from, to)
        guard err == 0 else { throw BlockIOError(path: to, operation: "rename", errno: err, detail: "from \(from)") }
    }

    /// Flushes the directory holding `path`, so a rename or create in it survives a power cut.
    /// - Throws: ``BlockIOError`` with operation `fsync` and the errno.
    public static func syncDirectory(of path: String) throws(BlockIOError) {
        let dir: String
        if let slash = path.lastIndex(of: "/") {
            dir = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            dir = "."
        }
        let err = unsafe cblockio_fsync_directory(dir)
        guard err == 0 else { throw BlockIOError(path: dir, operation: "fsync", errno: err) }
    }

    /// `unlink(2)`; a missing file is not an error.
    /// - Throws: ``BlockIOError`` with operation `unlink` and the errno.
    public static func remove(_ path: String) throws(BlockIOError) {
        let err = unsafe cblockio_unlink(path)
        guard err == 0 || err == 2 else { throw BlockIOError(path: path, operation: "unlink", errno: err) }
    }
}
