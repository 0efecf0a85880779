/* ClamAV's two RSA signature schemes (formats.md §4.2 legacy MD5 dsig, §4.3
 * cli_versig2 PSS/SHA-256). The public operation is done with BN_mod_exp,
 * because ClamAV accepts inputs OpenSSL's RSA APIs reject (§4.1, §10 gotcha 2). */
#include "dsig_priv.h"

#include <openssl/rand.h>
#include <string.h>

static cf_code sha256(const uint8_t *data, size_t n, uint8_t out[SHA256_LEN], cf_err *e)
{
    unsigned int len = 0;
    if (!EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) || len != SHA256_LEN)
        return cf_err_set(e, CF_ENOMEM, "SHA-256 is unavailable");
    return CF_OK;
}

/* m = CV64decode(sig)^E mod N, written big-endian and right-aligned into
 * out[0..width) (§4.2 steps 4-5, §4.3 step 1). */
static cf_code sig_public_op(const cf_rsakey *k, const char *sig, uint8_t *out, size_t width, cf_err *e)
{
    size_t len = strnlen(sig, CF_SIG_MAX_CHARS + 1);
    if (len == 0)
        return cf_err_set(e, CF_ESIG, "signature is empty");
    if (len > CF_SIG_MAX_CHARS)
        return cf_err_set(e, CF_ESIG, "signature is longer than %d characters", CF_SIG_MAX_CHARS);

    cf_buf raw = CF_BUF_INIT;
    cf_code rc = cf_cv64_decode(sig, len, &raw, e);
    if (rc != CF_OK) {
        cf_buf_free(&raw);
        if (rc == CF_ENOMEM)
            return rc;
        /* Keep the decoder's message; to callers any bad text is a failed check. */
        if (e != NULL)
            e->code = CF_ESIG;
        return CF_ESIG;
    }

    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *c = BN_bin2bn(raw.p, (int)raw.n, NULL);
    BIGNUM *m = BN_new();
    cf_buf_free(&raw);
    if (ctx == NULL || c == NULL || m == NULL || !BN_mod_exp(m, c, k->e, k->n, ctx)) {
        rc = cf_err_set(e, CF_ENOMEM, "RSA public operation failed");
    } else {
        int nb = BN_num_bytes(m);
        if ((size_t)nb > width)
            rc = cf_err_set(e, CF_ESIG, "signature decodes to %d bytes, more than %zu", nb, width);
        else if (BN_bn2binpad(m, out, (int)width) != (int)width)
            rc = cf_err_set(e, CF_ENOMEM, "RSA public operation failed");
    }
    BN_free(m);
    BN_free(c);
    BN_CTX_free(ctx);
    return rc;
}

static int is_md5hex(const char *s)
{
    if (s == NULL || strnlen(s, 2 * MD5_LEN + 1) != 2 * MD5_LEN)
        return 0;
    for (size_t i = 0; i < 2 * MD5_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void cf_dsig_hex_lower(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

cf_code cf_dsig_verify_md5(const cf_rsakey *k, const char *md5hex, const char *sig, cf_err *e)
{
    if (k == NULL || sig == NULL)
        return cf_err_set(e, CF_EINVAL, "legacy signature check: missing key or signature");
    if (!is_md5hex(md5hex))
        return cf_err_set(e, CF_EINVAL, "legacy signature check: MD5 must be 32 lowercase hex digits");

    uint8_t m[MD5_LEN];
    cf_code rc = sig_public_op(k, sig, m, sizeof(m), e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "legacy signature: ");
        return rc;
    }
    char got[2 * MD5_LEN + 1];
    cf_dsig_hex_lower(m, sizeof(m), got);
    if (memcmp(got, md5hex, 2 * MD5_LEN) != 0)
        return cf_err_set(e, CF_ESIG, "legacy signature: signed MD5 %s does not match %s", got, md5hex);
    return CF_OK;
}

/* MGF1 with SHA-256 and a 4-byte big-endian counter (§4.3 step 4). */
cf_code cf_dsig_mgf1(const uint8_t seed[SHA256_LEN], uint8_t *mask, size_t n, cf_err *e)
{
    uint8_t in[SHA256_LEN + 4], block[SHA256_LEN];
    memcpy(in, seed, SHA256_LEN);
    for (uint32_t counter = 0, done = 0; done < n; counter++) {
        in[SHA256_LEN] = (uint8_t)(counter >> 24);
        in[SHA256_LEN + 1] = (uint8_t)(counter >> 16);
        in[SHA256_LEN + 2] = (uint8_t)(counter >> 8);
        in[SHA256_LEN + 3] = (uint8_t)counter;
        cf_code rc = sha256(in, sizeof(in), block, e);
        if (rc != CF_OK)
            return rc;
        size_t take = n - done < SHA256_LEN ? n - done : SHA256_LEN;
        memcpy(mask + done, block, take);
        done += (uint32_t)take;
    }
    return CF_OK;
}

/* H = SHA256(8 zero bytes || mHash || salt) (§4.3 step 7). */
cf_code cf_dsig_pss_hash(const uint8_t digest[SHA256_LEN], const uint8_t salt[PSS_SALT_LEN],
                         uint8_t out[SHA256_LEN], cf_err *e)
{
    uint8_t in[8 + SHA256_LEN + PSS_SALT_LEN] = {0};
    memcpy(in + 8, digest, SHA256_LEN);
    memcpy(in + 8 + SHA256_LEN, salt, PSS_SALT_LEN);
    return sha256(in, sizeof(in), out, e);
}

cf_code cf_pss_verify(const cf_rsakey *k, const uint8_t digest[32], const char *sig, cf_err *e)
{
    if (k == NULL || digest == NULL || sig == NULL)
        return cf_err_set(e, CF_EINVAL, "PSS signature check: missing argument");

    uint8_t em[PSS_EM_LEN];
    cf_code rc = sig_public_op(k, sig, em, sizeof(em), e);
    if (rc != CF_OK) {
        cf_err_prefix(e, "PSS signature: ");
        return rc;
    }
    if (em[PSS_EM_LEN - 1] != PSS_TRAILER)
        return cf_err_set(e, CF_ESIG, "PSS signature: trailer byte is 0x%02x, not 0xbc", em[PSS_EM_LEN - 1]);

    const uint8_t *h = em + PSS_DB_LEN;
    uint8_t db[PSS_DB_LEN];
    rc = cf_dsig_mgf1(h, db, sizeof(db), e);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < PSS_DB_LEN; i++)
        db[i] ^= em[i];
    db[0] &= 0x7F;

    /* ClamAV does not require the padding to be zero, only the first 0x01 to
     * leave exactly a 32-byte salt. */
    const uint8_t *sep = memchr(db, 0x01, sizeof(db));
    if (sep == NULL)
        return cf_err_set(e, CF_ESIG, "PSS signature: no 0x01 separator in the data block");
    size_t salt_len = (size_t)(db + PSS_DB_LEN - (sep + 1));
    if (salt_len != PSS_SALT_LEN)
        return cf_err_set(e, CF_ESIG, "PSS signature: salt is %zu bytes, not %d", salt_len, PSS_SALT_LEN);

    uint8_t want[SHA256_LEN];
    rc = cf_dsig_pss_hash(digest, sep + 1, want, e);
    if (rc != CF_OK)
        return rc;
    if (memcmp(want, h, SHA256_LEN) != 0)
        return cf_err_set(e, CF_ESIG, "PSS signature does not match the SHA-256 digest");
    return CF_OK;
}
