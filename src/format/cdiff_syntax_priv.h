/* The words of a cdiff script line (formats.md §6.5), shared by the in-memory
 * applier (cdiff.c) and the streaming one (patch.c) so both read scripts alike. */
#ifndef CLAMFRESH_CDIFF_SYNTAX_PRIV_H
#define CLAMFRESH_CDIFF_SYNTAX_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/err.h"
#include "clamfresh/limits.h"

/* OPEN/UNLINK/MOVE name rule: 1..CF_MAX_NAME bytes of [A-Za-z0-9._], not "."
 * or ".." (the stricter-than-ClamAV list at the top of cdiff.c). */
int cf_cdiff_name_ok(const uint8_t *s, size_t n);

/* The next space-delimited word of [*s, end): every space separates, so words
 * may be empty; *s == end + 1 afterwards marks "no more words". */
int cf_cdiff_next_word(const uint8_t **s, const uint8_t *end, const uint8_t **w, size_t *wn);

/* A 1-based line number: decimal digits, at most 19, not 0. */
cf_code cf_cdiff_lineno(const uint8_t *w, size_t n, size_t *out, cf_err *e);

/* A name by cf_cdiff_name_ok, copied into out; cmd names the command in the
 * error message. */
cf_code cf_cdiff_take_name(const uint8_t *w, size_t n, const char *cmd, char out[CF_MAX_NAME + 1], cf_err *e);

#endif
