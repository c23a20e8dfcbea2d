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
