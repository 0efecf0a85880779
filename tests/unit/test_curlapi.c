/* libcurl opened at run time (src/net/curlapi.c), built here with a soname no
 * system has: the failure must reach every request as a transport error that
 * names the library, without a crash and without touching the network. The
 * success path is every other HTTP test. */
#define CF_LIBCURL_SONAME "libclamfresh-absent-curl.so.0"
#include "../../src/net/curlapi.c"

#include "testutil.h"

#include <string.h>

#include "clamfresh/http.h"

static void load_failure_is_reported(void **state)
{
    (void)state;
    cf_err e = {0};
    assert_null(cf_curl_api_get(&e));
    assert_int_equal(e.code, CF_ENET);
    assert_non_null(strstr(e.msg, "cannot load libcurl (libclamfresh-absent-curl.so.0)"));
    /* Asked again: the same answer, no second attempt at a half-loaded table. */
    cf_err e2 = {0};
    assert_null(cf_curl_api_get(&e2));
    assert_string_equal(e.msg, e2.msg);
}

static void requests_fail_as_transport(void **state)
{
    (void)state;
    cf_http_params p = {.user_agent = "t"};
    cf_http *h = NULL;
    cf_err e = {0};
    /* Creating a client needs no libcurl. */
    assert_int_equal(cf_http_new(&p, &h, &e), CF_OK);
    assert_null(cf_http_setup_error(h));
    cf_http_req reqs[2] = {{.url = "http://127.0.0.1:9/a.cdiff"}, {.url = "http://127.0.0.1:9/b.cdiff"}};
    cf_http_resp resps[2];
    assert_int_equal(cf_http_get_many(h, reqs, resps, 2, 2, &e), CF_ENET);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(resps[i].err.code, CF_ENET);
        assert_int_equal(resps[i].status, 0);
        assert_non_null(strstr(resps[i].err.msg, reqs[i].url));
        assert_non_null(strstr(resps[i].err.msg, "libclamfresh-absent-curl.so.0"));
        assert_int_equal(cf_http_classify(&resps[i]), CF_HTTP_TRANSPORT);
        cf_http_resp_free(&resps[i]);
    }
    unsigned conns = 9, nreq = 9;
    cf_http_stats(h, &conns, &nreq);
    assert_int_equal(conns, 0);
    assert_int_equal(nreq, 0);
    cf_http_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_failure_is_reported),
        cmocka_unit_test(requests_fail_as_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
