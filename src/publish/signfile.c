/* Making .sign files (formats.md §7): a detached PKCS#7 over the signed bytes
 * in ClamAV's one-line format. cvdtool's side of codesign.h; the updater only
 * verifies (codesign.c). */
#include "codesign_priv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

cf_code cf_signfile_make(const uint8_t *data, size_t data_len, const uint8_t *cert_pem, size_t cert_len,
                         const uint8_t *key_pem, size_t key_len, const uint8_t *chain_pem, size_t chain_len,
                         unsigned min_flevel, cf_buf *out, cf_err *e)
{
    if ((data == NULL && data_len > 0) || cert_pem == NULL || key_pem == NULL || out == NULL ||
        (chain_pem == NULL && chain_len > 0))
        return cf_err_set(e, CF_EINVAL, "sign: missing data, certificate or key");
    if (min_flevel < CF_SIGN_MIN_FLEVEL || min_flevel > 999999999)
        return cf_err_set(e, CF_EINVAL, "sign: minimum f-level %u is outside %u..999999999", min_flevel,
                          CF_SIGN_MIN_FLEVEL);

    STACK_OF(X509) *certs = NULL, *chain = NULL;
    EVP_PKEY *key = NULL;
    BIO *kbio = NULL, *in = NULL;
    PKCS7 *p7 = NULL;
    unsigned char *der = NULL;
    char *b64 = NULL;
    char why[400];
    cf_code rc = cf_codesign_pem_certs(cert_pem, cert_len, "signing certificate", &certs, e);
    if (rc == CF_OK && sk_X509_num(certs) == 0)
        rc = cf_err_set(e, CF_EFORMAT, "signing certificate: no PEM certificate found");
    if (rc == CF_OK && chain_pem != NULL)
        rc = cf_codesign_pem_certs(chain_pem, chain_len, "certificate chain", &chain, e);
    if (rc != CF_OK)
        goto done;

    ERR_clear_error();
    kbio = cf_codesign_mem_bio(key_pem, key_len);
    /* An empty passphrase makes an encrypted key fail instead of prompting. */
    key = kbio ? PEM_read_bio_PrivateKey(kbio, NULL, NULL, (void *)"") : NULL;
    if (key == NULL) {
        cf_codesign_ossl_errors(why, sizeof(why));
        rc = cf_err_set(e, CF_EFORMAT, "signing key: not an unencrypted PEM private key: %s", why);
        goto done;
    }
    X509 *cert = sk_X509_value(certs, 0);
    if (!X509_check_private_key(cert, key)) {
        ERR_clear_error();
        rc = cf_err_set(e, CF_EINVAL, "signing key does not match the signing certificate");
        goto done;
    }

    const int flags = PKCS7_DETACHED | PKCS7_BINARY;
    in = cf_codesign_mem_bio(data, data_len);
    p7 = in ? PKCS7_sign(NULL, NULL, NULL, NULL, flags | PKCS7_PARTIAL) : NULL;
    int ok = p7 != NULL && PKCS7_sign_add_signer(p7, cert, key, EVP_sha256(), flags) != NULL;
    /* Extra certificates after the signer's, then the chain: verifiers need the
     * intermediates inside the object (§7.3, §7.4). */
    for (int i = 1; ok && i < sk_X509_num(certs); i++)
        ok = PKCS7_add_certificate(p7, sk_X509_value(certs, i));
    for (int i = 0; ok && chain != NULL && i < sk_X509_num(chain); i++)
        ok = PKCS7_add_certificate(p7, sk_X509_value(chain, i));
    ok = ok && PKCS7_final(p7, in, flags);
    int dn = ok ? i2d_PKCS7(p7, &der) : -1;
    if (dn <= 0) {
        cf_codesign_ossl_errors(why, sizeof(why));
        rc = cf_err_set(e, data_len > INT_MAX ? CF_ETOOBIG : CF_ESIG, "sign: PKCS#7 signing failed: %s", why);
        goto done;
    }
    size_t b64n = ((size_t)dn + 2) / 3 * 4;
    if (b64n > CF_SIGN_MAX_B64) {
        rc = cf_err_set(e, CF_ETOOBIG, "sign: signature of %zu base64 bytes exceeds the limit of %lu", b64n,
                        (unsigned long)CF_SIGN_MAX_B64);
        goto done;
    }
    b64 = malloc(b64n + 1);
    if (b64 == NULL) {
        rc = cf_err_set(e, CF_ENOMEM, "sign: out of memory");
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)b64, der, dn);
    if (cf_buf_printf(out, "%s\n%u::pkcs7-pem:%s\n", CF_SIGN_HEADER, min_flevel, b64) != CF_OK)
        rc = cf_err_set(e, CF_ENOMEM, "sign: out of memory");

done:
    free(b64);
    OPENSSL_free(der);
    PKCS7_free(p7);
    BIO_free(in);
    BIO_free(kbio);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}
