/* Shared helpers for the cmocka unit tests. */
#ifndef CF_TESTUTIL_H
#define CF_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clamfresh/buf.h"

/* Directory of the real ClamAV-signed vectors ($CF_VECTORS/clamav), or NULL
 * when they are not present (a user's own clone). */
const char *cf_test_vectors_dir(void);

/* Exits with 77 (ctest "skipped"), saying why, when the vectors are absent. */
void cf_test_require_vectors(void);

/* Reads $CF_VECTORS/clamav/<name>; fails the test if it cannot. */
void cf_test_read_vector(const char *name, cf_buf *out);

/* Reads any file; fails the test if it cannot. */
void cf_test_read_file(const char *path, cf_buf *out);

/* Creates a fresh private temporary directory and returns its path (static storage per call). */
char *cf_test_mkdtemp(void);

/* Removes a directory tree (best effort). */
void cf_test_rmtree(const char *path);

/* Deterministic pseudo-random numbers for property tests (xorshift). */
uint32_t cf_test_rand(void);
void cf_test_srand(uint32_t seed);

#endif
