#ifndef VMIMG_CBLOCKIO_SOCKET_H
#define VMIMG_CBLOCKIO_SOCKET_H

// Unix stream sockets for control channels (QEMU's QMP monitor). Same conventions as
// cblockio.h: 0 on success or a positive errno, never the thread's errno.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Connects a SOCK_STREAM|SOCK_CLOEXEC Unix socket to `path` (at most 107 bytes: ENAMETOOLONG).
int cblockio_unix_connect(const char *path, int *fd_out);
/// Sends all `count` bytes (MSG_NOSIGNAL, EINTR retried).
int cblockio_send_all(int fd, const void *buf, size_t count);
/// Waits up to `timeout_ms` (negative: forever) for data, then reads at most `capacity` bytes.
/// Stores the count read: 0 means the peer closed. ETIMEDOUT when nothing arrived in time.
int cblockio_recv_timeout(int fd, void *buf, size_t capacity, int timeout_ms, size_t *got);

#ifdef __cplusplus
}
#endif

#endif
