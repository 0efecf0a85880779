/* Shared helpers for the cmocka unit tests. */
#ifndef CF_TESTUTIL_H
#define CF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clamfresh/buf.h"
#include "clamfresh/cdiff.h"

/* Directory of the real ClamAV-signed vectors ($CF_VECTORS/clamav), or NULL
 * when they are not present (a user's own clone). */
const char *cf_test_vectors_dir(void);

/* Exits with 77 (ctest "skipped"), saying why, when the vectors are absent. */
void cf_test_require_vectors(void);

/* Reads $CF_VECTORS/clamav/<name>; fails the test if it cannot. */
void cf_test_read_vector(const char *name, cf_buf *out);

/* Reads any file; fails the test if it cannot. */
void cf_test_read_file(const char *path, cf_buf *out);

/* Creates a fresh private temporary directory and returns its path (malloc'd; the caller frees it). */
char *cf_test_mkdtemp(void);

/* Removes a directory tree (best effort). */
void cf_test_rmtree(const char *path);

/* A whole file as a NUL-terminated string (free it); fails the test if unreadable. */
char *cf_test_slurp(const char *path);

/* Captures what the code under test writes to stdout and stderr (file
 * descriptors 1 and 2) into files under dir; after cf_test_capture_end, out and
 * err hold the text (NUL-terminated). */
typedef struct cf_test_capture {
    int saved_out, saved_err;
    char out_path[4096], err_path[4096];
    char *out, *err;
} cf_test_capture;
void cf_test_capture_begin(cf_test_capture *c, const char *dir);
void cf_test_capture_end(cf_test_capture *c);
void cf_test_capture_free(cf_test_capture *c);

/* Deterministic pseudo-random numbers for property tests (xorshift). */
uint32_t cf_test_rand(void);
void cf_test_srand(uint32_t seed);

/* One downloaded .cdiff onto an image, the in-memory way: verify (when key is
 * not NULL), parse, apply. The reference the streaming applier is held to. */
cf_code cf_test_cdiff_patch(cf_image *img, const uint8_t *p, size_t n, const cf_rsakey *key, cf_err *e);

#endif
