import CBlockIO

/// A file's identity and last change as stat(2) reports them: equal stamps mean the file was
/// neither replaced nor written in between (any write moves mtime and ctime; ctime cannot be set
/// back). Timestamps tick at the kernel's coarse clock, so a stamp taken within ``racyWindow`` of
/// a write may also match the file a moment later: callers trust only stamps older than that.
public struct FileStamp: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// 512-byte blocks allocated (punching a hole changes these, not the size).
    public var blocks: Int64
    /// Last data change, nanoseconds since the epoch.
    public var modifiedNanoseconds: Int64
    /// Last data or inode change, nanoseconds since the epoch.
    public var changedNanoseconds: Int64

    /// How long after a change a stamp is still "racy": two writes inside one tick of the kernel's
    /// coarse clock (a few ms) can leave mtime and ctime equal; one second is ample.
    public static let racyWindowNanoseconds: Int64 = 1_000_000_000

    /// stat(2) of `path`, symlinks followed.
    /// - Throws: ``BlockIOError`` with operation `stat` (e.g. `ENOENT`).
    public init(path: String) throws(BlockIOError) {
        var raw = cblockio_stamp()
        let err = unsafe cblockio_path_stamp(path, &raw)
        guard err == 0 else { throw BlockIOError(path: path, operation: "stat", errno: err) }
        device = raw.device
        inode = raw.inode
        size = raw.size
        blocks = raw.blocks
        modifiedNanoseconds = raw.mtime_ns
        changedNanoseconds = raw.ctime_ns
    }

    /// Whether a later write could still leave this stamp unchanged, at wall-clock time `now`
    /// (nanoseconds since the epoch).
    public func isRacy(now: Int64) -> Bool {
        now - max(modifiedNanoseconds, changedNanoseconds) < Self.racyWindowNanoseconds
    }

    /// One line naming every field, for storing and comparing.
    public var text: String {
        "dev=\(device) ino=\(inode) size=\(size) blocks=\(blocks) mtime=\(modifiedNanoseconds) ctime=\(changedNanoseconds)"
    }
}
