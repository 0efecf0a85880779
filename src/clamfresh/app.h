/* What main.c and daemon.c share: the program's state after initialisation.
 * The run cycle itself is the library's (clamfresh/cycle.h); main.c calls
 * cf_daemon_main, and the daemon calls only the library, never back. */
#ifndef CLAMFRESH_APP_H
#define CLAMFRESH_APP_H

#include "clamfresh/cycle.h"
#include "clamfresh/hooks.h"

typedef struct cf_app {
    cf_cycle_ctx c; /* what the library's cycle needs */
    int daemon;
    cf_hook_pool pool;
} cf_app;

/* Daemon mode (§9.4); returns the process exit status. */
int cf_daemon_main(cf_app *a);

#endif
