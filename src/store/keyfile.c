/* Key and certificate files: the trust keys named in the configuration and
 * the certs directory of the .sign files. Reading them is the store's part;
 * what their bytes mean (PEM keys, certificates) is the format layer's
 * (rsakey.c, codesign.c). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "clamfresh/codesign.h"
#include "clamfresh/dsig.h"
#include "clamfresh/fileio.h"
#include "clamfresh/limits.h"

/* Keys used to trust downloaded data must be at least this strong. */
#define TRUST_MIN_BITS 1024

/* Does a directory entry name a certificate file? Extension exactly "crt" or
 * "pem" after a non-empty stem (".pem" alone has no extension, as in ClamAV). */
static int certfile_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 5)
        return 0;
    return strcmp(name + n - 4, ".crt") == 0 || strcmp(name + n - 4, ".pem") == 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cf_code cf_certstore_load(const char *dir, cf_certstore **out, cf_err *e)
{
    *out = NULL;
    if (dir == NULL || *dir == '\0')
        return cf_err_set(e, CF_EINVAL, "certs directory: no path given");
    DIR *d = opendir(dir);
    if (d == NULL)
        return cf_err_set(e, errno == ENOENT ? CF_ENOTFOUND : CF_EIO, "certs directory %s: %s", dir,
                          strerror(errno));

    char **names = NULL;
    size_t nnames = 0, cap = 0;
    cf_code rc = CF_OK;
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!certfile_name(ent->d_name))
            continue;
        if (nnames == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(names, ncap * sizeof(*names));
            if (grown == NULL) {
                rc = cf_err_set(e, CF_ENOMEM, "certs directory %s: out of memory", dir);
                break;
            }
            names = grown;
            cap = ncap;
        }
        if ((names[nnames] = strdup(ent->d_name)) == NULL) {
            rc = cf_err_set(e, CF_ENOMEM, "certs directory %s: out of memory", dir);
            break;
        }
        nnames++;
        errno = 0;
    }
    if (rc == CF_OK && errno != 0)
        rc = cf_err_set(e, CF_EIO, "certs directory %s: %s", dir, strerror(errno));
    closedir(d);
    if (nnames > 1)
        qsort(names, nnames, sizeof(*names), name_cmp);

    cf_certstore *s = NULL;
    if (rc == CF_OK)
        rc = cf_certstore_new(&s, e);
    cf_buf text = CF_BUF_INIT;
    for (size_t i = 0; rc == CF_OK && i < nnames; i++) {
        size_t plen = strlen(dir) + 1 + strlen(names[i]) + 1;
        char *path = malloc(plen);
        if (path == NULL) {
            rc = cf_err_set(e, CF_ENOMEM, "certs directory %s: out of memory", dir);
            break;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        struct stat st;
        /* Follows symlinks; what is not (or no longer) a regular file is not a
         * certificate file, as in ClamAV. */
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = cf_file_read(path, CF_MAX_CERTFILE_BYTES, &text, e);
            if (rc == CF_OK)
                rc = cf_certstore_add_pem(s, text.p, text.n, path, e);
        }
        free(path);
    }
    cf_buf_free(&text);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    if (rc != CF_OK) {
        cf_certstore_free(s);
        return rc;
    }
    *out = s;
    return CF_OK;
}

const char *cf_certstore_default_dir(void)
{
    const char *env = getenv("CVD_CERTS_DIR");
    return env != NULL && *env != '\0' ? env : "/etc/clamav/certs";
}

cf_code cf_rsakey_load_pem_file(const char *path, cf_rsakey **out, cf_err *e)
{
    if (path == NULL || out == NULL)
        return cf_err_set(e, CF_EINVAL, "PEM key: missing argument");
    *out = NULL;
    cf_buf b = CF_BUF_INIT;
    cf_code rc = cf_file_read(path, CF_MAX_PEM_BYTES, &b, e);
    if (rc == CF_OK) {
        rc = cf_rsakey_from_pem(b.p, b.n, out, e);
        if (rc != CF_OK)
            cf_err_prefix(e, "%s: ", path);
    }
    if (b.p != NULL)
        OPENSSL_cleanse(b.p, b.cap);
    cf_buf_free(&b);
    return rc;
}

/* Loads one trust key; a NULL path leaves *out NULL. */
static cf_code trust_load_one(const char *path, cf_keyrole role, cf_rsakey **out, cf_err *e)
{
    *out = NULL;
    if (path == NULL)
        return CF_OK;
    cf_code rc = cf_rsakey_load_pem_file(path, out, e);
    if (rc == CF_OK && cf_rsakey_bits(*out) < TRUST_MIN_BITS) {
        int bits = cf_rsakey_bits(*out);
        cf_rsakey_free(*out);
        *out = NULL;
        rc = cf_err_set(e, CF_EUNSUPP, "%s: a %d-bit key is too weak to trust (need %d bits)", path, bits,
                        TRUST_MIN_BITS);
    }
    if (rc != CF_OK)
        cf_err_prefix(e, "%s signing key: ", cf_keyrole_name(role));
    return rc;
}

cf_code cf_trust_load(cf_trust *t, const char *cvd_pem, const char *info_pem, const char *cdiff_pem,
                      cf_err *e)
{
    if (t == NULL)
        return cf_err_set(e, CF_EINVAL, "trust: missing argument");
    cf_rsakey *cvd = NULL, *info = NULL, *cdiff = NULL;
    cf_code rc = trust_load_one(cvd_pem, CF_KEY_CVD, &cvd, e);
    if (rc == CF_OK)
        rc = trust_load_one(info_pem, CF_KEY_INFO, &info, e);
    if (rc == CF_OK)
        rc = trust_load_one(cdiff_pem, CF_KEY_CDIFF, &cdiff, e);
    if (rc != CF_OK) {
        cf_rsakey_free(cvd);
        cf_rsakey_free(info);
        cf_rsakey_free(cdiff);
        return rc;
    }
    if (cvd != NULL) {
        cf_rsakey_free(t->cvd);
        t->cvd = cvd;
    }
    if (info != NULL) {
        cf_rsakey_free(t->info);
        t->info = info;
    }
    if (cdiff != NULL) {
        cf_rsakey_free(t->cdiff);
        t->cdiff = cdiff;
    }
    return CF_OK;
}
