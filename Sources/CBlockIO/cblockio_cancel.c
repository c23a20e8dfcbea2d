#include "cblockio_cancel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t cancel_signal = 0;

static void set_default(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

// Async-signal-safe: one store and sigaction calls (errno preserved for the interrupted code).
static void on_signal(int sig) {
    int saved = errno;
    if (cancel_signal == 0) cancel_signal = sig;
    set_default(SIGINT);
    set_default(SIGTERM);
    errno = saved;
}

static int install(int sig) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0) return errno;
    // nohup and `cmd &` in scripts start us with SIGINT ignored: keep it so.
    if (old.sa_handler == SIG_IGN) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(sig, &sa, NULL) == 0 ? 0 : errno;
}

int cblockio_cancel_install(void) {
    int rc = install(SIGINT);
    if (rc != 0) return rc;
    return install(SIGTERM);
}

int cblockio_cancel_signal(void) { return cancel_signal; }

void cblockio_cancel_exit(int sig) {
    fflush(NULL);
    set_default(sig);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    // raise() targets this thread; give a process-directed copy too before giving up.
    kill(getpid(), sig);
    _exit(128 + sig);
}
