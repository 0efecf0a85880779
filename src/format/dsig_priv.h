/* Shared between the verifying side (rsakey.c, dsig.c in the format layer) and
 * the signing side (sign.c in the publish layer): the layout behind the opaque
 * cf_rsakey and the parameters of the two schemes. */
#ifndef CLAMFRESH_DSIG_PRIV_H
#define CLAMFRESH_DSIG_PRIV_H

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "clamfresh/dsig.h"

struct cf_rsakey {
    EVP_PKEY *pkey; /* always set; holds the private key when has_private */
    BIGNUM *n, *e;  /* copies for the hand-made public operation (BN_mod_exp) */
    int has_private;
    int bits;
};

/* Smallest and largest moduli we load or generate; each signing scheme
 * narrows this further. */
#define RSAKEY_MIN_BITS 512
#define RSAKEY_MAX_BITS 16384

#define MD5_LEN 16
#define SHA256_LEN 32
#define PSS_EM_LEN 256                           /* PAD_LEN */
#define PSS_DB_LEN (PSS_EM_LEN - SHA256_LEN - 1) /* BLK_LEN = 223 */
#define PSS_SALT_LEN 32
#define PSS_SEP_INDEX (PSS_DB_LEN - PSS_SALT_LEN - 1) /* the 0x01 before the salt: 190 */
#define PSS_TRAILER 0xBC

#define LEGACY_MIN_BITS 1024
#define LEGACY_MAX_BITS 16384
#define PSS_MIN_BITS 2047 /* EM is 2047 bits at most once its top bit is cleared */
#define PSS_MAX_BITS 4096
/* Each attempt succeeds with probability > 1/2 (EM < N for a 2047-bit N) times
 * 127/128 (EM[0] != 0), so this many failures in a row means a broken RNG or key. */
#define PSS_SIGN_ATTEMPTS 200

/* Wraps pkey (taking ownership) after checking that it is a usable RSA key. */
cf_code cf_rsakey_wrap(EVP_PKEY *pkey, cf_rsakey **out, cf_err *e);

/* ": <OpenSSL's reason>" for the last queued error (cleared), or "". */
const char *cf_rsakey_ossl_reason(void);

/* MGF1 with SHA-256 and a 4-byte big-endian counter (§4.3 step 4). */
cf_code cf_dsig_mgf1(const uint8_t seed[SHA256_LEN], uint8_t *mask, size_t n, cf_err *e);

/* H = SHA256(8 zero bytes || mHash || salt) (§4.3 step 7). */
cf_code cf_dsig_pss_hash(const uint8_t digest[SHA256_LEN], const uint8_t salt[PSS_SALT_LEN],
                         uint8_t out[SHA256_LEN], cf_err *e);

/* n bytes as 2n lowercase hex digits and a NUL. */
void cf_dsig_hex_lower(const uint8_t *p, size_t n, char *out);

/* s = m^d mod N with the private key (OpenSSL's raw RSA, which blinds and
 * uses CRT). m is big-endian, at most the modulus length, and must be < N;
 * out receives exactly the modulus length in bytes. */
cf_code cf_rsakey_private_op(const cf_rsakey *k, const uint8_t *m, size_t mlen, cf_buf *out, cf_err *e);

#endif
