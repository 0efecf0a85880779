#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/fileio.h"

const char *cf_test_vectors_dir(void)
{
    static char dir[4096];
    const char *base = getenv("CF_VECTORS");
    if (base == NULL || *base == '\0')
        return NULL;
    snprintf(dir, sizeof(dir), "%s/clamav", base);
    struct stat st;
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/test-1.cvd", dir);
    if (stat(probe, &st) != 0)
        return NULL;
    return dir;
}

void cf_test_require_vectors(void)
{
    if (cf_test_vectors_dir() == NULL) {
        printf("SKIP: the ClamAV-signed vectors (../shared/vectors) are not present\n");
        exit(77);
    }
}

void cf_test_read_file(const char *path, cf_buf *out)
{
    cf_err e = {0};
    out->n = 0;
    if (cf_file_read(path, 1UL << 30, out, &e) != CF_OK)
        fail_msg("cannot read %s: %s", path, e.msg);
}

void cf_test_read_vector(const char *name, cf_buf *out)
{
    const char *dir = cf_test_vectors_dir();
    if (dir == NULL)
        fail_msg("vectors not present");
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cf_test_read_file(path, out);
}

char *cf_test_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    size_t n = strlen(base) + 32;
    char *path = malloc(n);
    if (path == NULL)
        return NULL;
    snprintf(path, n, "%s/cftest.XXXXXX", base);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void cf_test_rmtree(const char *path)
{
    if (path != NULL)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint32_t rng_state = 2463534242u;

void cf_test_srand(uint32_t seed)
{
    rng_state = seed ? seed : 2463534242u;
}

uint32_t cf_test_rand(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

void cf_test_capture_begin(cf_test_capture *c, const char *dir)
{
    static int seq;
    fflush(stdout);
    fflush(stderr);
    snprintf(c->out_path, sizeof(c->out_path), "%s/cap-out-%d", dir, seq);
    snprintf(c->err_path, sizeof(c->err_path), "%s/cap-err-%d", dir, seq++);
    int fo = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fo >= 0 && fe >= 0);
    c->saved_out = dup(1);
    c->saved_err = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    c->out = c->err = NULL;
}

char *cf_test_slurp(const char *path)
{
    cf_buf b = CF_BUF_INIT;
    cf_test_read_file(path, &b);
    cf_buf_append(&b, "", 1);
    return (char *)cf_buf_steal(&b, NULL);
}

void cf_test_capture_end(cf_test_capture *c)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved_out, 1);
    dup2(c->saved_err, 2);
    close(c->saved_out);
    close(c->saved_err);
    c->out = cf_test_slurp(c->out_path);
    c->err = cf_test_slurp(c->err_path);
}

void cf_test_capture_free(cf_test_capture *c)
{
    free(c->out);
    free(c->err);
    c->out = c->err = NULL;
}

cf_code cf_test_cdiff_patch(cf_image *img, const uint8_t *p, size_t n, const cf_rsakey *key, cf_err *e)
{
    cf_code rc = key != NULL ? cf_cdiff_verify(p, n, key, e) : CF_OK;
    if (rc != CF_OK)
        return rc;
    cf_cdiff d;
    if ((rc = cf_cdiff_parse(p, n, &d, e)) != CF_OK)
        return rc;
    rc = cf_cdiff_apply(img, d.script.p, d.script.n, e);
    cf_cdiff_free(&d);
    return rc;
}
