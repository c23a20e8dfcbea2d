// The AVX-SSE transition penalty behind `convert -c zlib` being stuck near 0.55× of qemu-img
// (Formats/performance.md, 2026-12-05): zlib level 6 (QEMU's parameters) over every non-zero
// 64 KiB cluster of a file, timed alone (mode 0), after ISA-L igzip level 1 on the high-entropy
// clusters as vmimg's pre-test runs it (mode 1), and the same with `vzeroupper` after igzip
// (mode 2, what Sources/CIsal/shim.h does). On the bench input's first 200 MB: 0.98 ms a zlib
// call alone, 1.85 ms after igzip, 0.98 ms with vzeroupper.
//
//   gcc -O2 -o /tmp/bench-vzeroupper Samples/bench-vzeroupper.c -lisal -lz -lm
//   head -c 200M /tmp/vmimg-bench-full/disk.raw > /tmp/p200.raw
//   for m in 0 1 2; do /tmp/bench-vzeroupper /tmp/p200.raw $m; done
#include <isa-l/igzip_lib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#define CS 65536

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double entropy(const unsigned char *in) {
    unsigned c[256] = {0};
    for (int i = 0; i < CS; i++) c[in[i]]++;
    double bits = 0;
    for (int k = 0; k < 256; k++)
        if (c[k]) {
            double p = (double)c[k] / CS;
            bits -= p * log2(p);
        }
    return bits;
}

static unsigned char level_buf[ISAL_DEF_LVL1_DEFAULT];

static long igzip1(const unsigned char *in, unsigned char *out) {
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = 1;
    s.level_buf = level_buf;
    s.level_buf_size = sizeof level_buf;
    s.hist_bits = 12;
    s.gzip_flag = IGZIP_DEFLATE;
    s.flush = NO_FLUSH;
    s.end_of_stream = 1;
    s.next_in = (unsigned char *)in;
    s.avail_in = CS;
    s.next_out = out;
    s.avail_out = CS - 1;
    return isal_deflate_stateless(&s) == COMP_OK ? (long)s.total_out : -1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE 0|1|2\n", argv[0]);
        return 2;
    }
    int mode = atoi(argv[2]);
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static unsigned char in[CS], out[CS], zero[CS];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY);
    double cpu = 0;
    long calls = 0;
    while (fread(in, 1, CS, f) == CS) {
        if (!memcmp(in, zero, CS)) continue;
        if (mode > 0 && entropy(in) >= 7.0) {
            long stored = igzip1(in, out);
            if (mode == 2) __asm__ volatile("vzeroupper" ::: "memory");
            if (stored < 0) continue;  // vmimg stores it without zlib
        }
        double start = now();
        deflateReset(&zs);
        zs.next_in = in;
        zs.avail_in = CS;
        zs.next_out = out;
        zs.avail_out = CS - 1;
        deflate(&zs, Z_FINISH);
        cpu += now() - start;
        calls++;
    }
    printf("mode %d: %ld zlib calls, %.2f s, %.2f ms a call\n", mode, calls, cpu, cpu / calls * 1e3);
    return 0;
}
