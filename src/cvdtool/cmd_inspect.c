/* The reading commands: info, verify, unpack. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/info.h"
#include "clamfresh/limits.h"
#include "tool.h"

static void print_header(const cf_cvdhdr *h)
{
    /* sigtool shows the time with its first '-' as ':' (formats.md §1.1). */
    char when[sizeof(h->time)];
    snprintf(when, sizeof(when), "%s", h->time);
    char *dash = strchr(when, '-');
    if (dash != NULL)
        *dash = ':';
    printf("Build time: %s\n", when);
    printf("Version: %u\n", h->version);
    printf("Signatures: %u\n", h->sigs);
    printf("Functionality level: %u\n", h->flevel);
    printf("Builder: %s\n", h->builder);
    printf("MD5: %s\n", h->md5);
    printf("Digital signature: %s\n", h->dsig);
    printf("Build time (Unix): %llu\n", (unsigned long long)h->stime);
}

static int info_cdiff(const char *path, const cf_buf *data)
{
    cf_cdiff d = CF_CDIFF_INIT;
    cf_err e = {0};
    if (cf_cdiff_parse(data->p, data->n, &d, &e) != CF_OK) {
        tool_err("%s: %s", path, e.msg);
        return TOOL_INVALID;
    }
    size_t lines = 0, opens = 0;
    for (size_t i = 0; i < d.script.n; i++) {
        if (d.script.p[i] == '\n') {
            lines++;
            if (i + 5 <= d.script.n && (i == 0 || 1)) {
            }
        }
    }
    for (size_t i = 0; i + 5 <= d.script.n; i++)
        if ((i == 0 || d.script.p[i - 1] == '\n') && memcmp(d.script.p + i, "OPEN ", 5) == 0)
            opens++;
    printf("File: %s\n", path);
    printf("Type: cdiff\n");
    printf("Target version: %u\n", d.version);
    printf("Script: %u bytes, %zu lines, %zu files edited\n", d.script_len, lines, opens);
    printf("Signed bytes: %zu\n", d.signed_len);
    printf("Signature: %zu characters\n", strlen(d.sig));
    cf_cdiff_free(&d);
    return TOOL_OK;
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("Usage: cvdtool info FILE\n\n"
                   "Shows the header fields, the members and the .info manifest of a CVD or CLD,\n"
                   "or the header of a cdiff. Nothing is verified; use 'cvdtool verify' for that.\n");
            return TOOL_OK;
        }
        return TOOL_USAGE;
    }
    if (optind + 1 != argc) {
        tool_err("info takes one FILE (see 'cvdtool info --help')");
        return TOOL_USAGE;
    }
    const char *path = argv[optind];
    cf_buf data = CF_BUF_INIT;
    cf_err e = {0};
    if (cf_file_read(path, CF_MAX_DB_BYTES, &data, &e) != CF_OK) {
        tool_err("%s", e.msg);
        return TOOL_ERROR;
    }
    tool_kind kind = tool_kind_of(path, &data);
    int rc = TOOL_OK;
    if (kind == TOOL_KIND_CDIFF) {
        rc = info_cdiff(path, &data);
    } else if (kind == TOOL_KIND_UNKNOWN) {
        tool_err("%s: neither a CVD/CLD nor a cdiff", path);
        rc = TOOL_INVALID;
    } else {
        cf_image img;
        cf_image_init(&img);
        if (cf_cvd_read(data.p, data.n, &img, &e) != CF_OK) {
            tool_err("%s: %s", path, e.msg);
            rc = TOOL_INVALID;
        } else {
            printf("File: %s\n", path);
            printf("Container: %s, %s body\n", kind == TOOL_KIND_CLD ? "CLD" : "CVD",
                   cf_cvd_body_is_plain(data.p, data.n) ? "plain tar" : "gzip");
            print_header(&img.hdr);
            printf("Members (%zu):\n", img.nfiles);
            for (size_t i = 0; i < img.nfiles; i++)
                printf("  %-24s %zu\n", img.files[i].name, img.files[i].data.n);
            char db[CF_MAX_NAME + 1], name[CF_MAX_NAME + 8];
            if (cf_image_dbname(&img, db, sizeof(db))) {
                snprintf(name, sizeof(name), "%s.info", db);
                const cf_dbfile *f = cf_image_get(&img, name);
                cf_info info = CF_INFO_INIT;
                if (f != NULL && cf_info_parse(f->data.p, f->data.n, &info, &e) == CF_OK) {
                    printf("Manifest: %s, %zu entries, %s\n", name, info.n,
                           info.dsig ? "signed (DSIG)" : "unsigned");
                    cf_info_free(&info);
                } else if (f != NULL) {
                    printf("Manifest: %s is malformed: %s\n", name, e.msg);
                }
            } else {
                printf("Manifest: none\n");
            }
        }
        cf_image_free(&img);
    }
    cf_buf_free(&data);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         TOOL_TRUST_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    tool_trust t = {0};
    int quiet = 0, c;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        if (tool_trust_opt(&t, c, optarg))
            continue;
        if (c == 'q') {
            quiet = 1;
            continue;
        }
        if (c == 'h') {
            printf("Usage: cvdtool verify [OPTIONS] FILE...\n\n"
                   "Checks a CVD, CLD or cdiff completely: the detached FILE's .sign when one lies\n"
                   "beside it (a CVD's is NAME-VERSION.cvd.sign, a cdiff's FILE.sign), otherwise\n"
                   "the built-in signature; then, for databases, the signed .info manifest and the\n"
                   "size and SHA-256 of every file it lists. Exit 0 when every FILE verifies, 1\n"
                   "when one does not.\n\n" TOOL_TRUST_HELP "  -q, --quiet       print nothing on success\n");
            return TOOL_OK;
        }
        return TOOL_USAGE;
    }
    if (optind >= argc) {
        tool_err("verify needs at least one FILE");
        return TOOL_USAGE;
    }
    if (t.no_verify) {
        tool_err("--no-verify makes no sense with verify");
        return TOOL_USAGE;
    }
    int rc = tool_trust_setup(&t);
    for (int i = optind; i < argc && rc != TOOL_ERROR; i++) {
        const char *path = argv[i];
        cf_buf head = CF_BUF_INIT;
        cf_err e = {0};
        if (cf_file_read(path, CF_MAX_DB_BYTES, &head, &e) != CF_OK) {
            tool_err("%s", e.msg);
            rc = TOOL_ERROR;
            break;
        }
        tool_kind kind = tool_kind_of(path, &head);
        cf_buf_free(&head);
        cf_sigsource how = CF_SIGSRC_NONE;
        int one;
        if (kind == TOOL_KIND_CDIFF) {
            cf_buf script = CF_BUF_INIT;
            uint32_t version = 0;
            one = tool_load_cdiff(&t, path, &script, &version, &how);
            cf_buf_free(&script);
            if (one == TOOL_OK && !quiet)
                printf("%s: OK (cdiff to version %u, %s)\n", path, version, tool_sigsource_str(how));
        } else if (kind == TOOL_KIND_UNKNOWN) {
            tool_err("%s: neither a CVD/CLD nor a cdiff", path);
            one = TOOL_INVALID;
        } else {
            cf_image img;
            one = tool_load_database(&t, path, &img, &how);
            if (one == TOOL_OK) {
                if (!quiet)
                    printf("%s: OK (version %u, %u signatures, %zu files, %s)\n", path, img.hdr.version,
                           img.hdr.sigs, img.nfiles, tool_sigsource_str(how));
                cf_image_free(&img);
            }
        }
        if (one != TOOL_OK) {
            printf("%s: FAILED\n", path);
            if (rc == TOOL_OK)
                rc = one;
        }
    }
    tool_trust_free(&t);
    return rc;
}

int cmd_unpack(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"force", no_argument, NULL, 'f'},
                                         TOOL_TRUST_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    tool_trust t = {0};
    int force = 0, c;
    while ((c = getopt_long(argc, argv, "hf", opts, NULL)) != -1) {
        if (tool_trust_opt(&t, c, optarg))
            continue;
        if (c == 'f') {
            force = 1;
            continue;
        }
        if (c == 'h') {
            printf("Usage: cvdtool unpack [OPTIONS] FILE DIR\n\n"
                   "Verifies a CVD or CLD (as 'cvdtool verify') and writes its files into DIR,\n"
                   "which is created when missing. Existing files are not overwritten unless\n"
                   "--force is given.\n\n" TOOL_TRUST_HELP "  -f, --force       overwrite files in DIR\n");
            return TOOL_OK;
        }
        return TOOL_USAGE;
    }
    if (optind + 2 != argc) {
        tool_err("unpack takes FILE and DIR (see 'cvdtool unpack --help')");
        return TOOL_USAGE;
    }
    const char *path = argv[optind], *dir = argv[optind + 1];
    int rc = tool_trust_setup(&t);
    cf_image img;
    cf_image_init(&img);
    if (rc == TOOL_OK)
        rc = tool_load_database(&t, path, &img, NULL);
    if (rc == TOOL_OK && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        tool_err("%s: cannot create: %s", dir, strerror(errno));
        rc = TOOL_ERROR;
    }
    for (size_t i = 0; rc == TOOL_OK && i < img.nfiles; i++) {
        char out[PATH_MAX];
        /* Member names were validated by the reader: bare names, no '/' or "..". */
        snprintf(out, sizeof(out), "%s/%s", dir, img.files[i].name);
        if (force)
            rc = tool_write_file(out, img.files[i].data.p, img.files[i].data.n, 0644);
        else {
            cf_err e = {0};
            if (cf_file_write_new(out, img.files[i].data.p, img.files[i].data.n, 0644, &e) != CF_OK) {
                tool_err("%s", e.msg);
                rc = TOOL_ERROR;
            }
        }
    }
    if (rc == TOOL_OK)
        printf("%s: %zu files written to %s\n", path, img.nfiles, dir);
    cf_image_free(&img);
    tool_trust_free(&t);
    return rc;
}
