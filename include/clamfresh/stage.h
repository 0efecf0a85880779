/* Staged files and the database directory as the updater sees them (store
 * layer): the files a download or a patch pass writes into a run's private
 * directory, the header of an installed database, and whether a file is
 * there. The updater reaches the disk only through these, install.h and
 * vrecord.h; nothing here decides anything. */
#ifndef CLAMFRESH_STAGE_H
#define CLAMFRESH_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/cvd.h"
#include "clamfresh/err.h"

/* A new file at path for reading and writing, never through a link; a
 * leftover of that name is removed first. Returns the descriptor, or -1 with
 * "Can't create PATH: reason". */
int cf_stage_create(const char *path, cf_err *e);

/* Makes the run's private directory (mode 0700) unless it is there already as
 * a directory of ours. CF_EIO with freshclam's words when it cannot be. */
cf_code cf_stage_dir(const char *path, cf_err *e);

/* The file at path for reading, never through a link or a FIFO. -1 on failure. */
int cf_stage_open(const char *path, cf_err *e);

/* Flushes fd (the file at path) to disk. */
cf_code cf_stage_sync(int fd, const char *path, cf_err *e);

/* Renames from to to (same file system). */
cf_code cf_stage_rename(const char *from, const char *to, cf_err *e);

/* Removes path if it is there; closes fd when it is >= 0. */
void cf_stage_discard(const char *path);
void cf_stage_close(int fd);

/* The header of dir/name (a CVD or CLD), read without following a link.
 * Returns 1 and fills *h when it parses, else 0. */
int cf_stage_read_header(const char *dir, const char *name, cf_cvdhdr *h);

/* Header of dbdir/<db>.cvd, else of dbdir/<db>.cld (freshclam-behavior.md §4.3).
 * Returns 1 and fills *hdr and file ("<db>.cvd"/"<db>.cld", 64 bytes) when one
 * is readable, else 0. */
int cf_stage_local_header(const char *dbdir, const char *db, cf_cvdhdr *hdr, char *file);

/* Nonzero when dir/name is a regular file (not followed through a link). */
int cf_stage_exists(const char *dir, const char *name);

#endif
