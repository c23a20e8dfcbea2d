#ifndef VMIMG_CBLOCKIO_RENAME_H
#define VMIMG_CBLOCKIO_RENAME_H
/// rename(2): atomically replaces `to` with `from` (same file system). Returns 0 or an errno.
int cblockio_rename(const char *from, const char *to);
/// fsync(2) of the directory at `path`, so a rename in it is durable. Returns 0 or an errno.
int cblockio_fsync_directory(const char *path);
/// unlink(2). Returns 0 or an errno.
int cblockio_unlink(const char *path);
#endif
