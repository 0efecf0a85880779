#include "testutil.h"

#include <string.h>

#include "clamfresh/gz.h"
#include "clamfresh/image.h"

static void test_gz_round_trip(void **state)
{
    (void)state;
    cf_buf plain = CF_BUF_INIT, z = CF_BUF_INIT, back = CF_BUF_INIT;
    cf_err e = {0};
    for (int i = 0; i < 200000; i++) {
        char c = (char)('a' + cf_test_rand() % 7);
        cf_buf_append(&plain, &c, 1);
    }
    assert_int_equal(cf_gz_deflate(plain.p, plain.n, 9, 1, &z, &e), CF_OK);
    assert_true(cf_gz_is_gzip(z.p, z.n));
    /* ClamAV-style header: no flags, mtime 0, OS Unix. */
    assert_int_equal(z.p[3], 0);
    assert_int_equal(z.p[9], 3);
    /* Trailing bytes after the member are not consumed. */
    cf_buf_append(&z, ":tail", 5);
    size_t used = 0;
    assert_int_equal(cf_gz_inflate(z.p, z.n, plain.n, &back, &used, &e), CF_OK);
    assert_int_equal(used, z.n - 5);
    assert_int_equal(back.n, plain.n);
    assert_memory_equal(back.p, plain.p, plain.n);
    cf_buf_free(&plain);
    cf_buf_free(&z);
    cf_buf_free(&back);
}

static void test_gz_bad_input(void **state)
{
    (void)state;
    cf_buf z = CF_BUF_INIT, out = CF_BUF_INIT;
    cf_err e = {0};
    const char *text = "hello hello hello hello";
    assert_int_equal(cf_gz_deflate((const uint8_t *)text, strlen(text), 6, 0, &z, &e), CF_OK);
    /* Truncated. */
    assert_int_equal(cf_gz_inflate(z.p, z.n - 6, 1000, &out, NULL, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "truncated"));
    /* Bound exceeded. */
    assert_int_equal(cf_gz_inflate(z.p, z.n, 5, &out, NULL, &e), CF_ETOOBIG);
    /* Not gzip at all. */
    assert_int_equal(cf_gz_inflate((const uint8_t *)text, strlen(text), 1000, &out, NULL, &e), CF_EFORMAT);
    /* Corrupted deflate data. */
    z.p[12] ^= 0xff;
    assert_int_not_equal(cf_gz_inflate(z.p, z.n, 1000, &out, NULL, &e), CF_OK);
    assert_int_equal(out.n, 0);
    cf_buf_free(&z);
    cf_buf_free(&out);
}

static void test_image_members(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    cf_image_init(&img);
    assert_int_equal(cf_image_put(&img, "COPYING", "x", 1, &e), CF_OK);
    assert_int_equal(cf_image_put(&img, "daily.info", "i", 1, &e), CF_OK);
    assert_int_equal(cf_image_put(&img, "daily.ndb", "n", 1, &e), CF_OK);
    assert_int_equal(cf_image_put(&img, "daily.info", "ii", 2, &e), CF_OK);
    assert_int_equal(img.nfiles, 3);
    assert_int_equal(cf_image_find(&img, "daily.info"), 1);
    assert_int_equal(cf_image_get(&img, "daily.info")->data.n, 2);
    char db[32];
    assert_true(cf_image_dbname(&img, db, sizeof(db)));
    assert_string_equal(db, "daily");
    assert_int_equal(cf_image_put(&img, "../evil", "x", 1, &e), CF_EFORMAT);
    assert_int_equal(cf_image_put(&img, "a/b", "x", 1, &e), CF_EFORMAT);
    assert_int_equal(cf_image_put(&img, "..", "x", 1, &e), CF_EFORMAT);
    assert_int_equal(cf_image_put(&img, "", "x", 1, &e), CF_EFORMAT);
    assert_int_equal(cf_image_remove(&img, "COPYING", &e), CF_OK);
    assert_int_equal(cf_image_remove(&img, "COPYING", &e), CF_ENOTFOUND);
    assert_string_equal(img.files[0].name, "daily.info");
    cf_image copy;
    assert_int_equal(cf_image_copy(&copy, &img, &e), CF_OK);
    assert_int_equal(copy.nfiles, 2);
    cf_image_free(&copy);
    cf_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gz_round_trip),
        cmocka_unit_test(test_gz_bad_input),
        cmocka_unit_test(test_image_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
