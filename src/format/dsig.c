/* ClamAV's two RSA signature schemes (formats.md §4.2 legacy MD5 dsig, §4.3
 * cli_versig2 PSS/SHA-256). The public operation is done with BN_mod_exp,
 * because ClamAV accepts inputs OpenSSL's RSA APIs reject (§4.1, §10 gotcha 2). */
#include "dsig_priv.h"

#include <openssl/rand.h>
#include <string.h>

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

static void hex_lower(const uint8_t *p, size_t n, char *out)
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
    hex_lower(m, sizeof(m), got);
    if (memcmp(got, md5hex, 2 * MD5_LEN) != 0)
        return cf_err_set(e, CF_ESIG, "legacy signature: signed MD5 %s does not match %s", got, md5hex);
    return CF_OK;
}

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
    hex_lower(md5, MD5_LEN, hex);
    rc = cf_dsig_verify_md5(k, hex, (const char *)sig_out->p, e);
    if (rc != CF_OK) {
        sig_out->n = 0;
        cf_err_prefix(e, "legacy signing produced a bad signature: ");
    }
    return rc;
}

/* MGF1 with SHA-256 and a 4-byte big-endian counter (§4.3 step 4). */
static cf_code mgf1_sha256(const uint8_t seed[SHA256_LEN], uint8_t *mask, size_t n, cf_err *e)
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
static cf_code pss_hash(const uint8_t digest[SHA256_LEN], const uint8_t salt[PSS_SALT_LEN],
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
    rc = mgf1_sha256(h, db, sizeof(db), e);
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
    rc = pss_hash(digest, sep + 1, want, e);
    if (rc != CF_OK)
        return rc;
    if (memcmp(want, h, SHA256_LEN) != 0)
        return cf_err_set(e, CF_ESIG, "PSS signature does not match the SHA-256 digest");
    return CF_OK;
}

/* One EM per §4.3 "Manual equivalent" with a fresh salt. */
static cf_code pss_encode(const uint8_t digest[SHA256_LEN], uint8_t em[PSS_EM_LEN], cf_err *e)
{
    uint8_t salt[PSS_SALT_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return cf_err_set(e, CF_ENOMEM, "PSS signing: no random bytes for the salt");
    uint8_t *h = em + PSS_DB_LEN;
    cf_code rc = pss_hash(digest, salt, h, e);
    if (rc == CF_OK)
        rc = mgf1_sha256(h, em, PSS_DB_LEN, e);
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
