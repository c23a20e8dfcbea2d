#ifndef VMIMG_CBLOCKIO_STAT_H
#define VMIMG_CBLOCKIO_STAT_H
#include <stdint.h>
/// Bytes the file occupies on the host (st_blocks × 512), what qemu-img prints as disk size.
int cblockio_allocated_bytes(int fd, int64_t *bytes);

/// What stat(2) says about a file's identity and last change.
struct cblockio_stamp {
    uint64_t device;
    uint64_t inode;
    int64_t size;
    int64_t blocks;
    int64_t mtime_ns;
    int64_t ctime_ns;
};
/// stat(2) of `path` (symlinks followed) into `stamp`; returns 0 or errno.
int cblockio_path_stamp(const char *path, struct cblockio_stamp *stamp);
#endif
