import CBlockIO

/// A connected Unix stream socket (a QEMU QMP monitor). Owns its descriptor and closes it in
/// `deinit`. Not for concurrent use: one caller talks on it at a time.
public final class UnixSocket {
    public let path: String
    let fd: Int32

    /// Connects to the socket at `path`.
    /// - Throws: ``BlockIOError`` with operation `connect` (ENOENT, ECONNREFUSED, ENAMETOOLONG…).
    public init(path: String) throws(BlockIOError) {
        self.path = path
        var fd: Int32 = -1
        let err = unsafe cblockio_unix_connect(path, &fd)
        guard err == 0 else { throw BlockIOError(path: path, operation: "connect", errno: err) }
        self.fd = fd
    }

    deinit { _ = cblockio_close(fd) }

    /// Sends every byte.
    public func send(_ bytes: [UInt8]) throws(BlockIOError) {
        let err = unsafe bytes.withUnsafeBytes { raw in
            unsafe cblockio_send_all(fd, raw.baseAddress, raw.count)
        }
        guard err == 0 else { throw BlockIOError(path: path, operation: "send", errno: err) }
    }

    /// Waits up to `timeoutMilliseconds` (negative: forever) and returns what arrived; empty when
    /// the peer closed.
    /// - Throws: ``BlockIOError`` with operation `receive`; errno `ETIMEDOUT` when nothing came.
    public func receive(maxCount: Int = 65536, timeoutMilliseconds: Int32) throws(BlockIOError)
        -> [UInt8]
    {
        var got = 0
        var failure: Int32 = 0
        let bytes = unsafe [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, initialized in
            failure = unsafe cblockio_recv_timeout(
                fd, buffer.baseAddress, maxCount, timeoutMilliseconds, &got)
            initialized = failure == 0 ? got : 0
        }
        guard failure == 0 else { throw BlockIOError(path: path, operation: "receive", errno: failure) }
        return bytes
    }
}
