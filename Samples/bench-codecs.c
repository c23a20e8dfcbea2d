// Codec benchmark for qcow2 clusters: zlib (QEMU's parameters), libdeflate, ISA-L, zstd.
// Built and run by Samples/bench-codecs.sh; not part of the package.
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#define CS 65536

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint8_t *data;
static size_t nclusters;
static uint8_t *comp;    // nclusters * CS
static size_t *clen;     // 0 = stored uncompressed
static uint8_t out[CS];

static void report(const char *name, double ct, double dt, int spec_ok) {
    size_t total = 0, stored = 0;
    for (size_t i = 0; i < nclusters; i++) {
        if (clen[i]) total += clen[i]; else { total += CS; stored++; }
    }
    double mb = (double)nclusters * CS / 1e6;
    printf("%-22s comp %7.1f MB/s  decomp %7.1f MB/s  ratio %.3f  stored-raw %zu/%zu%s\n", name, mb / ct, dt > 0 ? mb / dt : 0,
           (double)total / ((double)nclusters * CS), stored, nclusters, spec_ok ? "" : "  (32K window: not qcow2-conformant)");
}

static double zlib_inflate_all(void) {
    z_stream s = {0};
    inflateInit2(&s, -12);
    double t = now();
    for (size_t i = 0; i < nclusters; i++) {
        if (!clen[i]) continue;
        inflateReset(&s);
        s.next_in = comp + i * CS; s.avail_in = clen[i]; s.next_out = out; s.avail_out = CS;
        int r = inflate(&s, Z_FINISH);
        if (!((r == Z_STREAM_END || r == Z_BUF_ERROR) && s.avail_out == 0) || memcmp(out, data + i * CS, CS)) { fprintf(stderr, "zlib inflate mismatch\n"); exit(1); }
    }
    t = now() - t;
    inflateEnd(&s);
    return t;
}

static double libdeflate_inflate_all(void) {
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    double t = now();
    for (size_t i = 0; i < nclusters; i++) {
        if (!clen[i]) continue;
        size_t in_used, out_used;
        int r = libdeflate_deflate_decompress_ex(d, comp + i * CS, clen[i], out, CS, &in_used, &out_used);
        if (r != 0 || out_used != CS || memcmp(out, data + i * CS, CS)) { fprintf(stderr, "libdeflate mismatch\n"); exit(1); }
    }
    t = now() - t;
    libdeflate_free_decompressor(d);
    return t;
}

static double isal_inflate_all(void) {
    struct inflate_state st;
    double t = now();
    for (size_t i = 0; i < nclusters; i++) {
        if (!clen[i]) continue;
        isal_inflate_init(&st);
        st.crc_flag = ISAL_DEFLATE;
        st.next_in = comp + i * CS; st.avail_in = clen[i]; st.next_out = out; st.avail_out = CS;
        int r = isal_inflate_stateless(&st);
        if ((r != ISAL_DECOMP_OK && r != ISAL_END_INPUT) || st.avail_out != 0 || memcmp(out, data + i * CS, CS)) { fprintf(stderr, "isal mismatch %d\n", r); exit(1); }
    }
    return now() - t;
}

static void bench_zlib(void) {
    z_stream s = {0};
    deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY);
    double t = now();
    for (size_t i = 0; i < nclusters; i++) {
        deflateReset(&s);
        s.next_in = data + i * CS; s.avail_in = CS; s.next_out = comp + i * CS; s.avail_out = CS - 1;
        clen[i] = deflate(&s, Z_FINISH) == Z_STREAM_END ? CS - 1 - s.avail_out : 0;
    }
    t = now() - t;
    deflateEnd(&s);
    double dz = zlib_inflate_all(), dl = libdeflate_inflate_all(), di = isal_inflate_all();
    report("zlib -1 (QEMU)", t, dz, 1);
    printf("%-22s decomp: zlib %.1f  libdeflate %.1f  isal %.1f MB/s\n", "  same streams", nclusters * CS / 1e6 / dz, nclusters * CS / 1e6 / dl, nclusters * CS / 1e6 / di);
}

static void bench_libdeflate(int level) {
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    double t = now();
    for (size_t i = 0; i < nclusters; i++) clen[i] = libdeflate_deflate_compress(c, data + i * CS, CS, comp + i * CS, CS - 1);
    t = now() - t;
    libdeflate_free_compressor(c);
    char name[32];
    snprintf(name, sizeof name, "libdeflate %d", level);
    report(name, t, libdeflate_inflate_all(), 0);
}

static void bench_isal(int level) {
    static uint8_t lvlbuf[ISAL_DEF_LVL3_DEFAULT];
    struct isal_zstream s;
    double t = now();
    for (size_t i = 0; i < nclusters; i++) {
        isal_deflate_stateless_init(&s);
        s.level = level; s.level_buf = lvlbuf; s.level_buf_size = sizeof lvlbuf;
        s.hist_bits = 12;  // qcow2's 4 KiB window
        s.end_of_stream = 1; s.flush = NO_FLUSH;
        s.next_in = data + i * CS; s.avail_in = CS; s.next_out = comp + i * CS; s.avail_out = CS - 1;
        clen[i] = isal_deflate_stateless(&s) == COMP_OK && s.avail_in == 0 ? CS - 1 - s.avail_out : 0;
    }
    t = now() - t;
    char name[32];
    snprintf(name, sizeof name, "isal %d (hist 12)", level);
    report(name, t, zlib_inflate_all(), 1);
}

static void bench_zstd(void) {
    ZSTD_CCtx *c = ZSTD_createCCtx();
    double t = now();
    for (size_t i = 0; i < nclusters; i++) {
        ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
        ZSTD_outBuffer o = {comp + i * CS, CS - 1, 0};
        ZSTD_inBuffer in = {data + i * CS, CS, 0};
        size_t r = ZSTD_compressStream2(c, &o, &in, ZSTD_e_end);
        clen[i] = (!ZSTD_isError(r) && r == 0) ? o.pos : 0;
    }
    t = now() - t;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    double dt = now();
    for (size_t i = 0; i < nclusters; i++) {
        if (!clen[i]) continue;
        size_t r = ZSTD_decompressDCtx(d, out, CS, comp + i * CS, clen[i]);
        if (ZSTD_isError(r) || r != CS || memcmp(out, data + i * CS, CS)) { fprintf(stderr, "zstd mismatch\n"); exit(1); }
    }
    dt = now() - dt;
    report("zstd default (QEMU)", t, dt, 1);
}

int main(int argc, char **argv) {
    size_t cap = (argc > 2 ? strtoul(argv[2], 0, 10) : 64) << 20;
    data = malloc(cap);
    FILE *list = fopen(argv[1], "r");
    char path[4096];
    size_t used = 0;
    while (used < cap && fgets(path, sizeof path, list)) {
        path[strcspn(path, "\n")] = 0;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        used += fread(data + used, 1, cap - used, f);
        fclose(f);
    }
    // Whole clusters only; all-zero clusters are skipped, as qemu-img convert -c leaves them out.
    size_t n = used / CS, kept = 0;
    static const uint8_t zero[CS];
    for (size_t i = 0; i < n; i++)
        if (memcmp(data + i * CS, zero, CS)) memmove(data + kept++ * CS, data + i * CS, CS);
    nclusters = kept;
    comp = malloc(nclusters * CS);
    clen = calloc(nclusters, sizeof *clen);
    printf("%zu clusters of 64 KiB (%.1f MiB) from %s\n", nclusters, nclusters * CS / 1048576.0, argv[1]);
    bench_zlib();
    for (int l = 1; l <= 6; l++) bench_libdeflate(l);
    bench_libdeflate(9);
    for (int l = 1; l <= 3; l++) bench_isal(l);
    bench_zstd();
    return 0;
}
