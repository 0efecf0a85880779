/* The .sign check over bytes that are not in memory: the format layer's
 * cf_signfile_verify_src with a caller's reader, and the store's
 * cf_signfile_verify_fd that reads a file through it. Both must give the
 * verdict of the same bytes in memory. Uses the real signed vectors; skipped
 * (77) when they are absent. */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/codesign.h"

#define T_2026_01_01 ((time_t)1767225600)

/* A reader over the first `size` bytes of a buffer that hands out at most
 * `chunk` bytes a call and fails at or after offset `fail_at`. */
typedef struct reader {
    const cf_buf *data;
    size_t size;
    size_t chunk;
    uint64_t fail_at;
    unsigned calls;
} reader;

static long read_at(void *arg, uint8_t *out, size_t len, uint64_t off)
{
    reader *r = arg;
    r->calls++;
    if (off >= r->fail_at)
        return -1;
    if (off >= r->size)
        return 0;
    size_t k = r->size - (size_t)off;
    if (k > len)
        k = len;
    if (k > r->chunk)
        k = r->chunk;
    memcpy(out, r->data->p + off, k);
    return (long)k;
}

typedef struct fixture {
    cf_certstore *store;
    cf_buf sign, data;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    cf_buf pem = CF_BUF_INIT;
    cf_test_read_vector("clamav-test.crt", &pem);
    cf_err e = {0};
    assert_int_equal(cf_certstore_new(&f->store, &e), CF_OK);
    assert_int_equal(cf_certstore_add_pem(f->store, pem.p, pem.n, "clamav-test.crt", &e), CF_OK);
    cf_buf_free(&pem);
    cf_test_read_vector("test-2.cvd.sign", &f->sign);
    cf_test_read_vector("test-2.cvd", &f->data);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cf_certstore_free(f->store);
    cf_buf_free(&f->sign);
    cf_buf_free(&f->data);
    free(f);
    return 0;
}

static cf_signverdict via_reader(const fixture *f, reader *r, size_t n, char *signer, size_t ssz, cf_err *e)
{
    cf_signsrc src = {n, read_at, r};
    return cf_signfile_verify_src(f->store, f->sign.p, f->sign.n, &src, 230, T_2026_01_01, signer, ssz, e);
}

static void test_chunked_reader_is_memory_verdict(void **state)
{
    fixture *f = *state;
    char mem_signer[CF_SIGN_SIGNER_MAX], src_signer[CF_SIGN_SIGNER_MAX];
    cf_err me = {0}, se = {0};
    cf_signverdict mv = cf_signfile_verify(f->store, f->sign.p, f->sign.n, f->data.p, f->data.n, 230,
                                           T_2026_01_01, mem_signer, sizeof(mem_signer), &me);
    assert_int_equal(mv, CF_SIGN_VALID);
    /* Odd chunk sizes: the reader, not the BIO's buffer, decides how much
     * arrives per call. */
    reader r = {&f->data, f->data.n, 4093, UINT64_MAX, 0};
    cf_signverdict sv = via_reader(f, &r, f->data.n, src_signer, sizeof(src_signer), &se);
    if (sv != CF_SIGN_VALID)
        fail_msg("reader: %s: %s", cf_signverdict_str(sv), se.msg);
    assert_string_equal(src_signer, mem_signer);
    assert_int_equal(se.code, CF_OK);
    assert_true(r.calls > f->data.n / 4093);
}

static void test_read_error_is_invalid(void **state)
{
    fixture *f = *state;
    /* Small chunks, so the failure comes before the last byte was read. */
    reader r = {&f->data, f->data.n, 4093, f->data.n / 2, 0};
    cf_err e = {0};
    assert_int_equal(via_reader(f, &r, f->data.n, NULL, 0, &e), CF_SIGN_INVALID);
    assert_int_equal(e.code, CF_ESIG);
}

static void test_changed_or_short_bytes_are_invalid(void **state)
{
    fixture *f = *state;
    cf_err e = {0};
    /* Fewer bytes than were signed. */
    reader r = {&f->data, f->data.n - 1, 1u << 20, UINT64_MAX, 0};
    assert_int_equal(via_reader(f, &r, f->data.n - 1, NULL, 0, &e), CF_SIGN_INVALID);
    /* One flipped bit. */
    cf_buf copy = CF_BUF_INIT;
    assert_int_equal(cf_buf_append(&copy, f->data.p, f->data.n), CF_OK);
    copy.p[copy.n / 3] ^= 0x10;
    reader r2 = {&copy, copy.n, 1u << 20, UINT64_MAX, 0};
    assert_int_equal(via_reader(f, &r2, copy.n, NULL, 0, &e), CF_SIGN_INVALID);
    cf_buf_free(&copy);
}

static void test_missing_source_is_unusable(void **state)
{
    fixture *f = *state;
    cf_err e = {0};
    assert_int_equal(
        cf_signfile_verify_src(f->store, f->sign.p, f->sign.n, NULL, 230, T_2026_01_01, NULL, 0, &e),
        CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_EINVAL);
    cf_signsrc no_read = {f->data.n, NULL, NULL};
    assert_int_equal(
        cf_signfile_verify_src(f->store, f->sign.p, f->sign.n, &no_read, 230, T_2026_01_01, NULL, 0, &e),
        CF_SIGN_UNUSABLE);
}

/* The store's reader over a real file, and over something that is not one. */
static void test_fd_through_the_store(void **state)
{
    fixture *f = *state;
    char *dir = cf_test_mkdtemp();
    assert_non_null(dir);
    char path[4200];
    snprintf(path, sizeof(path), "%s/test-2.cvd", dir);
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f->data.p, f->data.n), (ssize_t)f->data.n);
    /* The check reads from offset 0 and leaves the descriptor's position alone. */
    off_t pos = lseek(fd, 0, SEEK_CUR);
    char signer[CF_SIGN_SIGNER_MAX];
    cf_err e = {0};
    cf_signverdict v = cf_signfile_verify_fd(f->store, f->sign.p, f->sign.n, fd, 230, T_2026_01_01, signer,
                                             sizeof(signer), &e);
    if (v != CF_SIGN_VALID)
        fail_msg("fd: %s: %s", cf_signverdict_str(v), e.msg);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), pos);
    close(fd);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(
        cf_signfile_verify_fd(f->store, f->sign.p, f->sign.n, dfd, 230, T_2026_01_01, NULL, 0, &e),
        CF_SIGN_UNUSABLE);
    assert_int_equal(e.code, CF_EIO);
    close(dfd);
    cf_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    cf_test_require_vectors();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunked_reader_is_memory_verdict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_error_is_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_or_short_bytes_are_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_source_is_unusable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_through_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
