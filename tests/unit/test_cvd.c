/* Container layer without the ClamAV vectors: header parse/format, in-memory
 * tar read/write (strict rules of formats.md §2.4–§2.6), CVD/CLD assembly. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clamfresh/cvd.h"
#include "clamfresh/fileio.h"
#include "clamfresh/gz.h"
#include "clamfresh/image.h"
#include "clamfresh/tarball.h"

#define LINE1                                                                                                \
    "ClamAV-VDB:22 Jun 2021 14-58 -0400:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90b:ttQeKzTSL5iF5/IWsA8w"        \
    "eveL64WDVkhgfbm/ABaW3xAWalVKcAp65Q/cWmhkhKFfHSLIXNfCzTLbhfTeISKpfWAheL7NZk+t6nQ8NEFBBst6CQcoF"          \
    "TwwyVLwwTSN38VYLW/vZFYphnkBcCotyo++NYU5VQ9JUA6dFQXxaU00b6c:micasnyd:1624388302"

/* Pads a header line with spaces to 512 bytes. */
static void pad512(const char *line, uint8_t out[CF_HDR_SIZE])
{
    size_t n = strlen(line);
    assert_true(n <= CF_HDR_SIZE);
    memset(out, ' ', CF_HDR_SIZE);
    memcpy(out, line, n);
}

static cf_code parse_padded(const char *line, cf_cvdhdr *h, cf_err *e)
{
    uint8_t b[CF_HDR_SIZE];
    pad512(line, b);
    return cf_cvdhdr_parse(b, sizeof(b), h, e);
}

static void expect_reject(const uint8_t *p, size_t n, const char *needle)
{
    cf_cvdhdr h;
    cf_err e = {0};
    cf_code rc = cf_cvdhdr_parse(p, n, &h, &e);
    if (rc == CF_OK || strstr(e.msg, needle) == NULL)
        fail_msg("expected rejection with '%s', got rc %d '%s'", needle, rc, e.msg);
}

static void expect_reject_line(const char *line, const char *needle)
{
    uint8_t b[CF_HDR_SIZE];
    pad512(line, b);
    expect_reject(b, sizeof(b), needle);
}

/* ---- header ---- */

static void test_hdr_parse_real_line(void **state)
{
    (void)state;
    cf_cvdhdr h;
    cf_err e = {0};
    assert_int_equal(parse_padded(LINE1, &h, &e), CF_OK);
    assert_string_equal(h.time, "22 Jun 2021 14-58 -0400");
    assert_int_equal(h.version, 1);
    assert_int_equal(h.sigs, 0);
    assert_int_equal(h.flevel, 81);
    assert_string_equal(h.md5, "a4ab60ae1c1c4e8f787459102dcfd90b");
    assert_int_equal(strlen(h.dsig), 171);
    assert_string_equal(h.builder, "micasnyd");
    assert_true(h.stime == 1624388302ULL);

    /* Formatting gives back the same 512 bytes. */
    char out[CF_HDR_SIZE];
    uint8_t want[CF_HDR_SIZE];
    pad512(LINE1, want);
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_OK);
    assert_memory_equal(out, want, CF_HDR_SIZE);
}

static void test_hdr_info_line(void **state)
{
    (void)state;
    const char *info = "ClamAV-VDB:22 Jun 2021 16-55 -0400:2:0:81:X:X:micasnyd:1624395301\n"
                       "test.ndb:240:244a20e9da37de181ede6db64f85c97916381d91f65e1b39e4f9300cb0726be9\n";
    cf_cvdhdr h;
    cf_err e = {0};
    assert_int_equal(cf_cvdhdr_parse_line(info, strlen(info), &h, &e), CF_OK);
    assert_int_equal(h.version, 2);
    assert_string_equal(h.md5, "X");
    assert_string_equal(h.dsig, "X");
    assert_true(h.stime == 1624395301ULL);
    /* Short input through cf_cvdhdr_parse is a .info line too. */
    memset(&h, 0, sizeof(h));
    assert_int_equal(cf_cvdhdr_parse((const uint8_t *)info, strlen(info), &h, &e), CF_OK);
    assert_string_equal(h.builder, "micasnyd");

    cf_buf b = CF_BUF_INIT;
    assert_int_equal(cf_cvdhdr_format_line(&h, &b, &e), CF_OK);
    const char *nl = strchr(info, '\n');
    assert_int_equal(b.n, (size_t)(nl - info));
    assert_memory_equal(b.p, info, b.n);
    cf_buf_free(&b);

    /* CRLF in a .info line is refused. */
    const char *crlf = "ClamAV-VDB:t:2:0:81:X:X:b:1\r\n";
    assert_int_not_equal(cf_cvdhdr_parse_line(crlf, strlen(crlf), &h, &e), CF_OK);
    assert_non_null(strstr(e.msg, "line break"));
}

static void test_hdr_round_trip_random(void **state)
{
    (void)state;
    cf_test_srand(42);
    for (int it = 0; it < 300; it++) {
        cf_cvdhdr h, back;
        memset(&h, 0, sizeof(h));
        size_t tl = 1 + cf_test_rand() % 40;
        for (size_t i = 0; i < tl; i++) {
            char c;
            do
                c = (char)(0x20 + cf_test_rand() % 95);
            while (c == ':');
            h.time[i] = c;
        }
        h.version = cf_test_rand();
        h.sigs = cf_test_rand() % 1000000;
        h.flevel = cf_test_rand() % 300;
        if (it % 2) {
            for (int i = 0; i < 32; i++)
                h.md5[i] = "0123456789abcdef"[cf_test_rand() % 16];
            size_t dl = 1 + cf_test_rand() % 342;
            for (size_t i = 0; i < dl; i++)
                h.dsig[i] =
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[cf_test_rand() % 64];
        } else {
            strcpy(h.md5, "X");
            strcpy(h.dsig, "X");
        }
        snprintf(h.builder, sizeof(h.builder), "b%u", cf_test_rand() % 1000);
        h.stime = ((uint64_t)cf_test_rand() << 32) | cf_test_rand();
        if (it == 7)
            h.stime = UINT64_MAX;
        char out[CF_HDR_SIZE];
        cf_err e = {0};
        cf_code rc = cf_cvdhdr_format(&h, out, &e);
        if (rc != CF_OK) {
            /* only an over-long header may be refused */
            assert_non_null(strstr(e.msg, "do not fit"));
            continue;
        }
        for (int i = 0; i < CF_HDR_SIZE; i++)
            assert_true(out[i] >= 0x20 && out[i] < 0x7f);
        assert_int_equal(cf_cvdhdr_parse((const uint8_t *)out, CF_HDR_SIZE, &back, &e), CF_OK);
        assert_string_equal(back.time, h.time);
        assert_int_equal(back.version, h.version);
        assert_int_equal(back.sigs, h.sigs);
        assert_int_equal(back.flevel, h.flevel);
        assert_string_equal(back.md5, h.md5);
        assert_string_equal(back.dsig, h.dsig);
        assert_string_equal(back.builder, h.builder);
        assert_true(back.stime == h.stime);
    }
}

static void test_hdr_parse_rejects(void **state)
{
    (void)state;
    uint8_t b[CF_HDR_SIZE + 1];

    /* NUL padding (accepted by ClamAV <= 1.4, refused by 1.5 and by freshclam's remote check). */
    memset(b, 0, sizeof(b));
    memcpy(b, LINE1, strlen(LINE1));
    expect_reject(b, CF_HDR_SIZE, "NUL byte at offset 266");

    /* A newline inside the 512 bytes. */
    pad512(LINE1, b);
    b[strlen(LINE1)] = '\n';
    expect_reject(b, CF_HDR_SIZE, "line break at offset 266");
    pad512(LINE1, b);
    b[20] = '\n';
    expect_reject(b, CF_HDR_SIZE, "line break at offset 20");
    pad512(LINE1, b);
    b[511] = '\r';
    expect_reject(b, CF_HDR_SIZE, "line break at offset 511");
    pad512(LINE1, b);
    b[400] = 0x7f;
    expect_reject(b, CF_HDR_SIZE, "non-printable byte 0x7f at offset 400");
    pad512(LINE1, b);
    b[300] = (uint8_t)0xe9;
    expect_reject(b, CF_HDR_SIZE, "non-printable byte 0xe9 at offset 300");

    /* Empty fields (ClamAV's C tokenizer would shift the later fields). */
    expect_reject_line("ClamAV-VDB::1:0:81:X:X:b:1624388302", "field 2 (time) is empty");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:X::1624388302", "field 8 (builder) is empty");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X::b:1624388302", "field 7 (dsig) is empty");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:X:b:", "field 9 (stime) is empty");

    /* Numbers: digits only, within range. */
    expect_reject_line("ClamAV-VDB:t:1a:0:81:X:X:b:1", "field 3 (version) is not a decimal number");
    expect_reject_line("ClamAV-VDB:t:+1:0:81:X:X:b:1", "field 3 (version) is not a decimal number");
    expect_reject_line("ClamAV-VDB:t: 1:0:81:X:X:b:1", "field 3 (version) is not a decimal number");
    expect_reject_line("ClamAV-VDB:t:-1:0:81:X:X:b:1", "field 3 (version) is not a decimal number");
    expect_reject_line("ClamAV-VDB:t:1:x:81:X:X:b:1", "field 4 (sigs) is not a decimal number");
    expect_reject_line("ClamAV-VDB:t:1:0:8 1:X:X:b:1", "field 5 (flevel) is not a decimal number");
    expect_reject_line("ClamAV-VDB:t:4294967296:0:81:X:X:b:1", "field 3 (version) exceeds");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:X:b:18446744073709551616", "field 9 (stime) exceeds");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:X:b:16243 88302", "field 9 (stime) is not a decimal number");

    /* md5 and dsig. */
    expect_reject_line("ClamAV-VDB:t:1:0:81:A4AB60AE1C1C4E8F787459102DCFD90B:X:b:1", "field 6 (md5)");
    expect_reject_line("ClamAV-VDB:t:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90:X:b:1", "field 6 (md5)");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:ab=c:b:1", "field 7 (dsig)");

    /* Structure. */
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:X:b", "field 9 (stime) is missing");
    expect_reject_line("ClamAV-VDB:t:1:0:81:X:X:b:1:extra", "more than 9 fields");
    expect_reject_line("ClamAV-VDX:t:1:0:81:X:X:b:1", "bad magic");
    expect_reject_line("clamav-vdb:t:1:0:81:X:X:b:1", "bad magic");
    expect_reject_line("ClamAV-VDBX:t:1:0:81:X:X:b:1", "bad magic");
    expect_reject_line("", "bad magic");

    /* 511 bytes of an otherwise good padded header. */
    pad512(LINE1, b);
    expect_reject(b, CF_HDR_SIZE - 1, "truncated (511 of 512 bytes)");
    /* A full 512-byte header is accepted with more data following. */
    cf_cvdhdr h;
    cf_err e = {0};
    b[CF_HDR_SIZE] = 0x1f;
    assert_int_equal(cf_cvdhdr_parse(b, CF_HDR_SIZE + 1, &h, &e), CF_OK);
}

static void test_hdr_format_refuses(void **state)
{
    (void)state;
    cf_cvdhdr good, h;
    cf_err e = {0};
    assert_int_equal(
        parse_padded("ClamAV-VDB:22 Jun 2021 14-58 -0400:1:0:81:X:X:micasnyd:1624388302", &good, &e), CF_OK);
    char out[CF_HDR_SIZE];
    cf_buf b = CF_BUF_INIT;

    h = good;
    strcpy(h.time, "22 Jun 2021 14:58 -0400");
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "time"));
    h = good;
    h.time[0] = '\0';
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    h = good;
    strcpy(h.builder, "a:b");
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "builder"));
    h = good;
    h.builder[0] = '\0';
    assert_int_equal(cf_cvdhdr_format_line(&h, &b, &e), CF_EINVAL);
    h = good;
    strcpy(h.builder, "tab\there");
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    h = good;
    strcpy(h.md5, "ABCDEF");
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    h = good;
    h.dsig[0] = '\0';
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    h = good;
    memset(h.time, 'T', sizeof(h.time)); /* not terminated */
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);

    /* Too long for 512 bytes. */
    h = good;
    memset(h.dsig, 'a', 399);
    h.dsig[399] = '\0';
    memset(h.builder, 'b', 63);
    h.builder[63] = '\0';
    memset(h.time, 't', 63);
    h.time[63] = '\0';
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "do not fit in 512"));
    assert_int_equal(cf_cvdhdr_format_line(&h, &b, &e), CF_EINVAL);
    assert_int_equal(b.n, 0);

    /* Exactly 512 bytes fits; the stime then touches the end. */
    h = good;
    memset(h.time, 't', 63);
    h.time[63] = '\0';
    memset(h.builder, 'b', 63);
    h.builder[63] = '\0';
    size_t base;
    assert_int_equal(cf_cvdhdr_format_line(&h, &b, &e), CF_OK);
    base = b.n - 1; /* everything but the one-char dsig */
    size_t dl = CF_HDR_SIZE - base;
    memset(h.dsig, 'z', dl);
    h.dsig[dl] = '\0';
    assert_int_equal(cf_cvdhdr_format(&h, out, &e), CF_OK);
    assert_memory_equal(out + CF_HDR_SIZE - 10, "1624388302", 10);
    cf_cvdhdr back;
    assert_int_equal(cf_cvdhdr_parse((uint8_t *)out, CF_HDR_SIZE, &back, &e), CF_OK);
    assert_string_equal(back.dsig, h.dsig);
    cf_buf_free(&b);
}

/* ---- tar ---- */

static void rand_name(char *out, size_t maxlen)
{
    static const char cs[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+";
    size_t n = 1 + cf_test_rand() % maxlen;
    for (size_t i = 0; i < n; i++)
        out[i] = cs[cf_test_rand() % (sizeof(cs) - 1)];
    out[n] = '\0';
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        out[0] = 'x';
}

static uint32_t octal_field(const uint8_t *f, size_t len)
{
    char tmp[16] = {0};
    memcpy(tmp, f, len);
    return (uint32_t)strtoul(tmp, NULL, 8);
}

/* Every header in a tar we wrote: correct checksum, regular file, mode 644, mtime 0. */
static void check_written_headers(const cf_buf *tar, size_t nmembers)
{
    size_t off = 0, seen = 0;
    while (off < tar->n) {
        const uint8_t *h = tar->p + off;
        unsigned long sum = 0;
        for (int i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : h[i];
        assert_int_equal(octal_field(h + 148, 8), sum);
        assert_int_equal(h[156], '0');
        assert_int_equal(octal_field(h + 100, 8), 0644);
        assert_int_equal(octal_field(h + 136, 12), 0);
        assert_memory_equal(h + 257, "ustar", 6);
        assert_int_equal(h[345], 0);
        uint32_t size = octal_field(h + 124, 12);
        off += 512 + (size + 511) / 512 * 512;
        seen++;
    }
    assert_int_equal(off, tar->n);
    assert_int_equal(seen, nmembers);
}

static void test_tar_round_trip(void **state)
{
    (void)state;
    cf_test_srand(7);
    static const size_t special[] = {0, 1, 511, 512, 513, 1024, 4096, 65536, 69632, 70000};
    for (int it = 0; it < 25; it++) {
        cf_image img;
        cf_image_init(&img);
        cf_err e = {0};
        size_t nm = 1 + cf_test_rand() % 12;
        for (size_t k = 0; k < nm; k++) {
            char name[CF_MAX_NAME + 1];
            rand_name(name, it == 3 ? CF_MAX_NAME : 20);
            if (it == 3 && k == 0) {
                memset(name, 'n', CF_MAX_NAME);
                name[CF_MAX_NAME] = '\0';
            }
            size_t size = (k < sizeof(special) / sizeof(special[0]) && it % 2 == 0) ? special[k]
                                                                                    : cf_test_rand() % 70001;
            uint8_t *d = malloc(size + 1);
            for (size_t i = 0; i < size; i++)
                d[i] = (uint8_t)cf_test_rand();
            assert_int_equal(cf_image_put(&img, name, d, size, &e), CF_OK);
            free(d);
        }
        cf_buf tar = CF_BUF_INIT;
        /* Ask for the last member first, plus a name that does not exist. */
        const char *first[] = {img.files[img.nfiles - 1].name, "no-such-member", NULL};
        assert_int_equal(cf_tar_write(&img, first, &tar, &e), CF_OK);
        assert_int_equal(tar.n % 512, 0);
        check_written_headers(&tar, img.nfiles);

        cf_image back;
        cf_image_init(&back);
        if (cf_tar_read(tar.p, tar.n, &back, &e) != CF_OK)
            fail_msg("read back failed: %s", e.msg);
        assert_int_equal(back.nfiles, img.nfiles);
        assert_string_equal(back.files[0].name, img.files[img.nfiles - 1].name);
        for (size_t k = 0; k < img.nfiles; k++) {
            const cf_dbfile *a = &img.files[k];
            const cf_dbfile *b = &back.files[k == img.nfiles - 1 ? 0 : k + 1];
            assert_string_equal(a->name, b->name);
            assert_int_equal(a->data.n, b->data.n);
            if (a->data.n)
                assert_memory_equal(a->data.p, b->data.p, a->data.n);
        }

        /* Trailing end-of-archive blocks and whatever follows them are ignored. */
        uint8_t zero[1024] = {0};
        cf_buf_append(&tar, zero, sizeof(zero));
        cf_buf_append(&tar, "trailing junk", 13);
        cf_image again;
        cf_image_init(&again);
        assert_int_equal(cf_tar_read(tar.p, tar.n, &again, &e), CF_OK);
        assert_int_equal(again.nfiles, img.nfiles);

        cf_image_free(&again);
        cf_image_free(&back);
        cf_image_free(&img);
        cf_buf_free(&tar);
    }
}

static void test_tar_empty_and_order(void **state)
{
    (void)state;
    cf_image img, back;
    cf_image_init(&img);
    cf_image_init(&back);
    cf_err e = {0};
    cf_buf tar = CF_BUF_INIT;
    assert_int_equal(cf_tar_write(&img, NULL, &tar, &e), CF_OK);
    assert_int_equal(tar.n, 0);
    assert_int_equal(cf_tar_read(tar.p, 0, &back, &e), CF_OK);
    assert_int_equal(back.nfiles, 0);

    cf_image_put(&img, "a", "1", 1, &e);
    cf_image_put(&img, "b", "2", 1, &e);
    cf_image_put(&img, "c", "3", 1, &e);
    const char *first[] = {"c", "a", "c", NULL};
    assert_int_equal(cf_tar_write(&img, first, &tar, &e), CF_OK);
    assert_int_equal(tar.n, 6 * 512);
    assert_int_equal(cf_tar_read(tar.p, tar.n, &back, &e), CF_OK);
    assert_int_equal(back.nfiles, 3);
    assert_string_equal(back.files[0].name, "c");
    assert_string_equal(back.files[1].name, "a");
    assert_string_equal(back.files[2].name, "b");

    /* Reading appends; a name already present is a duplicate and leaves the image unchanged. */
    assert_int_equal(cf_tar_read(tar.p, tar.n, &back, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "'c'"));
    assert_non_null(strstr(e.msg, "duplicate"));
    assert_int_equal(back.nfiles, 3);

    cf_image_free(&img);
    cf_image_free(&back);
    cf_buf_free(&tar);
}

/* A ClamAV-style header (§2.2): v7, empty mode, "%o" size, "%06o\0\0" checksum, typeflag NUL. */
static void clamav_header(uint8_t h[512], const char *name, size_t size)
{
    memset(h, 0, 512);
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 124, 12, "%o", (unsigned)size);
    unsigned long sum = 256;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06lo", sum);
}

static void rechecksum(uint8_t *h)
{
    unsigned long sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    memset(h + 148, 0, 8);
    snprintf((char *)h + 148, 8, "%06lo", sum);
}

static void test_tar_clamav_style(void **state)
{
    (void)state;
    cf_buf tar = CF_BUF_INIT;
    uint8_t h[512], pad[512] = {0};
    clamav_header(h, "COPYING", 700);
    cf_buf_append(&tar, h, 512);
    for (int i = 0; i < 700; i++)
        cf_buf_append(&tar, "G", 1);
    cf_buf_append(&tar, pad, 1024 - 700);
    clamav_header(h, "x.info", 0);
    cf_buf_append(&tar, h, 512);

    cf_image img;
    cf_image_init(&img);
    cf_err e = {0};
    if (cf_tar_read(tar.p, tar.n, &img, &e) != CF_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(img.nfiles, 2);
    assert_string_equal(img.files[0].name, "COPYING");
    assert_int_equal(img.files[0].data.n, 700);
    assert_int_equal(img.files[0].data.p[699], 'G');
    assert_int_equal(img.files[1].data.n, 0);
    cf_image_free(&img);
    cf_buf_free(&tar);
}

/* A valid two-member tar ("first" 700 bytes, then the member under test, 600 bytes). */
static void good_tar(cf_buf *tar, const char *second)
{
    cf_image img;
    cf_image_init(&img);
    cf_err e = {0};
    uint8_t d[700];
    memset(d, 'd', sizeof(d));
    assert_int_equal(cf_image_put(&img, "first", d, 700, &e), CF_OK);
    assert_int_equal(cf_image_put(&img, second, d, 600, &e), CF_OK);
    tar->n = 0;
    assert_int_equal(cf_tar_write(&img, NULL, tar, &e), CF_OK);
    cf_image_free(&img);
}

#define SECOND 1536 /* offset of the second header in good_tar */

static void expect_tar_reject(const cf_buf *tar, size_t n, const char *name, const char *why)
{
    cf_image img;
    cf_image_init(&img);
    cf_err e = {0};
    cf_code rc = cf_tar_read(tar->p, n, &img, &e);
    char quoted[128];
    snprintf(quoted, sizeof(quoted), "'%s'", name);
    if (rc == CF_OK || strstr(e.msg, quoted) == NULL || strstr(e.msg, why) == NULL)
        fail_msg("expected rejection naming %s with '%s', got rc %d '%s'", quoted, why, rc, e.msg);
    assert_int_equal(img.nfiles, 0); /* nothing half-read left behind */
    cf_image_free(&img);
}

static void test_tar_rejects(void **state)
{
    (void)state;
    cf_buf tar = CF_BUF_INIT;

    good_tar(&tar, "victim");
    tar.p[SECOND + 10] = 'Z'; /* inside the name field, checksum not updated */
    expect_tar_reject(&tar, tar.n, "victim", "bad header checksum");

    /* Checksum that only matches the signed-byte sum (libtar would accept it). */
    good_tar(&tar, "victim");
    tar.p[SECOND + 300] = 0x80;
    {
        long sum = 0;
        for (int i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : (signed char)tar.p[SECOND + i];
        memset(tar.p + SECOND + 148, 0, 8);
        snprintf((char *)tar.p + SECOND + 148, 8, "%06lo", (unsigned long)sum);
    }
    expect_tar_reject(&tar, tar.n, "victim", "bad header checksum");

    good_tar(&tar, "victim");
    memcpy(tar.p + SECOND + 148, "zzzzzz", 6);
    expect_tar_reject(&tar, tar.n, "victim", "checksum field is not octal");

    static const struct {
        char type;
        const char *why;
    } types[] = {{'5', "directory"},     {'2', "symbolic link"},    {'1', "hard link"},
                 {'x', "pax"},           {'g', "pax global"},       {'L', "GNU long-name"},
                 {'K', "GNU long-link"}, {'3', "character device"}, {'S', "not a regular file"}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        good_tar(&tar, "victim");
        tar.p[SECOND + 156] = (uint8_t)types[i].type;
        rechecksum(tar.p + SECOND);
        expect_tar_reject(&tar, tar.n, "victim", types[i].why);
    }

    good_tar(&tar, "victim");
    memcpy(tar.p + SECOND, "dir/victim", 11);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "dir/victim", "directory separators");

    good_tar(&tar, "victim");
    memcpy(tar.p + SECOND, "/victim", 8);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "/victim", "absolute");

    good_tar(&tar, "victim");
    memset(tar.p + SECOND, 0, 100);
    memcpy(tar.p + SECOND, "..", 2);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "..", "not a file name");

    good_tar(&tar, "victim");
    memcpy(tar.p + SECOND, "vic tim", 7);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "vic tim", "printable");

    good_tar(&tar, "victim");
    memset(tar.p + SECOND, 'v', 100);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n,
                      "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
                      "vvvvvvvvvvvvvv",
                      "fills all 100 bytes");

    good_tar(&tar, "victim");
    memcpy(tar.p + SECOND + 345, "pre", 3);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "victim", "directory prefix");

    /* Truncated data, and a data block cut short. */
    good_tar(&tar, "victim");
    expect_tar_reject(&tar, SECOND + 512 + 300, "victim", "data truncated (300 of 600 bytes present)");
    expect_tar_reject(&tar, SECOND + 512 + 700, "victim", "partial last block at offset 2560");
    expect_tar_reject(&tar, SECOND + 512, "victim", "data truncated (0 of 600");
    /* A header block cut short names the member before it. */
    expect_tar_reject(&tar, SECOND + 100, "first", "partial header block of 100 bytes at offset 1536");

    /* Oversized or malformed size fields. */
    good_tar(&tar, "victim");
    memset(tar.p + SECOND + 124, 0, 12);
    memcpy(tar.p + SECOND + 124, "77777777777", 11);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "victim", "size exceeds");
    good_tar(&tar, "victim");
    memset(tar.p + SECOND + 124, 0, 12);
    memcpy(tar.p + SECOND + 124, "10000000001", 11); /* 1 GiB + 1 */
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "victim", "size exceeds");
    good_tar(&tar, "victim");
    memset(tar.p + SECOND + 124, 0, 12);
    memcpy(tar.p + SECOND + 124, "12x4", 4);
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "victim", "size field is not octal");
    good_tar(&tar, "victim");
    memset(tar.p + SECOND + 124, 0, 12);
    tar.p[SECOND + 124] = 0x80;
    tar.p[SECOND + 135] = 0x01;
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "victim", "base-256");
    good_tar(&tar, "victim");
    memset(tar.p + SECOND + 124, 0, 12);
    memcpy(tar.p + SECOND + 124, "7777777", 7); /* 2 MiB: more than the archive holds */
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "victim", "data truncated");

    /* Duplicate names. */
    good_tar(&tar, "firsT");
    tar.p[SECOND + 4] = 't';
    rechecksum(tar.p + SECOND);
    expect_tar_reject(&tar, tar.n, "first", "duplicate name");

    /* A block with a NUL first byte that is not all zero. */
    good_tar(&tar, "victim");
    tar.p[SECOND] = 0;
    {
        cf_image img;
        cf_image_init(&img);
        cf_err e = {0};
        assert_int_equal(cf_tar_read(tar.p, tar.n, &img, &e), CF_EFORMAT);
        assert_non_null(strstr(e.msg, "empty name"));
        cf_image_free(&img);
    }
    cf_buf_free(&tar);
}

static void test_tar_write_refuses(void **state)
{
    (void)state;
    cf_image img;
    cf_image_init(&img);
    cf_err e = {0};
    cf_buf out = CF_BUF_INIT;
    assert_int_equal(cf_image_put(&img, "ok", "x", 1, &e), CF_OK);
    /* Bypass cf_image_put's validation to check the writer's own guard. */
    free(img.files[0].name);
    img.files[0].name = strdup("a/b");
    cf_buf_append(&out, "keep", 4);
    assert_int_equal(cf_tar_write(&img, NULL, &out, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "a/b"));
    assert_int_equal(out.n, 4);
    cf_image_free(&img);
    cf_buf_free(&out);
}

/* Our tars are read by GNU tar, and GNU tar's are read by us. */
static void test_tar_gnu_interop(void **state)
{
    (void)state;
    if (system("tar --version >/dev/null 2>&1") != 0) {
        print_message("tar not installed; GNU tar interop skipped\n");
        return;
    }
    char *dir = cf_test_mkdtemp();
    assert_non_null(dir);
    cf_image img;
    cf_image_init(&img);
    cf_err e = {0};
    uint8_t d[3000];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 7);
    cf_image_put(&img, "COPYING", d, 3000, &e);
    cf_image_put(&img, "x.info", d, 512, &e);
    cf_image_put(&img, "x.ndb", d, 0, &e);
    cf_buf tar = CF_BUF_INIT;
    assert_int_equal(cf_tar_write(&img, NULL, &tar, &e), CF_OK);
    char path[512], cmd[1500];
    snprintf(path, sizeof(path), "%s/a.tar", dir);
    assert_int_equal(cf_file_write_new(path, tar.p, tar.n, 0644, &e), CF_OK);
    snprintf(cmd, sizeof(cmd), "mkdir %s/x && tar -xf %s -C %s/x 2>/dev/null", dir, path, dir);
    assert_int_equal(system(cmd), 0);
    cf_buf got = CF_BUF_INIT;
    snprintf(path, sizeof(path), "%s/x/COPYING", dir);
    cf_test_read_file(path, &got);
    assert_int_equal(got.n, 3000);
    assert_memory_equal(got.p, d, 3000);

    /* GNU tar's own format (magic "ustar  ", two end blocks, 10 KiB record). */
    snprintf(cmd, sizeof(cmd), "cd %s/x && tar --format=gnu -cf ../g.tar COPYING x.info x.ndb", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/g.tar", dir);
    cf_test_read_file(path, &got);
    cf_image back;
    cf_image_init(&back);
    if (cf_tar_read(got.p, got.n, &back, &e) != CF_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(back.nfiles, 3);
    assert_int_equal(back.files[1].data.n, 512);
    assert_memory_equal(back.files[0].data.p, d, 3000);

    cf_test_rmtree(dir);
    free(dir);
    cf_image_free(&back);
    cf_image_free(&img);
    cf_buf_free(&tar);
    cf_buf_free(&got);
}

/* Memory streams behind libtar are per call: concurrent round trips do not mix. */
static void *round_trip_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int it = 0; it < 200; it++) {
        cf_image img, back;
        cf_image_init(&img);
        cf_image_init(&back);
        cf_err e = {0};
        char name[32];
        uint8_t d[1500];
        memset(d, (int)(id + (uintptr_t)it), sizeof(d));
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof(name), "t%lu-%d-%d", (unsigned long)id, it, k);
            if (cf_image_put(&img, name, d, 500u * (unsigned)k + id, &e) != CF_OK)
                return (void *)1;
        }
        cf_buf tar = CF_BUF_INIT;
        int bad = cf_tar_write(&img, NULL, &tar, &e) != CF_OK ||
                  cf_tar_read(tar.p, tar.n, &back, &e) != CF_OK || back.nfiles != 3;
        for (size_t k = 0; !bad && k < 3; k++)
            bad = strcmp(back.files[k].name, img.files[k].name) != 0 ||
                  back.files[k].data.n != img.files[k].data.n ||
                  (back.files[k].data.n && memcmp(back.files[k].data.p, d, back.files[k].data.n) != 0);
        cf_buf_free(&tar);
        cf_image_free(&img);
        cf_image_free(&back);
        if (bad) {
            fprintf(stderr, "thread %lu iteration %d: %s\n", (unsigned long)id, it, e.msg);
            return (void *)1;
        }
    }
    return NULL;
}

static void test_tar_threads(void **state)
{
    (void)state;
    pthread_t th[8];
    for (uintptr_t i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, round_trip_worker, (void *)i), 0);
    for (int i = 0; i < 8; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
}

/* ---- containers ---- */

static void make_image(cf_image *img)
{
    cf_err e = {0};
    cf_image_init(img);
    const char *info = "ClamAV-VDB:01 Jan 2024 00-00 +0000:7:3:90:X:X:tester:1704067200\n"
                       "x.ndb:5:0000000000000000000000000000000000000000000000000000000000000000\n";
    assert_int_equal(cf_image_put(img, "x.ndb", "ndb\n\n", 5, &e), CF_OK);
    assert_int_equal(cf_image_put(img, "x.cfg", "cfg\n", 4, &e), CF_OK);
    assert_int_equal(cf_image_put(img, "x.info", info, strlen(info), &e), CF_OK);
    assert_int_equal(cf_image_put(img, "zz.hdb", "h\n", 2, &e), CF_OK);
    assert_int_equal(cf_image_put(img, "COPYING", "GPL\n", 4, &e), CF_OK);
}

static void test_cld_write_read(void **state)
{
    (void)state;
    cf_image img;
    make_image(&img);
    for (int gz = 0; gz < 2; gz++) {
        cf_err e = {0};
        cf_buf cld = CF_BUF_INIT;
        assert_int_equal(cf_cld_write(&img, gz, &cld, &e), CF_OK);
        uint8_t want[CF_HDR_SIZE];
        pad512("ClamAV-VDB:01 Jan 2024 00-00 +0000:7:3:90:X:X:tester:1704067200", want);
        assert_memory_equal(cld.p, want, CF_HDR_SIZE);
        assert_int_equal(cf_cvd_body_is_plain(cld.p, cld.n), !gz);
        if (gz)
            assert_true(cf_gz_is_gzip(cld.p + CF_HDR_SIZE, cld.n - CF_HDR_SIZE));

        cf_image back;
        cf_image_init(&back);
        if (cf_cvd_read(cld.p, cld.n, &back, &e) != CF_OK)
            fail_msg("%s", e.msg);
        assert_int_equal(back.hdr.version, 7);
        assert_int_equal(back.hdr.sigs, 3);
        assert_string_equal(back.hdr.md5, "X");
        const char *order[] = {"COPYING", "x.info", "x.cfg", "x.ndb", "zz.hdb"};
        assert_int_equal(back.nfiles, 5);
        for (int i = 0; i < 5; i++) {
            assert_string_equal(back.files[i].name, order[i]);
            const cf_dbfile *o = cf_image_get(&img, order[i]);
            assert_int_equal(back.files[i].data.n, o->data.n);
            assert_memory_equal(back.files[i].data.p, o->data.p, o->data.n);
        }
        cf_image_free(&back);
        cf_buf_free(&cld);
    }
    cf_image_free(&img);
}

static void test_cld_write_refuses(void **state)
{
    (void)state;
    cf_image img;
    cf_err e = {0};
    cf_buf out = CF_BUF_INIT;

    make_image(&img);
    cf_image_remove(&img, "COPYING", &e);
    assert_int_equal(cf_cld_write(&img, 0, &out, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, "COPYING"));
    assert_int_equal(cf_cld_write(&img, 1, &out, &e), CF_EINVAL);
    /* An uncompressed body without COPYING would be sniffed as gzip. */
    assert_int_equal(cf_cvd_body_make(&img, 0, &out, &e), CF_EINVAL);
    assert_int_equal(cf_cvd_body_make(&img, 1, &out, &e), CF_OK);
    out.n = 0;
    cf_image_free(&img);

    make_image(&img);
    cf_image_remove(&img, "x.info", &e);
    assert_int_equal(cf_cld_write(&img, 0, &out, &e), CF_EINVAL);
    assert_non_null(strstr(e.msg, ".info"));
    cf_image_free(&img);

    make_image(&img);
    assert_int_equal(cf_image_put(&img, "x.info", "ClamAV-VDB:t:1:0:81:X:X:b:1", 27, &e), CF_OK);
    assert_int_equal(cf_cld_write(&img, 0, &out, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "no line break"));
    assert_int_equal(cf_image_put(&img, "x.info", "ClamAV-VDB:t:1:0:81:X:X::1\n", 27, &e), CF_OK);
    assert_int_equal(cf_cld_write(&img, 0, &out, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "x.info line 1"));
    assert_non_null(strstr(e.msg, "builder"));
    assert_int_equal(out.n, 0);
    cf_image_free(&img);
    cf_buf_free(&out);
}

static void test_cvd_assemble_read(void **state)
{
    (void)state;
    cf_image img;
    make_image(&img);
    cf_err e = {0};
    cf_buf body = CF_BUF_INIT, cvd = CF_BUF_INIT;
    assert_int_equal(cf_cvd_body_make(&img, 1, &body, &e), CF_OK);
    /* §2.1 observed gzip header: no flags, mtime 0, XFL 2 (level 9), OS 3. */
    static const uint8_t gzhdr[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3};
    assert_memory_equal(body.p, gzhdr, sizeof(gzhdr));
    cf_cvdhdr h;
    assert_int_equal(parse_padded(LINE1, &h, &e), CF_OK);
    assert_int_equal(cf_cvd_assemble(&h, &body, &cvd, &e), CF_OK);
    assert_int_equal(cvd.n, CF_HDR_SIZE + body.n);
    uint8_t want[CF_HDR_SIZE];
    pad512(LINE1, want);
    assert_memory_equal(cvd.p, want, CF_HDR_SIZE);

    cf_image back;
    cf_image_init(&back);
    assert_int_equal(cf_cvd_read(cvd.p, cvd.n, &back, &e), CF_OK);
    assert_int_equal(back.hdr.version, 1);
    assert_string_equal(back.hdr.md5, "a4ab60ae1c1c4e8f787459102dcfd90b");
    assert_int_equal(back.nfiles, 5);
    assert_string_equal(back.files[1].name, "x.info");
    cf_image_free(&back);

    /* A second gzip member or trailing bytes are refused. */
    cf_buf_append(&cvd, body.p, body.n);
    cf_image_init(&back);
    assert_int_equal(cf_cvd_read(cvd.p, cvd.n, &back, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "after the gzip member"));
    assert_int_equal(back.nfiles, 0);
    /* A corrupt gzip body. */
    cvd.n = CF_HDR_SIZE + body.n - 3;
    assert_int_not_equal(cf_cvd_read(cvd.p, cvd.n, &back, &e), CF_OK);
    assert_non_null(strstr(e.msg, "body: "));
    /* A body that is neither gzip nor a COPYING-first tar. */
    cvd.n = CF_HDR_SIZE;
    cf_buf_append(&cvd, "COPYINX and more bytes", 22);
    assert_int_equal(cf_cvd_read(cvd.p, cvd.n, &back, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "neither gzip nor"));
    /* Header only, and shorter than a header. */
    assert_int_equal(cf_cvd_read(cvd.p, CF_HDR_SIZE, &back, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "no body"));
    assert_int_equal(cf_cvd_read(cvd.p, 100, &back, &e), CF_EFORMAT);
    /* Bad header. */
    cvd.p[3] = 'x';
    cf_buf_append(&cvd, body.p, body.n);
    assert_int_equal(cf_cvd_read(cvd.p, cvd.n, &back, &e), CF_EFORMAT);
    assert_non_null(strstr(e.msg, "bad magic"));

    assert_false(cf_cvd_body_is_plain((const uint8_t *)"x", 1));
    cf_image_free(&back);
    cf_image_free(&img);
    cf_buf_free(&body);
    cf_buf_free(&cvd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_parse_real_line),   cmocka_unit_test(test_hdr_info_line),
        cmocka_unit_test(test_hdr_round_trip_random), cmocka_unit_test(test_hdr_parse_rejects),
        cmocka_unit_test(test_hdr_format_refuses),    cmocka_unit_test(test_tar_round_trip),
        cmocka_unit_test(test_tar_empty_and_order),   cmocka_unit_test(test_tar_clamav_style),
        cmocka_unit_test(test_tar_rejects),           cmocka_unit_test(test_tar_write_refuses),
        cmocka_unit_test(test_tar_gnu_interop),       cmocka_unit_test(test_tar_threads),
        cmocka_unit_test(test_cld_write_read),        cmocka_unit_test(test_cld_write_refuses),
        cmocka_unit_test(test_cvd_assemble_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
