/* Shared between rsakey.c and dsig.c: the layout behind the opaque cf_rsakey. */
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

/* s = m^d mod N with the private key (OpenSSL's raw RSA, which blinds and
 * uses CRT). m is big-endian, at most the modulus length, and must be < N;
 * out receives exactly the modulus length in bytes. */
cf_code cf_rsakey_private_op(const cf_rsakey *k, const uint8_t *m, size_t mlen, cf_buf *out, cf_err *e);

#endif
