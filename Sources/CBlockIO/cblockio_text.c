#define _GNU_SOURCE
#include "cblockio_text.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

int cblockio_format_double(char *buf, size_t size, int general, int precision, double value) {
    // Constant format strings: the caller picks a conversion, never supplies one. The C locale's
    // decimal point whatever setlocale said, as String(format:) with no locale did.
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t previous = c_locale ? uselocale(c_locale) : (locale_t)0;
    int length = general ? snprintf(buf, size, "%.*g", precision, value) : snprintf(buf, size, "%.*f", precision, value);
    if (c_locale) {
        uselocale(previous);
        freelocale(c_locale);
    }
    return length;
}

int cblockio_write_all(int fd, const void *buf, size_t count) {
    size_t total = 0;
    while (total < count) {
        ssize_t n = write(fd, (const char *)buf + total, count - total);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;  // not expected for pipes, terminals or files; avoid spinning
        total += (size_t)n;
    }
    return 0;
}
