/* SHA-256 of members of a file being written, computed on a second thread
 * while the writer goes on. The patch stream (dbpatch.c) hands over each
 * large edited member piece by piece as its bytes reach the file, so hashing
 * the output overlaps with reading, patching and writing instead of
 * following them. */
#ifndef CLAMFRESH_REHASH_PRIV_H
#define CLAMFRESH_REHASH_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/err.h"

typedef struct cf_rehash cf_rehash;

/* Starts the thread that reads fd (with pread: the caller's file offset is
 * untouched). NULL with e set when no thread can be had; the caller then
 * hashes inline. */
cf_rehash *cf_rehash_new(int fd, cf_err *e);

/* Members are hashed one after another: begin, any number of feeds, end
 * (keep 0 drops the member: its digest is never asked for, and a failure to
 * read it back is no failure).
 * begin returns the member's index (0, 1, ... in order), or -1 with e set
 * (more than CF_MAX_MEMBERS members). feed appends [off, off + len) of the
 * file to the member: bytes already written with pwrite that the caller
 * leaves as they are until cf_rehash_wait (or until it drops the member,
 * never asking for its digest). A feed may wait while the thread is far
 * behind: the queue is bounded. */
long cf_rehash_begin(cf_rehash *h, cf_err *e);
void cf_rehash_feed(cf_rehash *h, uint64_t off, uint64_t len);
void cf_rehash_end(cf_rehash *h, int keep);

/* Waits until everything handed over is hashed. CF_EIO (naming the range)
 * when some bytes could not be read back. */
cf_code cf_rehash_wait(cf_rehash *h, cf_err *e);

/* After a successful wait: the digest of member i. */
const uint8_t *cf_rehash_digest(const cf_rehash *h, long i);

/* Stops the thread (abandoning queued work) and frees h; NULL is fine. */
void cf_rehash_free(cf_rehash *h);

#endif
