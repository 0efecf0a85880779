/* libcurl, opened at run time. An up-to-date run (DNS says current) sends no
 * request, and loading libcurl with its thirty-odd dependencies costs more
 * than the rest of such a run; so the library is opened with dlopen the first
 * time a request is made, and every call goes through the table below. The
 * soname is the one the build found (CF_LIBCURL_SONAME), so the ABI is the one
 * the headers describe. */
#include "curlapi_priv.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifndef CF_LIBCURL_SONAME
#define CF_LIBCURL_SONAME "libcurl.so.4"
#endif

static cf_curl_api api;
static char load_error[CF_ERR_MSG]; /* "" = loaded */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static const struct {
    const char *name;
    size_t off;
} syms[] = {
    {"curl_global_init", offsetof(cf_curl_api, global_init)},
    {"curl_version_info", offsetof(cf_curl_api, version_info)},
    {"curl_easy_init", offsetof(cf_curl_api, easy_init)},
    {"curl_easy_setopt", offsetof(cf_curl_api, easy_setopt)},
    {"curl_easy_getinfo", offsetof(cf_curl_api, easy_getinfo)},
    {"curl_easy_cleanup", offsetof(cf_curl_api, easy_cleanup)},
    {"curl_easy_strerror", offsetof(cf_curl_api, easy_strerror)},
    {"curl_multi_init", offsetof(cf_curl_api, multi_init)},
    {"curl_multi_setopt", offsetof(cf_curl_api, multi_setopt)},
    {"curl_multi_add_handle", offsetof(cf_curl_api, multi_add_handle)},
    {"curl_multi_remove_handle", offsetof(cf_curl_api, multi_remove_handle)},
    {"curl_multi_perform", offsetof(cf_curl_api, multi_perform)},
    {"curl_multi_poll", offsetof(cf_curl_api, multi_poll)},
    {"curl_multi_info_read", offsetof(cf_curl_api, multi_info_read)},
    {"curl_multi_cleanup", offsetof(cf_curl_api, multi_cleanup)},
    {"curl_slist_append", offsetof(cf_curl_api, slist_append)},
    {"curl_slist_free_all", offsetof(cf_curl_api, slist_free_all)},
};

_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "dlsym results must fit a function pointer");

static void load(void)
{
    /* RTLD_LOCAL: libcurl's symbols (and its OpenSSL's) stay out of the
     * global namespace. */
    void *h = dlopen(CF_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load libcurl (%s): %s", CF_LIBCURL_SONAME,
                 why ? why : "unknown error");
        return;
    }
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *sym = dlsym(h, syms[i].name);
        if (sym == NULL) {
            snprintf(load_error, sizeof load_error, "cannot load libcurl (%s): it has no %s",
                     CF_LIBCURL_SONAME, syms[i].name);
            dlclose(h);
            return;
        }
        /* POSIX: dlsym's void * converts to the function pointer it names. */
        memcpy((char *)&api + syms[i].off, &sym, sizeof sym);
    }
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        snprintf(load_error, sizeof load_error, "libcurl (%s) initialization failed", CF_LIBCURL_SONAME);
}

const cf_curl_api *cf_curl_api_get(cf_err *e)
{
    pthread_once(&load_once, load);
    if (load_error[0]) {
        cf_err_set(e, CF_ENET, "%s", load_error);
        return NULL;
    }
    return &api;
}
