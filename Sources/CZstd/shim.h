#ifndef VMIMG_CZSTD_SHIM_H
#define VMIMG_CZSTD_SHIM_H

// ZSTD_d_stableOutBuffer is an "experimental" parameter: its enum value is only declared under
// ZSTD_STATIC_LINKING_ONLY, but ZSTD_DCtx_setParameter (stable API) accepts it in the shared
// library since 1.4.4. We use it so the decoder writes straight into the caller's cluster buffer
// instead of allocating a window sized by the (untrusted) frame header.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

static inline int vmimg_zstd_param_stable_out_buffer(void) {
    return (int)ZSTD_d_stableOutBuffer;
}

#endif
