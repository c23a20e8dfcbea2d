#ifndef VMIMG_CISAL_SHIM_H
#define VMIMG_CISAL_SHIM_H

// ISA-L's igzip: used only as a fast test that a qcow2 cluster will not compress (zlib at QEMU's
// level 6 spends as long failing on random data as it does compressing text). Its history window
// is limited to 4 KiB (hist_bits = 12), the window QEMU inflates with.

#include <isa-l/igzip_lib.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/// Bytes of level buffer igzip's level 1 needs (the ISAL_DEF_LVL1_DEFAULT macro, which Swift
/// cannot import).
static inline uint32_t vmimg_isal_level1_buffer_size(void) { return ISAL_DEF_LVL1_DEFAULT; }

/// Order-0 (byte histogram) entropy of `in[0..<n]` in bits per byte: 8 for uniform random bytes,
/// about 4.5-5.5 for text, 0 for a repeated byte.
static inline double vmimg_byte_entropy(const uint8_t *in, size_t n) {
    // Four histograms so consecutive increments do not wait on each other.
    uint32_t c[4][256];
    memset(c, 0, sizeof c);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        c[0][in[i]]++;
        c[1][in[i + 1]]++;
        c[2][in[i + 2]]++;
        c[3][in[i + 3]]++;
    }
    for (; i < n; i++) c[0][in[i]]++;
    double bits = 0;
    for (int k = 0; k < 256; k++) {
        uint32_t v = c[0][k] + c[1][k] + c[2][k] + c[3][k];
        if (v) {
            double p = (double)v / (double)n;
            bits -= p * log2(p);
        }
    }
    return bits;
}

/// igzip's AVX2/AVX-512 assembly returns with the upper halves of the vector registers dirty
/// (no `vzeroupper`). Until something clears them, every legacy-SSE instruction after it pays the
/// AVX-SSE transition penalty: zlib's deflate, run next on the same thread, took 1.85 ms a 64 KiB
/// cluster instead of 0.98 ms (measured, Formats/performance.md). `vzeroupper` is an AVX
/// instruction, so it runs only where AVX exists (igzip uses none elsewhere).
static inline void vmimg_clear_upper_vector_state(void) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx")) __asm__ volatile("vzeroupper" ::: "memory");
#endif
}

/// Raw deflate of `in[0..<n]` at igzip level 1 with a 4 KiB window into at most `cap` bytes.
/// Returns the compressed size, or -1 when it does not fit (or on error).
static inline long vmimg_isal_deflate_level1(uint8_t *level_buf, uint32_t level_buf_size, const uint8_t *in,
                                             uint32_t n, uint8_t *out, uint32_t cap) {
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = 1;
    s.level_buf = level_buf;
    s.level_buf_size = level_buf_size;
    s.hist_bits = 12;
    s.gzip_flag = IGZIP_DEFLATE;
    s.flush = NO_FLUSH;
    s.end_of_stream = 1;
    s.next_in = (uint8_t *)in;  // not const-qualified in igzip, never written through
    s.avail_in = n;
    s.next_out = out;
    s.avail_out = cap;
    long result = isal_deflate_stateless(&s) == COMP_OK ? (long)s.total_out : -1;
    vmimg_clear_upper_vector_state();
    return result;
}

#endif
