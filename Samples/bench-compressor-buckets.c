// Where ISA-L igzip level 3 (4 KiB window) loses size against zlib level 6 (QEMU's bytes), by
// igzip's own compression ratio (Formats/performance.md, "Faster encoders, measured and not
// used"): for each 5% bucket, the clusters, both sizes, igzip's size penalty, the bytes it adds
// and zlib's CPU. 64 KiB clusters, all-zero ones skipped, output capped at cluster_size - 1.
//
//   gcc -O2 -o /tmp/bench-buckets Samples/bench-compressor-buckets.c -lisal -lz
//   head -c 600M /tmp/vmimg-bench-full/disk.raw > /tmp/part.raw && /tmp/bench-buckets /tmp/part.raw
#include <isa-l/igzip_lib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#define CS 65536

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static z_stream zs;
static unsigned char level_buf[ISAL_DEF_LVL3_DEFAULT];

static long zlib6(const unsigned char *in, unsigned char *out) {
    deflateReset(&zs);
    zs.next_in = (unsigned char *)in;
    zs.avail_in = CS;
    zs.next_out = out;
    zs.avail_out = CS - 1;
    return deflate(&zs, Z_FINISH) == Z_STREAM_END ? (long)zs.total_out : CS;
}

static long igzip3(const unsigned char *in, unsigned char *out) {
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = 3;
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
    long n = isal_deflate_stateless(&s) == COMP_OK ? (long)s.total_out : CS;
    __asm__ volatile("vzeroupper" ::: "memory");  // see Samples/bench-vzeroupper.c
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    deflateInit2(&zs, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY);
    static unsigned char in[CS], out[CS], zero[CS];
    double zsize[21] = {0}, isize[21] = {0}, zcpu[21] = {0}, totalZ = 0, totalI = 0;
    long count[21] = {0};
    while (fread(in, 1, CS, f) == CS) {
        if (!memcmp(in, zero, CS)) continue;
        double a = now();
        long z = zlib6(in, out);
        double b = now();
        long i = igzip3(in, out);
        int k = (int)((double)i / CS * 20);
        if (k > 20) k = 20;
        count[k]++;
        zsize[k] += z;
        isize[k] += i;
        zcpu[k] += b - a;
        totalZ += z;
        totalI += i;
    }
    printf("zlib 6: %.0f bytes, igzip 3: %.0f (%.4f)\n", totalZ, totalI, totalI / totalZ);
    for (int k = 0; k <= 20; k++)
        if (count[k])
            printf("igzip ratio %.2f-%.2f: %5ld clusters, zlib %10.0f, igzip %10.0f (%.3f), +%8.0f bytes, zlib %.2f s\n",
                   k / 20.0, (k + 1) / 20.0, count[k], zsize[k], isize[k], isize[k] / zsize[k],
                   isize[k] - zsize[k], zcpu[k]);
    return 0;
}
