/* External `.sign` files of ClamAV 1.5+: detached PKCS#7 signatures checked
 * against a directory of trusted certificates (formats.md §7, gotcha 10).
 *
 * cf_certstore_load is the only function here that touches the file system;
 * verifying and making `.sign` texts work on bytes. */
#ifndef CLAMFRESH_CODESIGN_H
#define CLAMFRESH_CODESIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

#define CF_SIGN_HEADER "#clamsign-1.0"
#define CF_SIGN_MIN_FLEVEL 230                /* first f-level that reads `.sign` files (§7.2) */
#define CF_SIGN_MAX_B64 (256UL * 1024)        /* base64 text of one signature line */
#define CF_MAX_CERTFILE_BYTES (1024UL * 1024) /* one .crt/.pem file in the certs directory */
#define CF_SIGN_SIGNER_MAX 256                /* a comfortable size for the signer buffer */

/* The trusted certificates of a certs directory (§7.4, §7.5). Immutable after
 * loading, so one store may serve concurrent verifications. */
typedef struct cf_certstore cf_certstore;

/* An empty store (trusts nothing until certificates are added). */
cf_code cf_certstore_new(cf_certstore **out, cf_err *e);

/* Adds every certificate of a PEM text as a trust anchor. `origin` names the
 * source in messages (a file name). Text outside PEM blocks is ignored, as
 * ClamAV does, so a text with no certificate adds nothing and succeeds.
 * Fails with CF_EFORMAT on a damaged certificate block, a certificate without
 * a subject CN, or a CN already present in the store (ClamAV refuses those). */
cf_code cf_certstore_add_pem(cf_certstore *s, const uint8_t *pem, size_t n, const char *origin, cf_err *e);

/* Loads every regular file (symlinks followed) of dir whose name ends exactly
 * in ".crt" or ".pem" (case-sensitive, with a non-empty stem), in name order,
 * with cf_certstore_add_pem. Fails, naming the directory or file, on a missing
 * or unreadable directory (CF_EIO/CF_ENOTFOUND), an unreadable or oversized
 * file, or any cf_certstore_add_pem failure. An empty result is not an error:
 * use cf_certstore_count to warn about it. */
cf_code cf_certstore_load(const char *dir, cf_certstore **out, cf_err *e);

/* Number of trusted certificates. */
size_t cf_certstore_count(const cf_certstore *s);

void cf_certstore_free(cf_certstore *s);

/* The certs directory when none is configured: $CVD_CERTS_DIR if set and
 * non-empty, else "/etc/clamav/certs" (§7.5). */
const char *cf_certstore_default_dir(void);

typedef enum cf_signverdict {
    CF_SIGN_VALID,    /* a signature line for this f-level verified */
    CF_SIGN_INVALID,  /* PKCS#7 verification failed: hard failure, no fallback */
    CF_SIGN_UNUSABLE, /* cannot verify: fall back to the legacy signature (§7.4) */
} cf_signverdict;

/* "valid", "invalid", "unusable". */
const char *cf_signverdict_str(cf_signverdict v);

/* Verifies the text of a `.sign` file against the signed bytes `data`.
 *
 * UNUSABLE: text larger than CF_MAX_SIGN_BYTES, no `#clamsign-1.0` first line,
 * a signature line that does not parse (fields, min f-level < 230, max < min,
 * base64, DER) - which spoils the whole file, as in ClamAV - or no line whose
 * f-level range holds `flevel`, or a PKCS#7 that is not signed data or does not
 * carry its signer's certificate.
 * INVALID: the first line for `flevel` failed PKCS7_verify (digest, chain to
 * the store, S/MIME signing purpose, validity at `now`).
 * VALID: the signer CN(s), joined by ", ", are copied into signer (when not NULL).
 *
 * now: time for certificate validity checks, 0 = the current time.
 * e (may be NULL) always receives a message saying why; e->code is CF_OK for
 * VALID, CF_ESIG for INVALID, and CF_EFORMAT/CF_ETOOBIG/CF_ENOTFOUND/
 * CF_EUNSUPP for UNUSABLE. */
cf_signverdict cf_signfile_verify(const cf_certstore *s, const uint8_t *sign, size_t sign_len,
                                  const uint8_t *data, size_t data_len, unsigned flevel, time_t now,
                                  char *signer, size_t signer_sz, cf_err *e);

/* Signed bytes that are not in memory: n bytes, read in chunks from offset 0
 * through read (up to len bytes at off into out; returns the count, 0 at the
 * end, -1 on a read error). */
typedef struct cf_signsrc {
    size_t n;
    long (*read)(void *arg, uint8_t *out, size_t len, uint64_t off);
    void *arg;
} cf_signsrc;

/* cf_signfile_verify over the bytes src delivers: the same verdicts and
 * messages as for the same bytes in memory; a read error during the check
 * makes it INVALID. */
cf_signverdict cf_signfile_verify_src(const cf_certstore *s, const uint8_t *sign, size_t sign_len,
                                      const cf_signsrc *src, unsigned flevel, time_t now, char *signer,
                                      size_t signer_sz, cf_err *e);

/* In the store layer (dbcheck.c): cf_signfile_verify over the bytes of the
 * regular file open on fd, read in
 * chunks from offset 0 with pread (the descriptor's position is not used or
 * moved): the same verdicts and messages as for the same bytes in memory.
 * A file that cannot be examined (fstat fails, not a regular file) is
 * UNUSABLE with CF_EIO; a read error during the check makes it INVALID. */
cf_signverdict cf_signfile_verify_fd(const cf_certstore *s, const uint8_t *sign, size_t sign_len, int fd,
                                     unsigned flevel, time_t now, char *signer, size_t signer_sz, cf_err *e);

/* Makes a `.sign` text for data: the header line and one
 * "<min_flevel>::pkcs7-pem:<base64 DER>" line, each ending in "\n". The
 * PKCS#7 is detached, binary, SHA-256, signed by the first certificate of
 * cert_pem with key_pem (unencrypted PEM private key); every certificate of
 * chain_pem (may be NULL/0) is embedded so verifiers can build the chain.
 * min_flevel must be >= CF_SIGN_MIN_FLEVEL. Appends to out. */
cf_code cf_signfile_make(const uint8_t *data, size_t data_len, const uint8_t *cert_pem, size_t cert_len,
                         const uint8_t *key_pem, size_t key_len, const uint8_t *chain_pem, size_t chain_len,
                         unsigned min_flevel, cf_buf *out, cf_err *e);

/* Name of the `.sign` file of a CVD of database db at header version v
 * ("daily-27500.cvd.sign"), or of the cdiff db-v ("daily-27501.cdiff.sign").
 * db must be a non-empty name without '/', '\\', '-' or '.'. Returns 0, or -1
 * when db is unacceptable or out is too small. */
int cf_signfile_name_cvd(const char *db, uint32_t version, char *out, size_t outsz);
int cf_signfile_name_cdiff(const char *db, uint32_t version, char *out, size_t outsz);

#endif
