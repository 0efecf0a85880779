/* Streaming cdiff patches (formats.md §6.5): a chain of cdiff scripts applied
 * to each database member in one pass over that member, as the members of the
 * local database stream past. The result is that of cf_cdiff_apply (cdiff.c)
 * run script by script on the whole image, with the same stricter-than-ClamAV
 * rules, plus the few listed at the top of patch.c.
 *
 * Memory is bounded by the scripts, not by the members: unedited spans go to
 * the sink as they arrive, edited lines are checked against their prefix as
 * they arrive (no line is buffered), and only the lines a MOVE carries from
 * one member to another are held, at most CF_MAX_MOVE_BYTES for the whole
 * chain at any time. Time grows with the bytes and the edits, barely with
 * the length of the chain: each byte is searched for newlines once, however
 * many scripts edit its member, and a script's stage costs a step per edit
 * and per piece of input (patch.c).
 *
 * Use: plan the chain once; stream every input member that the plan touches
 * through a cf_memberpatch (members the plan does not touch pass unchanged);
 * then run every touched name that was not in the input with exists = 0 (the
 * members the chain creates). A member that some MOVE feeds must wait until
 * its sources have ended (cf_patchplan_ready). Any failure fails the whole
 * chain: what a failed member already wrote to its sink must be discarded.
 * The member count of the result is the caller's to bound (CF_MAX_MEMBERS). */
#ifndef CLAMFRESH_PATCH_H
#define CLAMFRESH_PATCH_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"
#include "clamfresh/sink.h"

typedef struct cf_patchplan cf_patchplan;

/* Parses the chain (scripts[0] applies first; each is a decompressed,
 * already-verified script; the plan keeps its own copy of what it needs).
 * labels[i] names script i in messages (e.g. "daily-27001.cdiff"; labels or
 * labels[i] may be NULL: "script <i>"); every error message starts with the
 * label of the script at fault and names the member and the line. Syntax and
 * name rules are checked here, content rules while streaming. More than
 * CF_MAX_MEMBERS distinct touched names fail (CF_ETOOBIG) as soon as the limit
 * is crossed; MOVEs that form a cycle between members fail with CF_EUNSUPP. */
cf_code cf_patchplan_new(const cf_buf *scripts, const char *const *labels, size_t n, cf_patchplan **out,
                         cf_err *e);
void cf_patchplan_free(cf_patchplan *p);

/* 1 when the chain does anything to name (edit, add, unlink, MOVE source or
 * destination); an OPEN/CLOSE without edits or adds does nothing. */
int cf_patchplan_touches(const cf_patchplan *p, const char *name);

/* Touched names in first-mention order. */
size_t cf_patchplan_count(const cf_patchplan *p);
const char *cf_patchplan_name(const cf_patchplan *p, size_t i);

/* Whether name exists after the chain, given whether it existed before
 * (decidable from the scripts alone; content errors can still fail it). */
int cf_patchplan_exists_after(const cf_patchplan *p, const char *name, int exists_before);

/* 1 when every MOVE source feeding name has already ended successfully in this
 * plan's run (always 1 for a name no MOVE feeds). */
int cf_patchplan_ready(const cf_patchplan *p, const char *name);

typedef struct cf_memberpatch cf_memberpatch;

/* Starts one member: exists = the input has it (its bytes are then fed, in
 * any chunking); the patched bytes go to out as they are produced. Each
 * touched name runs once per plan, and only when ready (else CF_EINVAL). Fails
 * at once when the chain needs the member to exist where it does not (edits,
 * UNLINK, MOVE). */
cf_code cf_memberpatch_new(cf_patchplan *p, const char *name, int exists, const cf_sink *out,
                           cf_memberpatch **mp, cf_err *e);
cf_code cf_memberpatch_feed(cf_memberpatch *mp, const uint8_t *p, size_t n, cf_err *e);

/* Finishes the member (trailing ADDs and MOVEd lines, pending-edit and
 * final-newline checks); *exists_after says whether a member remains (when 0,
 * out received nothing). After a failure of feed or end the member is failed
 * for good. */
cf_code cf_memberpatch_end(cf_memberpatch *mp, int *exists_after, cf_err *e);
void cf_memberpatch_free(cf_memberpatch *mp);

#endif
