/* cdiff patches (formats.md §6): parse the container, check its RSA-PSS
 * trailer, apply a script to a database image, and, for publishers, generate a
 * script between two images and wrap it into a signed cdiff. Pure functions on
 * bytes and on cf_image. */
#ifndef CLAMFRESH_CDIFF_H
#define CLAMFRESH_CDIFF_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"

/* Declared again in dsig.h; C11 allows the repeated identical typedef. */
typedef struct cf_rsakey cf_rsakey;

#define CF_CDIFF_SIG_WINDOW 350 /* SIG_SIZE, §6.2 */

typedef struct cf_cdiff {
    uint32_t version;                  /* target version from the header (not authoritative, §6.3) */
    uint32_t script_len;               /* header size field; equals script.n after a successful parse */
    size_t gz_off;                     /* offset of the gzip member (just after the third ':') */
    size_t signed_len;                 /* bytes covered by the signature = offset of the ':' before it */
    char sig[CF_CDIFF_SIG_WINDOW + 1]; /* CV64 signature, NUL-terminated */
    cf_buf script;                     /* the decompressed script */
} cf_cdiff;

#define CF_CDIFF_INIT                                                                                        \
    {                                                                                                        \
        0, 0, 0, 0, {0}, CF_BUF_INIT                                                                         \
    }

/* Parses a .cdiff file: header "ClamAV-Diff:<version>:<len>:" (decimal u32s),
 * signature location by §6.2, and the gzip member, which must fill exactly the
 * bytes between the header and the ':' before the signature and inflate to
 * exactly <len> bytes (at most CF_MAX_SCRIPT_BYTES). Does not check the
 * signature. On success free with cf_cdiff_free. */
cf_code cf_cdiff_parse(const uint8_t *p, size_t n, cf_cdiff *d, cf_err *e);

/* Checks the in-file RSA-PSS signature (§6.2) with key (normally the built-in
 * CF_KEY_CDIFF key): SHA-256 of everything before the final ':'. */
cf_code cf_cdiff_verify(const uint8_t *p, size_t n, const cf_rsakey *key, cf_err *e);

/* Applies a script (§6.5) to img. Atomic: on any error img is unchanged.
 * Members keep their places; files created by the script are appended. */
cf_code cf_cdiff_apply(cf_image *img, const uint8_t *script, size_t n, cf_err *e);

/* Generates a script that turns oldimg's members into newimg's (§6.6, sigtool's
 * forms): per changed member OPEN, DEL/XCHG, ADD, CLOSE; new members
 * OPEN/ADD/CLOSE; removed members UNLINK at the end; a member is rewritten
 * (UNLINK, OPEN, ADD every line, CLOSE) when line edits cannot express the
 * change or when the rewrite is the smaller script. Memory is linear in the
 * member sizes and the search per member is bounded (see cdiff.c). Guarantee: after cf_cdiff_apply, the image
 * has the same set of member names as newimg with identical contents (member order may differ). Fails with
 * CF_EUNSUPP, naming the member, for what no script can express: changed or new contents with a CR or NUL
 * byte or without a final newline, a new empty member, names outside [A-Za-z0-9._]. Appends to script. */
cf_code cf_cdiff_make_script(const cf_image *oldimg, const cf_image *newimg, cf_buf *script, cf_err *e);

/* Wraps a script into a .cdiff (§6.1): header with version and script length,
 * gzip (level 9), ':' and the CV64 PSS signature made with key. Appends to out. */
cf_code cf_cdiff_build(const uint8_t *script, size_t n, uint32_t version, const cf_rsakey *key, cf_buf *out,
                       cf_err *e);

void cf_cdiff_free(cf_cdiff *d);

#endif
