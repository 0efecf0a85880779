/* The signing side of ClamAV's RSA schemes (formats.md §4.2 legacy MD5 dsig,
 * §4.3 PSS/SHA-256) and of our keys: generation, PEM export and the private
 * operation. cvdtool's; the updater only verifies (dsig.c, rsakey.c). */
#include "dsig_priv.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>

/* ---- keys ---- */

cf_code cf_rsakey_generate(int bits, cf_rsakey **out, cf_err *e)
{
    if (out == NULL)
        return cf_err_set(e, CF_EINVAL, "key generation: missing output");
    *out = NULL;
    if (bits < 1024 || bits > 8192)
        return cf_err_set(e, CF_EINVAL, "key generation: %d bits requested; use 1024 to 8192", bits);
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) <= 0 ||
        EVP_PKEY_generate(ctx, &pkey) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return cf_err_set(e, CF_ENOMEM, "key generation failed%s", cf_rsakey_ossl_reason());
    }
    EVP_PKEY_CTX_free(ctx);
    return cf_rsakey_wrap(pkey, out, e);
}

cf_code cf_rsakey_write_pem(const cf_rsakey *k, int private_part, cf_buf *out, cf_err *e)
{
    if (k == NULL || out == NULL)
        return cf_err_set(e, CF_EINVAL, "PEM export: missing argument");
    if (private_part && !k->has_private)
        return cf_err_set(e, CF_EINVAL, "PEM export: the key has no private part");
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return cf_err_set(e, CF_ENOMEM, "PEM export: out of memory");
    int ok = private_part ? PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(bio, k->pkey);
    cf_code rc = CF_OK;
    char *data = NULL;
    long len = ok ? BIO_get_mem_data(bio, &data) : 0;
    if (!ok || len <= 0)
        rc = cf_err_set(e, CF_ENOMEM, "PEM export failed%s", cf_rsakey_ossl_reason());
    else if (cf_buf_append(out, data, (size_t)len) != CF_OK)
        rc = cf_err_set(e, CF_ENOMEM, "PEM export: out of memory");
    if (private_part && len > 0)
        OPENSSL_cleanse(data, (size_t)len);
    BIO_free(bio);
    return rc;
}

cf_code cf_rsakey_private_op(const cf_rsakey *k, const uint8_t *m, size_t mlen, cf_buf *out, cf_err *e)
{
    size_t size = (size_t)EVP_PKEY_get_size(k->pkey);
    if (mlen > size)
        return cf_err_set(e, CF_EINVAL, "RSA input of %zu bytes exceeds the modulus", mlen);
    /* Raw RSA wants the input exactly as long as the modulus. */
    uint8_t in[RSAKEY_MAX_BITS / 8];
    memset(in, 0, size - mlen);
    memcpy(in + size - mlen, m, mlen);

    cf_code rc = CF_OK;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    size_t outlen = size;
    out->n = 0;
    if (cf_buf_reserve(out, size) != CF_OK) {
        rc = cf_err_set(e, CF_ENOMEM, "RSA signing: out of memory");
    } else if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0 ||
               EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) <= 0 ||
               EVP_PKEY_sign(ctx, out->p, &outlen, in, size) <= 0 || outlen != size) {
        rc = cf_err_set(e, CF_ESIG, "RSA private-key operation failed%s", cf_rsakey_ossl_reason());
    } else {
        out->n = outlen;
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* ---- signatures ---- */

/* Common checks before a private-key operation. */
static cf_code sign_check_key(const cf_rsakey *k, int min_bits, int max_bits, const char *scheme, cf_err *e)
{
    if (!k->has_private)
        return cf_err_set(e, CF_EINVAL, "%s signing: the key is public only; a private key is needed",
                          scheme);
    if (k->bits < min_bits || k->bits > max_bits)
        return cf_err_set(e, CF_EUNSUPP, "%s signing: needs a %d to %d-bit RSA key, this one has %d bits",
                          scheme, min_bits, max_bits, k->bits);
    return CF_OK;
}

cf_code cf_dsig_sign_md5(const cf_rsakey *k, const uint8_t md5[16], cf_buf *sig_out, cf_err *e)
{
    if (k == NULL || md5 == NULL || sig_out == NULL)
        return cf_err_set(e, CF_EINVAL, "legacy signing: missing argument");
    cf_code rc = sign_check_key(k, LEGACY_MIN_BITS, LEGACY_MAX_BITS, "legacy", e);
    if (rc != CF_OK)
        return rc;

    cf_buf s = CF_BUF_INIT;
    rc = cf_rsakey_private_op(k, md5, MD5_LEN, &s, e);
    sig_out->n = 0;
    if (rc == CF_OK)
        rc = cf_cv64_encode(s.p, s.n, sig_out, e);
    cf_buf_free(&s);
    if (rc != CF_OK)
        return rc;

    /* Check our own output, so a faulty key or computation never leaves here. */
    char hex[2 * MD5_LEN + 1];
    cf_dsig_hex_lower(md5, MD5_LEN, hex);
    rc = cf_dsig_verify_md5(k, hex, (const char *)sig_out->p, e);
    if (rc != CF_OK) {
        sig_out->n = 0;
        cf_err_prefix(e, "legacy signing produced a bad signature: ");
    }
    return rc;
}

/* One EM per §4.3 "Manual equivalent" with a fresh salt. */
static cf_code pss_encode(const uint8_t digest[SHA256_LEN], uint8_t em[PSS_EM_LEN], cf_err *e)
{
    uint8_t salt[PSS_SALT_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return cf_err_set(e, CF_ENOMEM, "PSS signing: no random bytes for the salt");
    uint8_t *h = em + PSS_DB_LEN;
    cf_code rc = cf_dsig_pss_hash(digest, salt, h, e);
    if (rc == CF_OK)
        rc = cf_dsig_mgf1(h, em, PSS_DB_LEN, e);
    if (rc != CF_OK)
        return rc;
    em[PSS_SEP_INDEX] ^= 0x01;
    for (size_t i = 0; i < PSS_SALT_LEN; i++)
        em[PSS_SEP_INDEX + 1 + i] ^= salt[i];
    em[0] &= 0x7F;
    em[PSS_EM_LEN - 1] = PSS_TRAILER;
    return CF_OK;
}

cf_code cf_pss_sign(const cf_rsakey *k, const uint8_t digest[32], cf_buf *sig_out, cf_err *e)
{
    if (k == NULL || digest == NULL || sig_out == NULL)
        return cf_err_set(e, CF_EINVAL, "PSS signing: missing argument");
    cf_code rc = sign_check_key(k, PSS_MIN_BITS, PSS_MAX_BITS, "PSS", e);
    if (rc != CF_OK)
        return rc;

    uint8_t em[PSS_EM_LEN];
    int found = 0;
    for (int attempt = 0; attempt < PSS_SIGN_ATTEMPTS && !found; attempt++) {
        rc = pss_encode(digest, em, e);
        if (rc != CF_OK)
            return rc;
        /* EM must be < N to survive RSA; EM[0] == 0 would fail in ClamAV
         * 1.1-1.4, which left-align the decoded value (§4.3). */
        if (em[0] == 0)
            continue;
        BIGNUM *v = BN_bin2bn(em, sizeof(em), NULL);
        if (v == NULL)
            return cf_err_set(e, CF_ENOMEM, "PSS signing: out of memory");
        found = BN_cmp(v, k->n) < 0;
        BN_free(v);
    }
    if (!found)
        return cf_err_set(e, CF_ESIG, "PSS signing: no usable encoding after %d attempts", PSS_SIGN_ATTEMPTS);

    cf_buf s = CF_BUF_INIT;
    rc = cf_rsakey_private_op(k, em, sizeof(em), &s, e);
    sig_out->n = 0;
    if (rc == CF_OK)
        rc = cf_cv64_encode(s.p, s.n, sig_out, e);
    cf_buf_free(&s);
    if (rc != CF_OK)
        return rc;

    rc = cf_pss_verify(k, digest, (const char *)sig_out->p, e);
    if (rc != CF_OK) {
        sig_out->n = 0;
        cf_err_prefix(e, "PSS signing produced a bad signature: ");
    }
    return rc;
}
