/* Shared plumbing of the cvdtool subcommands: reading databases through the
 * trust path, key and certificate options, and writing outputs safely. */
#ifndef CVDTOOL_TOOL_H
#define CVDTOOL_TOOL_H

#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/codesign.h"
#include "clamfresh/dsig.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"
#include "clamfresh/verify.h"

/* Exit statuses of every subcommand. */
enum { TOOL_OK = 0, TOOL_INVALID = 1, TOOL_USAGE = 2, TOOL_ERROR = 3 };

/* Verification settings shared by the commands that read databases. */
typedef struct tool_trust {
    const char *trust_key; /* --trust-key: one PEM for all three roles */
    const char *certsdir;  /* --certsdir: .sign trust anchors; NULL = no .sign checks */
    unsigned flevel;       /* --flevel for .sign line selection */
    int no_verify;         /* --no-verify */
    cf_trust keys;
    cf_certstore *certs;
    cf_verifyctx ctx;
} tool_trust;

/* Long options every reading command accepts; handled by tool_trust_opt. */
#define TOOL_TRUST_LONGOPTS                                                                                  \
    {"trust-key", required_argument, NULL, 0x100}, {"certsdir", required_argument, NULL, 0x101},             \
        {"flevel", required_argument, NULL, 0x102},                                                          \
    {                                                                                                        \
        "no-verify", no_argument, NULL, 0x103                                                                \
    }
#define TOOL_TRUST_HELP                                                                                      \
    "  --trust-key FILE  verify with the public key in FILE instead of ClamAV's built-in keys\n"             \
    "  --certsdir DIR    check detached .sign files against the certificates in DIR\n"                       \
    "  --flevel N        engine f-level used to pick .sign lines (default 230)\n"                            \
    "  --no-verify       read without checking any signature (inspection only)\n"

/* Returns 1 when opt was one of the trust options (and records it), 0 otherwise. */
int tool_trust_opt(tool_trust *t, int opt, const char *arg);
int tool_trust_setup(tool_trust *t);
void tool_trust_free(tool_trust *t);

/* Kinds of files the tool reads, decided by content, then by name. */
typedef enum { TOOL_KIND_CVD, TOOL_KIND_CLD, TOOL_KIND_CDIFF, TOOL_KIND_UNKNOWN } tool_kind;
tool_kind tool_kind_of(const char *path, const cf_buf *data);

/* Reads a CVD or CLD into img through the trust path (or without it under
 * --no-verify); a CVD's .sign beside it is used when present. Prints the
 * reason on failure and returns TOOL_INVALID or TOOL_ERROR. */
int tool_load_database(tool_trust *t, const char *path, cf_image *img, cf_sigsource *how);

/* Reads a cdiff (and PATH.sign when present) and returns its verified script. */
int tool_load_cdiff(tool_trust *t, const char *path, cf_buf *script, uint32_t *version, cf_sigsource *how);

/* Reads a private key for signing; prints the reason on failure. */
cf_rsakey *tool_load_signing_key(const char *path);

/* Writes data to path through a temporary file and a rename, so a reader never
 * sees a half-written output. mode as for open(2). */
int tool_write_file(const char *path, const void *data, size_t n, unsigned mode);

/* "daily" for ".../daily-27500.cvd" or ".../daily.cld". */
void tool_dbname_from_path(const char *path, char *out, size_t outsz);

const char *tool_sigsource_str(cf_sigsource how);

int tool_parse_u32(const char *s, uint32_t *out);
/* tool_parse_u32 for the argument of option opt; says what is wrong on failure. */
int tool_opt_u32(const char *opt, const char *arg, uint32_t *out);

void tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_unpack(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_keygen(int argc, char **argv);

#endif
