#define _GNU_SOURCE
#include "cblockio_stat.h"
#include <errno.h>
#include <sys/stat.h>

int cblockio_allocated_bytes(int fd, int64_t *bytes) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    *bytes = (int64_t)st.st_blocks * 512;
    return 0;
}

int cblockio_path_stamp(const char *path, struct cblockio_stamp *stamp) {
    struct stat st;
    if (stat(path, &st) != 0) return errno;
    stamp->device = (uint64_t)st.st_dev;
    stamp->inode = (uint64_t)st.st_ino;
    stamp->size = (int64_t)st.st_size;
    stamp->blocks = (int64_t)st.st_blocks;
    stamp->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    stamp->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    return 0;
}
