#ifndef VMIMG_CLIBDEFLATE_SHIM_H
#define VMIMG_CLIBDEFLATE_SHIM_H

// libdeflate: a fast whole-buffer raw-deflate decoder. We only inflate with it; compression stays
// with zlib because qcow2 requires a 4 KiB window and qemu-img-identical output.
#include <libdeflate.h>

#endif
