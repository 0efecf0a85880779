/* The verification record: which database files in DatabaseDirectory were
 * last verified in full, as which file (size, mtime and ctime to the
 * nanosecond, inode, device), at what time and at which version. It lets the
 * updater skip the full check of an up-to-date database whose file is the one
 * it verified less than CF_VRECORD_MAX_AGE ago, and check it again as soon as
 * anything about the file changes, so a damaged database at the advertised
 * version is found instead of being reported "up-to-date" forever.
 *
 * The file, <dir>/clamfresh-verified.state, is text:
 *     clamfresh-verified 1
 *     NAME SIZE MTIME.NSEC CTIME.NSEC INODE DEVICE VERIFIED-AT VERSION
 * one line per file (decimal numbers; times in Unix seconds, nanoseconds as 9
 * digits). It is only ever a reason to skip work, never to trust a file: any
 * line that is not exactly of this shape, a name that occurs twice, a line cut
 * short, or a file with another first line is dropped, and a dropped entry
 * only means a full verification. */
#ifndef CLAMFRESH_VRECORD_H
#define CLAMFRESH_VRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

#define CF_VRECORD_FILE "clamfresh-verified.state"
#define CF_VRECORD_HEADER "clamfresh-verified 1"
#define CF_VRECORD_MAX_AGE (24 * 3600)   /* verify in full at least this often */
#define CF_VRECORD_MAX_ENTRIES 256       /* further entries are dropped */
#define CF_VRECORD_MAX_NAME 99           /* as CF_MAX_NAME */
#define CF_VRECORD_MAX_LINE 512          /* a longer line is dropped */
#define CF_VRECORD_MAX_BYTES (64 * 1024) /* a bigger file is ignored */

typedef struct cf_vrecord_entry {
    char name[CF_VRECORD_MAX_NAME + 1];
    uint64_t size;
    int64_t mtime_sec, ctime_sec;
    long mtime_nsec, ctime_nsec;
    uint64_t ino, dev;
    int64_t verified_at; /* >= 0 */
    uint32_t version;
} cf_vrecord_entry;

typedef struct cf_vrecord {
    cf_vrecord_entry *v;
    size_t n, cap;
} cf_vrecord;

#define CF_VRECORD_INIT                                                                                      \
    {                                                                                                        \
        NULL, 0, 0                                                                                           \
    }

/* Pure: the entries of the record text p[0..n) (see above), appended to an
 * empty r. Garbage is dropped, never an error: CF_OK, or CF_ENOMEM. */
cf_code cf_vrecord_parse(const uint8_t *p, size_t n, cf_vrecord *r);

/* Pure: the record as text that cf_vrecord_parse reads back unchanged. */
cf_code cf_vrecord_format(const cf_vrecord *r, cf_buf *out);

/* Reads <dir>/clamfresh-verified.state into r (initialised here; free it with
 * cf_vrecord_free in every case). A missing file is an empty record (CF_OK).
 * A file that cannot be used - a symbolic link, FIFO or other non-regular file
 * (CF_EUNSUPP), bigger than CF_VRECORD_MAX_BYTES (CF_ETOOBIG), unreadable
 * (CF_EIO) - leaves r empty and returns the code with e->msg naming the file
 * and the reason; the caller logs it and goes on (everything is verified in
 * full, and the next save replaces the file). */
cf_code cf_vrecord_load(const char *dir, cf_vrecord *r, cf_err *e);

/* 1 when r holds name with the identity in st (size, mtime and ctime to the
 * nanosecond, inode, device) and version, verified at most CF_VRECORD_MAX_AGE
 * seconds before now and not after now (a clock that went backwards proves
 * nothing); else 0. */
int cf_vrecord_fresh(const cf_vrecord *r, const char *name, const struct stat *st, uint32_t version,
                     time_t now);

/* Records that the file name with identity st was verified in full at version
 * at time now, replacing an earlier entry for name. CF_EINVAL for a name the
 * file format cannot hold (not 1..99 of [A-Za-z0-9._-], or starting with '.'),
 * or now < 0; CF_ETOOBIG when r already holds CF_VRECORD_MAX_ENTRIES others;
 * CF_ENOMEM. */
cf_code cf_vrecord_put(cf_vrecord *r, const char *name, const struct stat *st, uint32_t version, time_t now);

/* Drops name from r (a failed verification, a removed database). */
void cf_vrecord_forget(cf_vrecord *r, const char *name);

/* Writes r to <dir>/clamfresh-verified.state with cf_file_replace_db (temporary,
 * fsync, rename, fsync of dir). On failure: "Can't create
 * clamfresh-verified.state in <dir>: <reason>". */
cf_code cf_vrecord_save(const char *dir, const cf_vrecord *r, cf_err *e);

void cf_vrecord_free(cf_vrecord *r);

/* The whole round for one file, for callers that keep no record in hand. */

/* 1 when the open file fd, dir/name, is the very file verified in full at
 * version within CF_VRECORD_MAX_AGE before now (cf_vrecord_fresh); else 0.
 * A record that cannot be read counts as none. */
int cf_vrecord_fresh_fd(const char *dir, const char *name, int fd, uint32_t version, time_t now);

/* After a full verification of dir/name: ok != 0 records it at version with
 * its identity (fd when >= 0, else the file as it is now on disk); ok == 0
 * forgets it. Then saves the record. */
cf_code cf_vrecord_note(const char *dir, const char *name, int fd, uint32_t version, int ok, time_t now,
                        cf_err *e);

#endif
