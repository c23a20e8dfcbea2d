#define _GNU_SOURCE
#include "cblockio_socket.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int cblockio_unix_connect(const char *path, int *fd_out) {
    struct sockaddr_un addr;
    size_t len = strlen(path);
    if (len >= sizeof(addr.sun_path)) return ENAMETOOLONG;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        if (errno == EINTR) continue;
        int err = errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

int cblockio_send_all(int fd, const void *buf, size_t count) {
    const char *p = buf;
    while (count > 0) {
        ssize_t n = send(fd, p, count, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += n;
        count -= (size_t)n;
    }
    return 0;
}

int cblockio_recv_timeout(int fd, void *buf, size_t capacity, int timeout_ms, size_t *got) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (r == 0) return ETIMEDOUT;
        break;
    }
    for (;;) {
        ssize_t n = recv(fd, buf, capacity, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        *got = (size_t)n;
        return 0;
    }
}
