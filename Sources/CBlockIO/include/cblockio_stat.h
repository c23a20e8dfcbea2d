#ifndef VMIMG_CBLOCKIO_STAT_H
#define VMIMG_CBLOCKIO_STAT_H
#include <stdint.h>
/// Bytes the file occupies on the host (st_blocks × 512), what qemu-img prints as disk size.
int cblockio_allocated_bytes(int fd, int64_t *bytes);
#endif
