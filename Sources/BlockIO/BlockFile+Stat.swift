import CBlockIO

extension BlockFile {
    /// Host bytes the file occupies (`st_blocks` × 512): qemu-img's "disk size" / `actual-size`.
    public func allocatedBytes() throws(BlockIOError) -> UInt64 {
        var bytes: Int64 = 0
        let err = unsafe cblockio_allocated_bytes(descriptor, &bytes)
        guard err == 0 else { throw BlockIOError(path: name, operation: "stat", errno: err) }
        return UInt64(max(0, bytes))
    }
}
