#ifndef VMIMG_CBLOCKIO_CANCEL_H
#define VMIMG_CBLOCKIO_CANCEL_H

// Process-wide cancellation of long operations (Ctrl-C, SIGTERM): a signal handler records the
// signal in a sig_atomic_t; long loops poll it and stop at a safe point; the CLI then exits
// through the same signal (so a shell sees 128 + signal and stops a script, as for qemu-img).

#ifdef __cplusplus
extern "C" {
#endif

/// Installs the SIGINT and SIGTERM handlers (SA_RESTART). A signal the process inherited as
/// ignored stays ignored. The first signal resets both to the default action, so a second one
/// ends the process at once. Returns 0 or an errno.
int cblockio_cancel_install(void);
/// The first signal received since install (0 when none).
int cblockio_cancel_signal(void);
/// Flushes stdio, restores the default action for `sig`, unblocks it and raises it; if the
/// process survives (the signal is ignored), exits with 128 + `sig`.
void cblockio_cancel_exit(int sig) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif
