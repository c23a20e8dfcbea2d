#ifndef VMIMG_CBLOCKIO_H
#define VMIMG_CBLOCKIO_H

// Thin wrappers over Linux calls that Swift's Glibc module hides (SEEK_DATA/SEEK_HOLE,
// FALLOC_FL_*, F_OFD_*) or that are easier to get right in C (full-length pread/pwrite loops
// with EINTR retry). Functions return 0 on success or a positive errno; they never leave the
// answer in the thread's errno, so Swift never races another call for it.

#include <stddef.h>
#include <stdint.h>
#include "cblockio_stat.h"
#include "cblockio_socket.h"
#include "cblockio_rename.h"
#include "cblockio_cancel.h"
#include "cblockio_text.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Kinds of file reported by cblockio_file_type.
enum cblockio_file_kind {
    CBLOCKIO_REGULAR = 0,
    CBLOCKIO_DIRECTORY = 1,
    CBLOCKIO_BLOCK_DEVICE = 2,
    CBLOCKIO_CHAR_DEVICE = 3,
    CBLOCKIO_FIFO = 4,
    CBLOCKIO_SOCKET = 5,
    CBLOCKIO_SYMLINK = 6,
    CBLOCKIO_OTHER = 7,
};

/// Opens `path` with O_CLOEXEC (and O_RDWR/O_RDONLY, O_CREAT, O_TRUNC as asked); refuses
/// directories with EISDIR even when opened read-only. On success stores the fd.
int cblockio_open(const char *path, int writable, int create, int truncate, int *fd_out);
int cblockio_close(int fd);

/// The index of the first byte where `a` and `b` differ in their first `count` bytes, or `count`
/// when they are equal (memcmp: vectorized, where a Swift byte loop costs ~5 instructions a byte).
size_t cblockio_first_difference(const void *a, const void *b, size_t count);

/// Reads up to `count` bytes at `offset`, looping over short reads and EINTR; stops at EOF.
/// Stores the number of bytes read (less than `count` only at end of file).
int cblockio_pread_full(int fd, void *buf, size_t count, int64_t offset, size_t *done);
/// Writes all `count` bytes at `offset`, looping over short writes and EINTR. On error, `done`
/// tells how much was written.
int cblockio_pwrite_full(int fd, const void *buf, size_t count, int64_t offset, size_t *done);

int cblockio_fdatasync(int fd);
int cblockio_ftruncate(int fd, int64_t length);
/// File size and kind from fstat.
int cblockio_fstat(int fd, int64_t *size, int *kind);
/// Kind of the file at `path` (lstat when `follow` is 0).
int cblockio_path_type(const char *path, int follow, int *kind);

/// lseek(SEEK_DATA). ENXIO means no data at or after `offset`.
int cblockio_seek_data(int fd, int64_t offset, int64_t *result);
/// lseek(SEEK_HOLE). ENXIO means `offset` is at or past the end.
int cblockio_seek_hole(int fd, int64_t offset, int64_t *result);

/// fallocate mode 0: allocates blocks, extending the size if the range passes the end.
int cblockio_fallocate(int fd, int64_t offset, int64_t length);
/// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE).
int cblockio_punch_hole(int fd, int64_t offset, int64_t length);
/// fallocate(FALLOC_FL_ZERO_RANGE), optionally with FALLOC_FL_KEEP_SIZE.
int cblockio_zero_range(int fd, int64_t offset, int64_t length, int keep_size);

/// posix_fadvise advice values.
enum cblockio_advice {
    CBLOCKIO_ADV_NORMAL = 0,
    CBLOCKIO_ADV_SEQUENTIAL = 1,
    CBLOCKIO_ADV_RANDOM = 2,
    CBLOCKIO_ADV_WILLNEED = 3,
    CBLOCKIO_ADV_DONTNEED = 4,
};
int cblockio_fadvise(int fd, int64_t offset, int64_t length, int advice);

/// copy_file_range between two fds at explicit offsets (the fd offsets are untouched). Stores
/// bytes copied (may be short; 0 at end of input).
int cblockio_copy_file_range(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t count,
                             size_t *copied);

/// Lock types for the OFD helpers.
enum cblockio_lock_type {
    CBLOCKIO_LOCK_READ = 0,
    CBLOCKIO_LOCK_WRITE = 1,
    CBLOCKIO_LOCK_UNLOCK = 2,
};
/// Open-file-description lock (F_OFD_SETLK, non-blocking) of `length` bytes at `start`.
int cblockio_ofd_setlk(int fd, int64_t start, int64_t length, int type);
/// F_OFD_GETLK: would a lock of `type` on the range conflict with a lock held through another
/// open file description? Stores 1 for conflict, 0 for none. Our own description never conflicts.
int cblockio_ofd_test(int fd, int64_t start, int64_t length, int type, int *conflict);

/// The calling thread's errno (for callers that used a libc call directly).
int cblockio_errno(void);

#ifdef __cplusplus
}
#endif

#endif
