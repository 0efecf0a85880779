/* The publishing commands: keygen, build, diff, apply, sign. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/info.h"
#include "clamfresh/limits.h"
#include "tool.h"

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"bits", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    const char *prefix = NULL;
    uint32_t bits = 2048;
    int c;
    while ((c = getopt_long(argc, argv, "ho:b:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            prefix = optarg;
            break;
        case 'b':
            if (tool_opt_u32("--bits", optarg, &bits) != 0)
                return TOOL_USAGE;
            break;
        case 'h':
            printf("Usage: cvdtool keygen -o PREFIX [--bits N]\n\n"
                   "Generates an RSA key (default 2048 bits; the cdiff and .info schemes need\n"
                   "2047..4096) and writes PREFIX.key (private, mode 0600) and PREFIX.pub (public).\n"
                   "Clients trust PREFIX.pub through clamfresh's CVDPublicKey, InfoPublicKey and\n"
                   "CdiffPublicKey directives (or --trust-key).\n");
            return TOOL_OK;
        default:
            return TOOL_USAGE;
        }
    }
    if (prefix == NULL || optind != argc) {
        tool_err("keygen needs -o PREFIX (see 'cvdtool keygen --help')");
        return TOOL_USAGE;
    }
    cf_rsakey *k = NULL;
    cf_err e = {0};
    cf_buf priv = CF_BUF_INIT, pub = CF_BUF_INIT;
    int rc = TOOL_OK;
    if (cf_rsakey_generate((int)bits, &k, &e) != CF_OK || cf_rsakey_write_pem(k, 1, &priv, &e) != CF_OK ||
        cf_rsakey_write_pem(k, 0, &pub, &e) != CF_OK) {
        tool_err("%s", e.msg);
        rc = TOOL_ERROR;
    }
    char path[PATH_MAX];
    if (rc == TOOL_OK) {
        snprintf(path, sizeof(path), "%s.key", prefix);
        rc = tool_write_file(path, priv.p, priv.n, 0600);
    }
    if (rc == TOOL_OK) {
        snprintf(path, sizeof(path), "%s.pub", prefix);
        rc = tool_write_file(path, pub.p, pub.n, 0644);
    }
    if (rc == TOOL_OK)
        printf("Wrote %s.key and %s.pub (%u bits)\n", prefix, prefix, bits);
    cf_buf_free(&priv);
    cf_buf_free(&pub);
    cf_rsakey_free(k);
    return rc;
}

/* sigtool counts signatures per database file; we count the lines that carry
 * one: non-empty, not comments, in files whose extension holds signatures. */
static uint32_t count_sigs(const cf_image *img)
{
    static const char *const nonsig[] = {".info", ".cfg", ".ign", ".ign2", ".ftm", NULL};
    uint32_t n = 0;
    for (size_t i = 0; i < img->nfiles; i++) {
        const cf_dbfile *f = &img->files[i];
        if (!cf_info_is_dbext(f->name))
            continue;
        size_t len = strlen(f->name);
        int skip = 0;
        for (size_t j = 0; nonsig[j] != NULL; j++) {
            size_t m = strlen(nonsig[j]);
            if (len > m && strcasecmp(f->name + len - m, nonsig[j]) == 0)
                skip = 1;
        }
        if (skip)
            continue;
        if (len > 4 && strcasecmp(f->name + len - 4, ".cbc") == 0) {
            n++; /* one bytecode program per file */
            continue;
        }
        size_t start = 0;
        for (size_t k = 0; k <= f->data.n; k++) {
            if (k == f->data.n || f->data.p[k] == '\n') {
                if (k > start && f->data.p[start] != '#')
                    n++;
                start = k + 1;
            }
        }
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads every regular file of dir into img, COPYING first, the rest by name. */
static int load_dir(const char *dir, const char *dbname, cf_image *img)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        tool_err("%s: %s", dir, strerror(errno));
        return TOOL_ERROR;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = TOOL_OK;
    char infoname[CF_MAX_NAME + 8];
    snprintf(infoname, sizeof(infoname), "%s.info", dbname);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (strcmp(de->d_name, infoname) == 0) {
            fprintf(stderr, "cvdtool: %s/%s is ignored: the manifest is generated\n", dir, de->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (nn == NULL) {
                rc = TOOL_ERROR;
                break;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = TOOL_ERROR;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == TOOL_OK)
        qsort(names, n, sizeof(*names), cmp_str);
    int have_copying = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "COPYING") == 0)
            have_copying = 1;
    if (rc == TOOL_OK && !have_copying) {
        tool_err("%s/COPYING is missing: a CVD carries its licence text as the first member", dir);
        rc = TOOL_USAGE;
    }
    for (int pass = 0; pass < 2 && rc == TOOL_OK; pass++) {
        for (size_t i = 0; i < n && rc == TOOL_OK; i++) {
            int is_copying = strcmp(names[i], "COPYING") == 0;
            if (is_copying != (pass == 0))
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "cvdtool: %s is not a regular file; skipped\n", path);
                continue;
            }
            cf_buf data = CF_BUF_INIT;
            cf_err e = {0};
            if (cf_file_read(path, CF_MAX_DB_BYTES, &data, &e) != CF_OK ||
                cf_image_put(img, names[i], data.p, data.n, &e) != CF_OK) {
                tool_err("%s: %s", path, e.msg);
                rc = TOOL_ERROR;
            }
            cf_buf_free(&data);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Builds the signed CVD bytes for img under header h: .info (signed with infokey),
 * body, MD5 and the legacy dsig (signed with cvdkey). */
static cf_code build_cvd(cf_image *img, const char *dbname, cf_cvdhdr *h, const cf_rsakey *cvdkey,
                         const cf_rsakey *infokey, cf_buf *out, cf_err *e)
{
    /* ClamAV 1.1-1.4 cannot verify an MD5 whose first byte is 0 (formats.md §4.2);
     * a new build time gives a new manifest and so a new MD5. */
    for (int attempt = 0; attempt < 16; attempt++, h->stime++) {
        strcpy(h->md5, "X");
        strcpy(h->dsig, "X");
        cf_code rc = cf_info_build(img, dbname, h, infokey, e);
        if (rc != CF_OK)
            return rc;
        cf_buf body = CF_BUF_INIT;
        rc = cf_cvd_body_make(img, 1, &body, e);
        if (rc != CF_OK) {
            cf_buf_free(&body);
            return rc;
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (EVP_Digest(body.p, body.n, md, &mdlen, EVP_md5(), NULL) != 1) {
            cf_buf_free(&body);
            return cf_err_set(e, CF_EUNSUPP, "MD5 is not available");
        }
        if (md[0] == 0) {
            cf_buf_free(&body);
            continue;
        }
        for (unsigned i = 0; i < 16; i++)
            snprintf(h->md5 + 2 * i, 3, "%02x", md[i]);
        cf_buf sig = CF_BUF_INIT;
        rc = cf_dsig_sign_md5(cvdkey, md, &sig, e);
        if (rc == CF_OK && sig.n >= sizeof(h->dsig))
            rc = cf_err_set(e, CF_EUNSUPP, "the CVD key's signature (%zu characters) does not fit a header",
                            sig.n);
        if (rc == CF_OK) {
            memcpy(h->dsig, sig.p, sig.n);
            h->dsig[sig.n] = '\0';
            rc = cf_cvd_assemble(h, &body, out, e);
        }
        cf_buf_free(&sig);
        cf_buf_free(&body);
        return rc;
    }
    return cf_err_set(e, CF_EFORMAT, "could not find a build whose MD5 does not start with 00");
}

int cmd_build(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"info-key", required_argument, NULL, 'i'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"version", required_argument, NULL, 'v'},
                                         {"builder", required_argument, NULL, 'b'},
                                         {"flevel", required_argument, NULL, 'f'},
                                         {"sigs", required_argument, NULL, 's'},
                                         {"time", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL, *keypath = NULL, *infokeypath = NULL, *name = NULL, *builder = NULL;
    uint32_t version = 0, flevel = 90, sigs = 0;
    int have_version = 0, have_sigs = 0;
    long long stime = -1;
    int c;
    while ((c = getopt_long(argc, argv, "ho:k:n:v:b:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'k':
            keypath = optarg;
            break;
        case 'i':
            infokeypath = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'b':
            builder = optarg;
            break;
        case 'v':
            if (tool_opt_u32("--version", optarg, &version) != 0)
                return TOOL_USAGE;
            have_version = 1;
            break;
        case 'f':
            if (tool_opt_u32("--flevel", optarg, &flevel) != 0)
                return TOOL_USAGE;
            break;
        case 's':
            if (tool_opt_u32("--sigs", optarg, &sigs) != 0)
                return TOOL_USAGE;
            have_sigs = 1;
            break;
        case 't': {
            char *end;
            stime = strtoll(optarg, &end, 10);
            if (*end != '\0' || stime < 0) {
                tool_err("--time needs Unix seconds");
                return TOOL_USAGE;
            }
            break;
        }
        case 'h':
            printf("Usage: cvdtool build DIR -o NAME.cvd --key KEY --version V [OPTIONS]\n\n"
                   "Builds a signed CVD from the files in DIR (COPYING must be among them): writes\n"
                   "the NAME.info manifest with every file's size and SHA-256 and its DSIG, packs\n"
                   "the tar.gz body, and signs the header's MD5.\n\n"
                   "  -o, --output FILE   the CVD to write (its name gives NAME unless --name)\n"
                   "  -k, --key FILE      private key signing the header and, unless --info-key,\n"
                   "                      the manifest\n"
                   "      --info-key FILE private key for the manifest DSIG\n"
                   "  -n, --name NAME     database name (daily, main, ...)\n"
                   "  -v, --version V     database version\n"
                   "  -b, --builder NAME  builder field (default $SIGNDUSER, $USER or cvdtool)\n"
                   "      --flevel N      minimum engine functionality level (default 90)\n"
                   "      --sigs N        signature count (default: counted from the files)\n"
                   "      --time SECONDS  build time (default now)\n");
            return TOOL_OK;
        default:
            return TOOL_USAGE;
        }
    }
    if (optind + 1 != argc || out == NULL || keypath == NULL || !have_version) {
        tool_err("build needs DIR, -o FILE, --key KEY and --version V (see 'cvdtool build --help')");
        return TOOL_USAGE;
    }
    char dbname[CF_MAX_NAME + 1];
    if (name != NULL)
        snprintf(dbname, sizeof(dbname), "%s", name);
    else
        tool_dbname_from_path(out, dbname, sizeof(dbname));
    if (dbname[0] == '\0' || strpbrk(dbname, "-./:") != NULL) {
        tool_err("'%s' is not a usable database name", dbname);
        return TOOL_USAGE;
    }
    if (builder == NULL)
        builder = getenv("SIGNDUSER");
    if (builder == NULL)
        builder = getenv("USER");
    if (builder == NULL || *builder == '\0')
        builder = "cvdtool";

    cf_rsakey *key = tool_load_signing_key(keypath);
    cf_rsakey *infokey = infokeypath ? tool_load_signing_key(infokeypath) : NULL;
    if (key == NULL || (infokeypath != NULL && infokey == NULL)) {
        cf_rsakey_free(key);
        cf_rsakey_free(infokey);
        return TOOL_ERROR;
    }
    cf_image img;
    cf_image_init(&img);
    int rc = load_dir(argv[optind], dbname, &img);
    cf_buf cvd = CF_BUF_INIT;
    if (rc == TOOL_OK) {
        cf_cvdhdr h;
        memset(&h, 0, sizeof(h));
        time_t t = stime >= 0 ? (time_t)stime : time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(h.time, sizeof(h.time), "%d %b %Y %H-%M %z", &tm);
        h.version = version;
        h.sigs = have_sigs ? sigs : count_sigs(&img);
        h.flevel = flevel;
        h.stime = (uint64_t)t;
        if (strlen(builder) >= sizeof(h.builder) || strchr(builder, ':') != NULL) {
            tool_err("builder '%s' is too long or contains ':'", builder);
            rc = TOOL_USAGE;
        } else {
            strcpy(h.builder, builder);
            cf_err e = {0};
            if (build_cvd(&img, dbname, &h, key, infokey ? infokey : key, &cvd, &e) != CF_OK) {
                tool_err("%s: %s", out, e.msg);
                rc = TOOL_ERROR;
            }
        }
        if (rc == TOOL_OK)
            rc = tool_write_file(out, cvd.p, cvd.n, 0644);
        if (rc == TOOL_OK)
            printf("Wrote %s: %s version %u, %u signatures, %zu files, %zu bytes\n", out, dbname, h.version,
                   h.sigs, img.nfiles, cvd.n);
    }
    cf_buf_free(&cvd);
    cf_image_free(&img);
    cf_rsakey_free(key);
    cf_rsakey_free(infokey);
    return rc;
}

int cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"script", required_argument, NULL, 's'},
                                         TOOL_TRUST_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    tool_trust t = {0};
    const char *out = NULL, *keypath = NULL, *scriptout = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "ho:k:", opts, NULL)) != -1) {
        if (tool_trust_opt(&t, c, optarg))
            continue;
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'k':
            keypath = optarg;
            break;
        case 's':
            scriptout = optarg;
            break;
        case 'h':
            printf("Usage: cvdtool diff OLD NEW -o NAME-V.cdiff --key KEY [OPTIONS]\n\n"
                   "Makes a signed cdiff that turns database OLD (CVD or CLD) into NEW, using the\n"
                   "command forms ClamAV's own cdiffs use (OPEN/DEL/XCHG/ADD/CLOSE, UNLINK).\n"
                   "Both databases are verified first. V is NEW's version.\n\n"
                   "  -o, --output FILE  the cdiff to write\n"
                   "  -k, --key FILE     private key for the cdiff signature\n"
                   "      --script FILE  also write the uncompressed script\n" TOOL_TRUST_HELP);
            return TOOL_OK;
        default:
            return TOOL_USAGE;
        }
    }
    if (optind + 2 != argc || out == NULL || keypath == NULL) {
        tool_err("diff needs OLD, NEW, -o FILE and --key KEY (see 'cvdtool diff --help')");
        return TOOL_USAGE;
    }
    cf_rsakey *key = tool_load_signing_key(keypath);
    if (key == NULL)
        return TOOL_ERROR;
    int rc = tool_trust_setup(&t);
    cf_image oldimg, newimg;
    cf_image_init(&oldimg);
    cf_image_init(&newimg);
    if (rc == TOOL_OK)
        rc = tool_load_database(&t, argv[optind], &oldimg, NULL);
    if (rc == TOOL_OK)
        rc = tool_load_database(&t, argv[optind + 1], &newimg, NULL);
    if (rc == TOOL_OK && newimg.hdr.version <= oldimg.hdr.version) {
        tool_err("NEW (version %u) is not newer than OLD (version %u)", newimg.hdr.version,
                 oldimg.hdr.version);
        rc = TOOL_USAGE;
    }
    cf_buf script = CF_BUF_INIT, cdiff = CF_BUF_INIT;
    cf_err e = {0};
    if (rc == TOOL_OK && (cf_cdiff_make_script(&oldimg, &newimg, &script, &e) != CF_OK ||
                          cf_cdiff_build(script.p, script.n, newimg.hdr.version, key, &cdiff, &e) != CF_OK)) {
        tool_err("%s", e.msg);
        rc = TOOL_ERROR;
    }
    if (rc == TOOL_OK && scriptout != NULL)
        rc = tool_write_file(scriptout, script.p, script.n, 0644);
    if (rc == TOOL_OK)
        rc = tool_write_file(out, cdiff.p, cdiff.n, 0644);
    if (rc == TOOL_OK)
        printf("Wrote %s: version %u -> %u, script %zu bytes, cdiff %zu bytes\n", out, oldimg.hdr.version,
               newimg.hdr.version, script.n, cdiff.n);
    cf_buf_free(&script);
    cf_buf_free(&cdiff);
    cf_image_free(&oldimg);
    cf_image_free(&newimg);
    cf_rsakey_free(key);
    tool_trust_free(&t);
    return rc;
}

int cmd_apply(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"gzip", no_argument, NULL, 'z'},
                                         TOOL_TRUST_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    tool_trust t = {0};
    const char *out = NULL;
    int gzip = 0, c;
    while ((c = getopt_long(argc, argv, "ho:z", opts, NULL)) != -1) {
        if (tool_trust_opt(&t, c, optarg))
            continue;
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'z':
            gzip = 1;
            break;
        case 'h':
            printf("Usage: cvdtool apply DB PATCH... -o OUT.cld [OPTIONS]\n\n"
                   "Verifies DB (CVD or CLD) and every cdiff PATCH (with PATCH.sign when present),\n"
                   "applies the patches in the order given (each must target the next version),\n"
                   "checks the result against its signed .info manifest and writes it as a CLD.\n\n"
                   "  -o, --output FILE  the CLD to write\n"
                   "  -z, --gzip         compress the CLD body (CompressLocalDatabase)\n" TOOL_TRUST_HELP);
            return TOOL_OK;
        default:
            return TOOL_USAGE;
        }
    }
    if (optind + 2 > argc || out == NULL) {
        tool_err("apply needs DB, at least one PATCH and -o FILE (see 'cvdtool apply --help')");
        return TOOL_USAGE;
    }
    int rc = tool_trust_setup(&t);
    cf_image img;
    cf_image_init(&img);
    if (rc == TOOL_OK)
        rc = tool_load_database(&t, argv[optind], &img, NULL);
    size_t npatch = (size_t)(argc - optind - 1);
    cf_buf *scripts = calloc(npatch, sizeof(*scripts));
    if (scripts == NULL)
        rc = TOOL_ERROR;
    uint32_t expect = img.hdr.version + 1;
    for (size_t i = 0; rc == TOOL_OK && i < npatch; i++, expect++) {
        uint32_t v = 0;
        const char *path = argv[optind + 1 + (int)i];
        rc = tool_load_cdiff(&t, path, &scripts[i], &v, NULL);
        if (rc == TOOL_OK && v != expect) {
            tool_err("%s: patches to version %u, but the next version is %u", path, v, expect);
            rc = TOOL_INVALID;
        }
    }
    cf_err e = {0};
    if (rc == TOOL_OK && cf_verify_apply(&t.ctx, &img, scripts, npatch, &e) != CF_OK) {
        tool_err("%s", e.msg);
        rc = TOOL_INVALID;
    }
    cf_buf cld = CF_BUF_INIT;
    if (rc == TOOL_OK && cf_cld_write(&img, gzip, &cld, &e) != CF_OK) {
        tool_err("%s", e.msg);
        rc = TOOL_ERROR;
    }
    if (rc == TOOL_OK)
        rc = tool_write_file(out, cld.p, cld.n, 0644);
    if (rc == TOOL_OK)
        printf("Wrote %s: version %u, %u signatures, %zu files\n", out, img.hdr.version, img.hdr.sigs,
               img.nfiles);
    for (size_t i = 0; scripts != NULL && i < npatch; i++)
        cf_buf_free(&scripts[i]);
    free(scripts);
    cf_buf_free(&cld);
    cf_image_free(&img);
    tool_trust_free(&t);
    return rc;
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"chain", required_argument, NULL, 'C'},
                                         {"min-flevel", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL, *cert = NULL, *key = NULL, *chain = NULL;
    uint32_t minfl = CF_SIGN_MIN_FLEVEL;
    int c;
    while ((c = getopt_long(argc, argv, "ho:c:k:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'C':
            chain = optarg;
            break;
        case 'f':
            if (tool_opt_u32("--min-flevel", optarg, &minfl) != 0)
                return TOOL_USAGE;
            break;
        case 'h':
            printf("Usage: cvdtool sign FILE --cert CERT --key KEY [--chain CHAIN] [-o OUT]\n\n"
                   "Makes a detached .sign file (#clamsign-1.0, PKCS#7 SHA-256) for a CVD or cdiff,\n"
                   "as ClamAV 1.5 reads them. CERT signs, KEY is its private key, CHAIN holds the\n"
                   "intermediate certificates to embed. The default output name is\n"
                   "NAME-VERSION.cvd.sign beside a CVD (version from its header) and FILE.sign\n"
                   "otherwise.\n\n"
                   "      --min-flevel N  lowest engine f-level the line applies to (default 230)\n");
            return TOOL_OK;
        default:
            return TOOL_USAGE;
        }
    }
    if (optind + 1 != argc || cert == NULL || key == NULL) {
        tool_err("sign needs FILE, --cert and --key (see 'cvdtool sign --help')");
        return TOOL_USAGE;
    }
    const char *path = argv[optind];
    cf_buf data = CF_BUF_INIT, certb = CF_BUF_INIT, keyb = CF_BUF_INIT, chainb = CF_BUF_INIT,
           sign = CF_BUF_INIT;
    cf_err e = {0};
    int rc = TOOL_OK;
    if (cf_file_read(path, CF_MAX_DB_BYTES, &data, &e) != CF_OK ||
        cf_file_read(cert, 1 << 20, &certb, &e) != CF_OK || cf_file_read(key, 1 << 20, &keyb, &e) != CF_OK ||
        (chain != NULL && cf_file_read(chain, 1 << 20, &chainb, &e) != CF_OK)) {
        tool_err("%s", e.msg);
        rc = TOOL_ERROR;
    }
    if (rc == TOOL_OK && cf_signfile_make(data.p, data.n, certb.p, certb.n, keyb.p, keyb.n, chainb.p,
                                          chainb.n, minfl, &sign, &e) != CF_OK) {
        tool_err("%s: %s", path, e.msg);
        rc = TOOL_ERROR;
    }
    char outpath[PATH_MAX];
    if (rc == TOOL_OK && out == NULL) {
        cf_cvdhdr h;
        tool_kind kind = tool_kind_of(path, &data);
        char db[64], name[128];
        tool_dbname_from_path(path, db, sizeof(db));
        if (kind == TOOL_KIND_CVD && cf_cvdhdr_parse(data.p, data.n, &h, NULL) == CF_OK &&
            cf_signfile_name_cvd(db, h.version, name, sizeof(name)) == 0) {
            const char *slash = strrchr(path, '/');
            int dirlen = slash ? (int)(slash - path + 1) : 0;
            snprintf(outpath, sizeof(outpath), "%.*s%s", dirlen, path, name);
        } else {
            snprintf(outpath, sizeof(outpath), "%s.sign", path);
        }
        out = outpath;
    }
    if (rc == TOOL_OK)
        rc = tool_write_file(out, sign.p, sign.n, 0644);
    if (rc == TOOL_OK)
        printf("Wrote %s\n", out);
    cf_buf_free(&data);
    cf_buf_free(&certb);
    cf_buf_free(&keyb);
    cf_buf_free(&chainb);
    cf_buf_free(&sign);
    return rc;
}
