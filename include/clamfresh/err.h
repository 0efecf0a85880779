/* One error type for the whole library: a code for programs to branch on and a
 * message for people that says what failed and where (file, offset, line). */
#ifndef CLAMFRESH_ERR_H
#define CLAMFRESH_ERR_H

#include <stddef.h>

typedef enum cf_code {
    CF_OK = 0,
    CF_EINVAL,  /* a caller passed something unusable */
    CF_EFORMAT, /* input bytes are malformed */
    CF_ETOOBIG, /* input exceeds a size bound */
    CF_ESIG,    /* a signature, hash or manifest check failed */
    CF_ENOMEM,
    CF_EIO,       /* a file-system operation failed */
    CF_ENOTFOUND, /* a named thing does not exist */
    CF_ENET,      /* transport failure */
    CF_EHTTP,     /* unexpected HTTP status */
    CF_EUNSUPP,   /* valid input we do not handle */
} cf_code;

#define CF_ERR_MSG 512

typedef struct cf_err {
    cf_code code;
    char msg[CF_ERR_MSG];
} cf_err;

/* Records code and message in *e (which may be NULL) and returns code, so that
 * failure paths read `return cf_err_set(e, CF_EFORMAT, "...", ...);`. */
cf_code cf_err_set(cf_err *e, cf_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends context ("test.cvd: ") to an already recorded message. */
void cf_err_prefix(cf_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void cf_err_clear(cf_err *e);

/* Short English name of a code ("malformed input", ...). */
const char *cf_code_str(cf_code code);

#endif
