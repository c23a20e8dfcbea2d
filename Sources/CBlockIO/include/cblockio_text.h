#ifndef VMIMG_CBLOCKIO_TEXT_H
#define VMIMG_CBLOCKIO_TEXT_H

// Output helpers for the CLI's short commands, which must print exactly as qemu-img's printf does
// without Foundation: String(format:) boxes each argument as a CVarArg, and the first such casts
// cost ~0.5M instructions of protocol-conformance scanning each, more than a whole small check.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// printf's `%.*f` (`general` 0) or `%.*g` (`general` 1) of `value` in the C locale, into `buf`
/// of `size` bytes (NUL-terminated, truncated if short). Returns the untruncated length.
int cblockio_format_double(char *buf, size_t size, int general, int precision, double value);

/// Writes all `count` bytes to `fd`, looping over short writes and EINTR. Returns 0 or an errno.
int cblockio_write_all(int fd, const void *buf, size_t count);

#ifdef __cplusplus
}
#endif

#endif
