/* ClamAV's RSA signature schemes (formats.md §4): the CV64 integer text
 * encoding, the legacy MD5 `dsig` of CVD headers, and the SHA-256 PSS-like
 * scheme of `.info` DSIG lines and cdiff trailers. Pure functions over bytes;
 * only cf_rsakey_load_pem_file and cf_trust_load read files. */
#ifndef CLAMFRESH_DSIG_H
#define CLAMFRESH_DSIG_H

#include <stddef.h>
#include <stdint.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

/* Longest signature text any verifier accepts. Production signatures are
 * 170-171 (legacy) and 341-342 (PSS) characters; a 4096-bit key gives 683. */
#define CF_SIG_MAX_CHARS 1024

/* Largest PEM key text accepted (a 16384-bit private key is about 12 KiB). */
#define CF_MAX_PEM_BYTES 65536

/* Opaque RSA key: modulus N, public exponent E and, optionally, the private key. */
typedef struct cf_rsakey cf_rsakey;

/* The three roles a key plays; each has its own built-in ClamAV public key. */
typedef enum cf_keyrole { CF_KEY_CVD, CF_KEY_INFO, CF_KEY_CDIFF } cf_keyrole;

/* ClamAV's built-in public keys (§4.2 CVD dsig, §4.3 .info and cdiff). */
cf_code cf_rsakey_builtin(cf_keyrole role, cf_rsakey **out, cf_err *e);

/* Parses a PEM public key (SubjectPublicKeyInfo or PKCS#1) or unencrypted
 * private key (PKCS#8 or PKCS#1); RSA only, modulus of 512..16384 bits
 * (each signing scheme and cf_trust_load ask for more). */
cf_code cf_rsakey_from_pem(const uint8_t *pem, size_t n, cf_rsakey **out, cf_err *e);

/* Reads a PEM file, then cf_rsakey_from_pem; error messages name the file. */
cf_code cf_rsakey_load_pem_file(const char *path, cf_rsakey **out, cf_err *e);

/* Generates a private key of 1024..8192 bits with exponent 65537 (for
 * tests and `cvdtool keygen`). */
cf_code cf_rsakey_generate(int bits, cf_rsakey **out, cf_err *e);

/* Appends the PEM text of the public key (SubjectPublicKeyInfo) or, when
 * private_part is nonzero, of the private key (PKCS#8, unencrypted). */
cf_code cf_rsakey_write_pem(const cf_rsakey *k, int private_part, cf_buf *out, cf_err *e);

/* Nonzero when k holds a private exponent. */
int cf_rsakey_can_sign(const cf_rsakey *k);

/* Size of the modulus in bits. */
int cf_rsakey_bits(const cf_rsakey *k);

/* Accepts NULL. */
void cf_rsakey_free(cf_rsakey *k);

/* Human name of a role ("CVD", ".info", "cdiff") for messages. */
const char *cf_keyrole_name(cf_keyrole role);

/* CV64 (§4.1): big-endian magnitude <-> ClamAV radix-64 string, least
 * significant digit first. Encode appends minimal text (leading zero bytes
 * carry no digits; zero encodes as "a") and NUL-terminates it (NUL not
 * counted in out->n). Decode replaces be_out with the minimal big-endian bytes
 * (zero decodes to no bytes); len must be 1..CF_SIG_MAX_CHARS. */
cf_code cf_cv64_encode(const uint8_t *be, size_t n, cf_buf *out, cf_err *e);
cf_code cf_cv64_decode(const char *s, size_t len, cf_buf *be_out, cf_err *e);

/* Legacy MD5 dsig (§4.2). md5hex: the 32 lowercase hex chars computed over
 * the body; sig: NUL-terminated CV64 text. CF_ESIG when it does not verify. */
cf_code cf_dsig_verify_md5(const cf_rsakey *k, const char *md5hex, const char *sig, cf_err *e);

/* Textbook RSA of the MD5 as an integer with the private exponent (key of
 * at least 1024 bits). sig_out is replaced by the minimal CV64 text,
 * NUL-terminated (NUL not counted). The result is verified before return. */
cf_code cf_dsig_sign_md5(const cf_rsakey *k, const uint8_t md5[16], cf_buf *sig_out, cf_err *e);

/* cli_versig2 RSA-PSS/SHA-256 scheme (§4.3), computed by hand with
 * BN_mod_exp exactly as steps 1-7 say (OpenSSL's stock PSS verify rejects
 * genuine signatures made with the 2047-bit production keys, §10 gotcha 2). */
cf_code cf_pss_verify(const cf_rsakey *k, const uint8_t digest[32], const char *sig, cf_err *e);

/* Builds EM by hand (32-byte random salt) and retries until EM < N and
 * EM[0] != 0, so the result also loads in ClamAV 1.1-1.4 (§4.3). The key's
 * modulus must have 2047..4096 bits. sig_out is replaced as for
 * cf_dsig_sign_md5, and the result is verified before return. */
cf_code cf_pss_sign(const cf_rsakey *k, const uint8_t digest[32], cf_buf *sig_out, cf_err *e);

/* The trust configuration: which public key checks which signature. */
typedef struct cf_trust {
    cf_rsakey *cvd, *info, *cdiff;
} cf_trust;

/* Fills t with the three built-in keys. On failure t holds no keys. */
cf_code cf_trust_init_builtin(cf_trust *t, cf_err *e);

/* Replaces keys from PEM files; a NULL path keeps the current key for that
 * role. Keys under 1024 bits are refused. All files are read before any key
 * is replaced, so on failure t is unchanged. */
cf_code cf_trust_load(cf_trust *t, const char *cvd_pem, const char *info_pem, const char *cdiff_pem,
                      cf_err *e);

/* Frees the keys and sets the pointers to NULL; accepts a zeroed struct. */
void cf_trust_free(cf_trust *t);

#endif
