/* Shared between the verifying side of codesign.h (codesign.c, format layer)
 * and its signing side (signfile.c, publish layer): OpenSSL helpers. */
#ifndef CLAMFRESH_CODESIGN_PRIV_H
#define CLAMFRESH_CODESIGN_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

#include "clamfresh/codesign.h"

/* Drains the thread's OpenSSL error queue into text ("reason (data); ..."). */
void cf_codesign_ossl_errors(char *out, size_t outsz);

/* A read-only memory BIO over len bytes (p may be NULL when len is 0). */
BIO *cf_codesign_mem_bio(const uint8_t *p, size_t len);

/* Reads all certificates of a PEM text into a new stack; stops cleanly at "no
 * more PEM blocks", any other failure is a damaged block (origin names it). */
cf_code cf_codesign_pem_certs(const uint8_t *pem, size_t n, const char *origin, STACK_OF(X509) * *out,
                              cf_err *e);

#endif
