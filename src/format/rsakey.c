/* RSA keys for the three signature roles (formats.md §4.2-§4.4): ClamAV's
 * built-in public keys, PEM import/export, generation, and the trust set. */
#include "dsig_priv.h"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

/* Moduli copied digit for digit from formats.md §4.2 (CLI_NSTR) and §4.3
 * (INFO_NSTR, cdiff PUBLIC_KEY_MODULUS). */
static const char cvd_modulus[] =
    "11864099555164534260307000165845318975152777441202774374659940574324314260746414"
    "47673610606406558447497607888900222834249227624889175655510024677711096695981894"
    "10434699034532232228621591089508178591428456220796841621637175567590476666928698"
    "770143328137383952820383197532047771780196576957695822641224262693037";
static const char info_modulus[] =
    "11088894983048545473659556106627194923928941791795047620591658697413581043322715"
    "91217249680652538105588096452061840022433332053466029923398375534174067950286682"
    "99096799557343913926683783612215242053966310901051516412708572770803107343209516"
    "53700508941717419168723942507890702904702707587451621691050754307850383399865346"
    "48720379846417853739221140278648135982446119723110289541509377039421666632448459"
    "39357624084685168266331921408266679234948220458053478099328484548458869717064243"
    "60558667862775876072059437703365380209101697738577515476935085469455279994113145"
    "977994084618328482151013142393373316337519977244732747977";
static const char cdiff_modulus[] =
    "14783905874077467090262228516557917570254599638376203532031989214105552847269687"
    "48977197579212344218581728769495194980090879152754201711560050130339477861853586"
    "48452357000415900563182301024496122174585490160893133065913885907907965158196541"
    "02320725712300822356348724011232654837503241736177907784198700834440681124727060"
    "54003575469965810589505009657622675300859688169882818565242490192166875832657846"
    "20032479064709820922981067896572119054889862810783463614695244848295595608862271"
    "98091995498440676639639830463593211386055065360288422394053998134458623712540683"
    "294034953818412458362198117811990006021989844180721010947";

static const char cvd_exponent[] = "100001027";
static const char info_exponent[] = "100002049";
static const char cdiff_exponent[] = "100002053";

/* Appends the first queued OpenSSL error reason to a message, or nothing. */
const char *cf_rsakey_ossl_reason(void)
{
    static _Thread_local char buf[160];
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0)
        return "";
    buf[0] = ':';
    buf[1] = ' ';
    ERR_error_string_n(code, buf + 2, sizeof(buf) - 2);
    return buf;
}

const char *cf_keyrole_name(cf_keyrole role)
{
    switch (role) {
    case CF_KEY_CVD:
        return "CVD";
    case CF_KEY_INFO:
        return ".info";
    case CF_KEY_CDIFF:
        return "cdiff";
    }
    return "unknown";
}

void cf_rsakey_free(cf_rsakey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    BN_free(k->n);
    BN_free(k->e);
    free(k);
}

cf_code cf_rsakey_wrap(EVP_PKEY *pkey, cf_rsakey **out, cf_err *e)
{
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_free(pkey);
        return cf_err_set(e, CF_EUNSUPP, "key is not a plain RSA key");
    }
    cf_rsakey *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    k->pkey = pkey;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &k->n) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &k->e)) {
        cf_rsakey_free(k);
        return cf_err_set(e, CF_EFORMAT, "RSA key lacks its modulus or exponent%s", cf_rsakey_ossl_reason());
    }
    BIGNUM *d = NULL;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &d) && d != NULL && !BN_is_zero(d))
        k->has_private = 1;
    BN_clear_free(d);
    ERR_clear_error();

    k->bits = BN_num_bits(k->n);
    if (k->bits < RSAKEY_MIN_BITS || k->bits > RSAKEY_MAX_BITS) {
        int bits = k->bits;
        cf_rsakey_free(k);
        return cf_err_set(e, CF_EUNSUPP, "RSA modulus has %d bits; supported are %d to %d", bits,
                          RSAKEY_MIN_BITS, RSAKEY_MAX_BITS);
    }
    if (!BN_is_odd(k->n) || !BN_is_odd(k->e) || BN_is_one(k->e) || BN_cmp(k->e, k->n) >= 0) {
        cf_rsakey_free(k);
        return cf_err_set(e, CF_EFORMAT, "RSA key has an invalid modulus or exponent");
    }
    *out = k;
    return CF_OK;
}

/* Builds a public key from decimal N and E. */
static cf_code rsakey_from_decimal(const char *ndec, const char *edec, cf_rsakey **out, cf_err *e)
{
    BIGNUM *n = NULL, *ex = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    cf_code rc = CF_OK;

    if (!BN_dec2bn(&n, ndec) || !BN_dec2bn(&ex, edec) || (bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        rc = cf_err_set(e, CF_ENOMEM, "cannot build RSA public key%s", cf_rsakey_ossl_reason());
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(ex);
    if (rc != CF_OK) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    return cf_rsakey_wrap(pkey, out, e);
}

cf_code cf_rsakey_builtin(cf_keyrole role, cf_rsakey **out, cf_err *e)
{
    if (out == NULL)
        return cf_err_set(e, CF_EINVAL, "built-in key: missing output");
    *out = NULL;
    switch (role) {
    case CF_KEY_CVD:
        return rsakey_from_decimal(cvd_modulus, cvd_exponent, out, e);
    case CF_KEY_INFO:
        return rsakey_from_decimal(info_modulus, info_exponent, out, e);
    case CF_KEY_CDIFF:
        return rsakey_from_decimal(cdiff_modulus, cdiff_exponent, out, e);
    }
    return cf_err_set(e, CF_EINVAL, "built-in key: unknown role %d", (int)role);
}

/* Keys are never encrypted here; refusing the passphrase keeps OpenSSL from
 * prompting on the terminal. */
static int no_passphrase(char *buf, size_t size, size_t *len, const OSSL_PARAM params[], void *arg)
{
    (void)buf;
    (void)size;
    (void)params;
    (void)arg;
    *len = 0;
    return 0;
}

cf_code cf_rsakey_from_pem(const uint8_t *pem, size_t n, cf_rsakey **out, cf_err *e)
{
    if (out == NULL || (pem == NULL && n != 0))
        return cf_err_set(e, CF_EINVAL, "PEM key: missing argument");
    *out = NULL;
    if (n == 0)
        return cf_err_set(e, CF_EFORMAT, "PEM key: input is empty");
    if (n > CF_MAX_PEM_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "PEM key: %zu bytes exceeds the limit of %d", n, CF_MAX_PEM_BYTES);

    EVP_PKEY *pkey = NULL;
    /* Selection 0 lets the decoder take a private key, SubjectPublicKeyInfo
     * or a PKCS#1 "RSA PUBLIC KEY" alike. */
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, "RSA", 0, NULL, NULL);
    if (dctx == NULL)
        return cf_err_set(e, CF_ENOMEM, "PEM key: cannot set up decoder%s", cf_rsakey_ossl_reason());
    OSSL_DECODER_CTX_set_passphrase_cb(dctx, no_passphrase, NULL);
    const unsigned char *p = pem;
    size_t left = n;
    int ok = OSSL_DECODER_from_data(dctx, &p, &left);
    OSSL_DECODER_CTX_free(dctx);
    if (!ok || pkey == NULL) {
        EVP_PKEY_free(pkey);
        return cf_err_set(e, CF_EFORMAT,
                          "no unencrypted RSA key in PEM input (expected PUBLIC KEY, "
                          "RSA PUBLIC KEY, PRIVATE KEY or RSA PRIVATE KEY)%s",
                          cf_rsakey_ossl_reason());
    }
    ERR_clear_error();
    return cf_rsakey_wrap(pkey, out, e);
}

int cf_rsakey_can_sign(const cf_rsakey *k)
{
    return k != NULL && k->has_private;
}

int cf_rsakey_bits(const cf_rsakey *k)
{
    return k == NULL ? 0 : k->bits;
}

cf_code cf_trust_init_builtin(cf_trust *t, cf_err *e)
{
    if (t == NULL)
        return cf_err_set(e, CF_EINVAL, "trust: missing argument");
    memset(t, 0, sizeof(*t));
    cf_code rc = cf_rsakey_builtin(CF_KEY_CVD, &t->cvd, e);
    if (rc == CF_OK)
        rc = cf_rsakey_builtin(CF_KEY_INFO, &t->info, e);
    if (rc == CF_OK)
        rc = cf_rsakey_builtin(CF_KEY_CDIFF, &t->cdiff, e);
    if (rc != CF_OK)
        cf_trust_free(t);
    return rc;
}

void cf_trust_free(cf_trust *t)
{
    if (t == NULL)
        return;
    cf_rsakey_free(t->cvd);
    cf_rsakey_free(t->info);
    cf_rsakey_free(t->cdiff);
    t->cvd = t->info = t->cdiff = NULL;
}
