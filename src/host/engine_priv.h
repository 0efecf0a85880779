/* The process half of the database load test, apart from libclamav, so tests
 * can drive the fork / pipe / timeout / stderr summary with children of their
 * own (a child that hangs, crashes, or writes many lines) on any machine. */
#ifndef CLAMFRESH_ENGINE_PRIV_H
#define CLAMFRESH_ENGINE_PRIV_H

#include "clamfresh/engine.h"

/* What a child reports to the parent through its result pipe; one write of
 * less than PIPE_BUF bytes, so the parent reads it whole or not at all. */
typedef struct cf_engine_report {
    unsigned sigs;
    char error[CF_ENGINE_LINE];
} cf_engine_report;

/* Runs in the child with its stderr redirected to the parent. Fills *rep and
 * returns the exit status (0 = the database is good). The child ends with
 * _exit, so stdio buffers inherited from the parent are never flushed twice. */
typedef int (*cf_engine_child_fn)(void *arg, cf_engine_report *rep);

/* Forks, runs fn in the child, waits at most timeout seconds (0 = the
 * process-wide bound) and fills res as cf_engine_test_load documents. */
cf_code cf_engine_run_child(cf_engine_child_fn fn, void *arg, unsigned timeout, cf_engine_test_result *res,
                            cf_err *e);

#endif
