/* The database directory as a crash-safe store: one lock per directory, atomic
 * replacement of database files (write a private temporary, fsync, rename,
 * fsync the directory), removal of what a replaced file makes stale, clean-up of
 * what a killed run left behind, and the prune of freshclam-behavior.md §4.1.
 * A valid database is in the directory at every instant. */
#ifndef CLAMFRESH_INSTALL_H
#define CLAMFRESH_INSTALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "clamfresh/err.h"

#define CF_LOCK_NAME "clamfresh.lock"

/* freshclam has no code for "directory busy"; a run that cannot get the lock
 * fails like any other initialisation problem (FC_EINIT). */
#define CF_LOCK_EXIT 2

typedef struct cf_dblock {
    int fd;          /* -1 when not held */
    time_t acquired; /* when the lock was obtained */
    char path[4096];
} cf_dblock;

/* Takes an exclusive fcntl write lock on <dbdir>/clamfresh.lock (created 0644),
 * polling for up to timeout_s seconds (0 = one try). The holder's PID is written
 * into the file. On timeout fails with CF_EIO and the message
 * "Another clamfresh or freshclam update is running in <dir> (lock held by PID n);
 * giving up after N seconds." and *holder (may be NULL) receives that PID.
 * The lock is released by cf_install_unlock or when the process ends, so a
 * killed run never leaves the directory locked. */
cf_code cf_install_lock(const char *dbdir, unsigned timeout_s, cf_dblock *lk, pid_t *holder, cf_err *e);
void cf_install_unlock(cf_dblock *lk);

/* Replaces <dbdir>/<name> with data atomically: creates <dbdir>/.<name>.<random>.tmp
 * (O_EXCL, mode 0644 minus umask), writes, fsyncs, renames over the target and
 * fsyncs the directory. On failure the old file is untouched and the temporary
 * is removed. name must be a bare file name (cf_name_ok). */
cf_code cf_install_file(const char *dbdir, const char *name, const void *data, size_t n, cf_err *e);

/* Installs database db as <db>.<ext> (ext "cvd" or "cld") with cf_install_file,
 * then removes what the new file makes stale: the other container (<db>.cld
 * for a cvd and vice versa) and every <db>-*.sign, except that when sign is
 * non-NULL it is installed first as <db>-<version>.cvd.sign (only for a cvd)
 * and kept. The directory is fsynced after the removals. Failing to remove a
 * stale file is reported in e but the install itself stands: *stale_err
 * (may be NULL) is set to 1 and CF_OK is returned. */
cf_code cf_install_db(const char *dbdir, const char *db, const char *ext, const void *data, size_t n,
                      const void *sign, size_t sign_len, uint32_t version, int *stale_err, cf_err *e);

/* The commit step of a staged install: staged is a complete, fsynced, verified
 * (and, when wanted, load-tested) file on the same file system as dbdir; it is
 * renamed over <dbdir>/<db>.<ext>, the directory is fsynced, and the stale files
 * are removed as by cf_install_db (sign, when non-NULL, is installed first as
 * <db>-<version>.cvd.sign). No second copy of the database is written. */
/* Renames a staged, fsynced file over <dbdir>/<name> and fsyncs the directory
 * (name must be a bare file name, cf_name_ok). */
cf_code cf_install_file_commit(const char *dbdir, const char *name, const char *staged, cf_err *e);

cf_code cf_install_db_commit(const char *dbdir, const char *db, const char *ext, const char *staged,
                             const void *sign, size_t sign_len, uint32_t version, int *stale_err, cf_err *e);

/* Removes what a killed run left in dbdir: our temporaries (".*.tmp" with the
 * shape cf_install_file uses, files or directories such as a run's private
 * ".clamfresh.<random>.tmp" directory) always - call it while holding the lock - and
 * freshclam-style "tmp.<hex>" directories whose mtime is before older_than
 * (a live freshclam does not take our lock, so its directory is spared when
 * it is recent). report (may be NULL) is called with each removed name. */
cf_code cf_install_cleanup(const char *dbdir, time_t older_than, void (*report)(void *arg, const char *name),
                           void *arg, cf_err *e);

/* Prune (§4.1): deletes every entry whose name contains ".cvd" or ".cld"
 * unless its base name (text before the first '-', else before the first
 * ".cvd"/".cld") is a prefix of one of keep[0..nkeep). report (may be NULL) is
 * called with each name before it is removed; a failed removal is skipped. */
cf_code cf_install_prune(const char *dbdir, const char *const *keep, size_t nkeep,
                         void (*report)(void *arg, const char *name), void *arg, cf_err *e);

/* Nonzero when name has the shape of a temporary made by cf_install_file. */
int cf_install_is_temp(const char *name);

#endif
