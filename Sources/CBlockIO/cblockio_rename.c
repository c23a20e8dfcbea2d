#define _GNU_SOURCE
#include "cblockio_rename.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int cblockio_rename(const char *from, const char *to) {
    return rename(from, to) == 0 ? 0 : errno;
}

int cblockio_fsync_directory(const char *path) {
    int fd;
    do {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    int err = 0;
    if (fsync(fd) != 0) err = errno;
    close(fd);
    return err;
}

int cblockio_unlink(const char *path) {
    return unlink(path) == 0 ? 0 : errno;
}
