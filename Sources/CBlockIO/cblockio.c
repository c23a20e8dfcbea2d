#define _GNU_SOURCE
#include "cblockio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int kind_of(mode_t mode) {
    if (S_ISREG(mode)) return CBLOCKIO_REGULAR;
    if (S_ISDIR(mode)) return CBLOCKIO_DIRECTORY;
    if (S_ISBLK(mode)) return CBLOCKIO_BLOCK_DEVICE;
    if (S_ISCHR(mode)) return CBLOCKIO_CHAR_DEVICE;
    if (S_ISFIFO(mode)) return CBLOCKIO_FIFO;
    if (S_ISSOCK(mode)) return CBLOCKIO_SOCKET;
    if (S_ISLNK(mode)) return CBLOCKIO_SYMLINK;
    return CBLOCKIO_OTHER;
}

int cblockio_open(const char *path, int writable, int create, int truncate, int *fd_out) {
    int flags = O_CLOEXEC | (writable ? O_RDWR : O_RDONLY);
    if (create) flags |= O_CREAT;
    if (truncate) flags |= O_TRUNC;
    int fd;
    do {
        fd = open(path, flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    // open(O_RDONLY) succeeds on a directory; every later read would fail with EISDIR, so say so now.
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return EISDIR;
    }
    *fd_out = fd;
    return 0;
}

int cblockio_close(int fd) {
    // Never retry close on EINTR: on Linux the descriptor is already released.
    return close(fd) == 0 ? 0 : errno;
}

int cblockio_pread_full(int fd, void *buf, size_t count, int64_t offset, size_t *done) {
    size_t total = 0;
    while (total < count) {
        ssize_t n = pread(fd, (char *)buf + total, count - total, (off_t)(offset + (int64_t)total));
        if (n < 0) {
            if (errno == EINTR) continue;
            *done = total;
            return errno;
        }
        if (n == 0) break;  // end of file
        total += (size_t)n;
    }
    *done = total;
    return 0;
}

int cblockio_pwrite_full(int fd, const void *buf, size_t count, int64_t offset, size_t *done) {
    size_t total = 0;
    while (total < count) {
        ssize_t n = pwrite(fd, (const char *)buf + total, count - total, (off_t)(offset + (int64_t)total));
        if (n < 0) {
            if (errno == EINTR) continue;
            *done = total;
            return errno;
        }
        if (n == 0) {  // should not happen for regular files; avoid spinning forever
            *done = total;
            return ENOSPC;
        }
        total += (size_t)n;
    }
    *done = total;
    return 0;
}

int cblockio_fdatasync(int fd) {
    int r;
    do {
        r = fdatasync(fd);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : errno;
}

int cblockio_ftruncate(int fd, int64_t length) {
    int r;
    do {
        r = ftruncate(fd, (off_t)length);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : errno;
}

int cblockio_fstat(int fd, int64_t *size, int *kind) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    *size = (int64_t)st.st_size;
    *kind = kind_of(st.st_mode);
    return 0;
}

int cblockio_path_type(const char *path, int follow, int *kind) {
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r != 0) return errno;
    *kind = kind_of(st.st_mode);
    return 0;
}

int cblockio_seek_data(int fd, int64_t offset, int64_t *result) {
    off_t r = lseek(fd, (off_t)offset, SEEK_DATA);
    if (r < 0) return errno;
    *result = (int64_t)r;
    return 0;
}

int cblockio_seek_hole(int fd, int64_t offset, int64_t *result) {
    off_t r = lseek(fd, (off_t)offset, SEEK_HOLE);
    if (r < 0) return errno;
    *result = (int64_t)r;
    return 0;
}

static int do_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    int r;
    do {
        r = fallocate(fd, mode, (off_t)offset, (off_t)length);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : errno;
}

int cblockio_fallocate(int fd, int64_t offset, int64_t length) { return do_fallocate(fd, 0, offset, length); }

int cblockio_punch_hole(int fd, int64_t offset, int64_t length) {
    return do_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

int cblockio_zero_range(int fd, int64_t offset, int64_t length, int keep_size) {
    return do_fallocate(fd, FALLOC_FL_ZERO_RANGE | (keep_size ? FALLOC_FL_KEEP_SIZE : 0), offset, length);
}

int cblockio_fadvise(int fd, int64_t offset, int64_t length, int advice) {
    int a;
    switch (advice) {
    case CBLOCKIO_ADV_SEQUENTIAL: a = POSIX_FADV_SEQUENTIAL; break;
    case CBLOCKIO_ADV_RANDOM: a = POSIX_FADV_RANDOM; break;
    case CBLOCKIO_ADV_WILLNEED: a = POSIX_FADV_WILLNEED; break;
    case CBLOCKIO_ADV_DONTNEED: a = POSIX_FADV_DONTNEED; break;
    default: a = POSIX_FADV_NORMAL; break;
    }
    // posix_fadvise returns the error number instead of setting errno.
    return posix_fadvise(fd, (off_t)offset, (off_t)length, a);
}

int cblockio_copy_file_range(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t count,
                             size_t *copied) {
    loff_t in = (loff_t)off_in, out = (loff_t)off_out;
    ssize_t n;
    do {
        n = copy_file_range(fd_in, &in, fd_out, &out, count, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    *copied = (size_t)n;
    return 0;
}

static short lock_type(int type) {
    switch (type) {
    case CBLOCKIO_LOCK_WRITE: return F_WRLCK;
    case CBLOCKIO_LOCK_UNLOCK: return F_UNLCK;
    default: return F_RDLCK;
    }
}

int cblockio_ofd_setlk(int fd, int64_t start, int64_t length, int type) {
    struct flock fl = {
        .l_type = lock_type(type),
        .l_whence = SEEK_SET,
        .l_start = (off_t)start,
        .l_len = (off_t)length,
        .l_pid = 0,  // must be 0 for OFD locks
    };
    int r;
    do {
        r = fcntl(fd, F_OFD_SETLK, &fl);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : errno;
}

int cblockio_ofd_test(int fd, int64_t start, int64_t length, int type, int *conflict) {
    struct flock fl = {
        .l_type = lock_type(type),
        .l_whence = SEEK_SET,
        .l_start = (off_t)start,
        .l_len = (off_t)length,
        .l_pid = 0,
    };
    int r;
    do {
        r = fcntl(fd, F_OFD_GETLK, &fl);
    } while (r != 0 && errno == EINTR);
    if (r != 0) return errno;
    *conflict = fl.l_type != F_UNLCK;
    return 0;
}

int cblockio_errno(void) { return errno; }

size_t cblockio_first_difference(const void *a, const void *b, size_t count) {
    const unsigned char *x = a, *y = b;
    if (count == 0 || memcmp(x, y, count) == 0) return count;
    size_t i = 0;
    while (i + 4096 <= count && memcmp(x + i, y + i, 4096) == 0) i += 4096;
    while (i < count && x[i] == y[i]) i++;
    return i;
}
