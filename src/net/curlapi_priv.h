/* The libcurl functions the HTTP edge calls, resolved from the library the
 * first time one is needed (curlapi.c). */
#ifndef CLAMFRESH_CURLAPI_PRIV_H
#define CLAMFRESH_CURLAPI_PRIV_H

#include <curl/curl.h>

#include "clamfresh/err.h"

typedef struct cf_curl_api {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_version_info) *version_info;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_multi_init) *multi_init;
    __typeof__(curl_multi_setopt) *multi_setopt;
    __typeof__(curl_multi_add_handle) *multi_add_handle;
    __typeof__(curl_multi_remove_handle) *multi_remove_handle;
    __typeof__(curl_multi_perform) *multi_perform;
    __typeof__(curl_multi_poll) *multi_poll;
    __typeof__(curl_multi_info_read) *multi_info_read;
    __typeof__(curl_multi_cleanup) *multi_cleanup;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
} cf_curl_api;

/* Opens libcurl and runs curl_global_init once per process (thread-safe);
 * the table, or NULL with e saying why (CF_ENET: the library or one of its
 * functions is missing, or its initialization failed). */
const cf_curl_api *cf_curl_api_get(cf_err *e);

#endif
