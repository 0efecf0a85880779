/* The option table, defaults, and the values derived from the merged settings
 * (freshclam-behavior.md §1.2, §3.2, §4.1). */
#include "clamfresh/settings.h"

#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "clamfresh/log.h"
#include "settings_table.h"

#define OFF(f) offsetof(cf_settings, f)

/* Order matters only for --help-independent lookups: a config name or long name
 * appears once. Deprecated entries have id -1. */
const cf_optdef cf_optdefs[] = {
    {CF_OPT_HELP, NULL, "help", 'h', CF_T_BOOL, 0, OFF(help), NULL},
    {CF_OPT_VERSION, NULL, "version", 'V', CF_T_BOOL, 0, OFF(version), NULL},
    {CF_OPT_VERBOSE, NULL, "verbose", 'v', CF_T_BOOL, CF_F_OR, OFF(verbose), NULL},
    {CF_OPT_LOG_VERBOSE, "LogVerbose", NULL, 0, CF_T_BOOL, CF_F_OR, OFF(verbose), NULL},
    {CF_OPT_DEBUG, "Debug", "debug", 0, CF_T_BOOL, 0, OFF(debug), NULL},
    {CF_OPT_QUIET, NULL, "quiet", 0, CF_T_BOOL, 0, OFF(quiet), NULL},
    {CF_OPT_NO_WARNINGS, NULL, "no-warnings", 0, CF_T_BOOL, 0, OFF(no_warnings), NULL},
    {CF_OPT_STDOUT, NULL, "stdout", 0, CF_T_BOOL, 0, OFF(to_stdout), NULL},
    {CF_OPT_SHOW_PROGRESS, NULL, "show-progress", 0, CF_T_BOOL, 0, OFF(show_progress), NULL},
    {CF_OPT_CONFIG_FILE, NULL, "config-file", 0, CF_T_STRING, 0, OFF(config_file), NULL},
    {CF_OPT_LOG_FILE, "UpdateLogFile", "log", 'l', CF_T_STRING, 0, OFF(log_file), NULL},
    {CF_OPT_DAEMON, NULL, "daemon", 'd', CF_T_BOOL, 0, OFF(daemon), NULL},
    {CF_OPT_PID_FILE, "PidFile", "pid", 'p', CF_T_STRING, 0, OFF(pid_file), NULL},
    {CF_OPT_FOREGROUND, "Foreground", "foreground", 'F', CF_T_BOOL, 0, OFF(foreground), NULL},
    {CF_OPT_DATABASE_OWNER, "DatabaseOwner", "user", 'u', CF_T_STRING, 0, OFF(database_owner), NULL},
    {CF_OPT_NO_DNS, NULL, "no-dns", 0, CF_T_BOOL, 0, OFF(no_dns), NULL},
    {CF_OPT_CHECKS, "Checks", "checks", 'c', CF_T_NUMBER, 0, OFF(checks), NULL},
    {CF_OPT_DATABASE_DIRECTORY, "DatabaseDirectory", "datadir", 0, CF_T_STRING, 0, OFF(database_directory),
     NULL},
    {CF_OPT_NOTIFY_CLAMD, "NotifyClamd", "daemon-notify", 0, CF_T_STRING, CF_F_ARG_OPTIONAL,
     OFF(notify_clamd), CF_DEFAULT_CLAMD_CONF},
    {CF_OPT_LOCAL_ADDRESS, "LocalIPAddress", "local-address", 'a', CF_T_STRING, 0, OFF(local_address), NULL},
    {CF_OPT_ON_UPDATE_EXECUTE, "OnUpdateExecute", "on-update-execute", 0, CF_T_STRING, 0,
     OFF(on_update_execute), NULL},
    {CF_OPT_ON_ERROR_EXECUTE, "OnErrorExecute", "on-error-execute", 0, CF_T_STRING, 0, OFF(on_error_execute),
     NULL},
    {CF_OPT_ON_OUTDATED_EXECUTE, "OnOutdatedExecute", "on-outdated-execute", 0, CF_T_STRING, 0,
     OFF(on_outdated_execute), NULL},
    {CF_OPT_UPDATE_DB, NULL, "update-db", 0, CF_T_LIST, 0, OFF(update_db), NULL},
    {CF_OPT_LOG_ROTATE, "LogRotate", "log-rotate", 0, CF_T_BOOL, 0, OFF(log_rotate), NULL},
    {CF_OPT_CVD_CERTS_DIR, "CVDCertsDirectory", "cvdcertsdir", 0, CF_T_STRING, 0, OFF(cvd_certs_dir_opt),
     NULL},
    {CF_OPT_FIPS_LIMITS, "FIPSCryptoHashLimits", "fips-limits", 0, CF_T_BOOL, 0, OFF(fips_limits), NULL},
    {CF_OPT_LIST_MIRRORS, NULL, "list-mirrors", 0, CF_T_BOOL, 0, OFF(list_mirrors), NULL},
    {CF_OPT_LOG_FILE_MAX_SIZE, "LogFileMaxSize", NULL, 0, CF_T_SIZE, 0, OFF(log_file_max_size), NULL},
    {CF_OPT_LOG_TIME, "LogTime", NULL, 0, CF_T_BOOL, 0, OFF(log_time), NULL},
    {CF_OPT_LOG_SYSLOG, "LogSyslog", NULL, 0, CF_T_BOOL, 0, OFF(log_syslog), NULL},
    {CF_OPT_LOG_FACILITY, "LogFacility", NULL, 0, CF_T_STRING, 0, OFF(log_facility), NULL},
    {CF_OPT_DNS_DATABASE_INFO, "DNSDatabaseInfo", NULL, 0, CF_T_STRING, 0, OFF(dns_database_info), NULL},
    {CF_OPT_DATABASE_MIRROR, "DatabaseMirror", NULL, 0, CF_T_LIST, 0, OFF(database_mirror), NULL},
    {CF_OPT_PRIVATE_MIRROR, "PrivateMirror", NULL, 0, CF_T_LIST, 0, OFF(private_mirror), NULL},
    {CF_OPT_MAX_ATTEMPTS, "MaxAttempts", NULL, 0, CF_T_NUMBER, 0, OFF(max_attempts), NULL},
    {CF_OPT_SCRIPTED_UPDATES, "ScriptedUpdates", NULL, 0, CF_T_BOOL, 0, OFF(scripted_updates), NULL},
    {CF_OPT_TEST_DATABASES, "TestDatabases", NULL, 0, CF_T_BOOL, 0, OFF(test_databases), NULL},
    {CF_OPT_COMPRESS_LOCAL_DB, "CompressLocalDatabase", NULL, 0, CF_T_BOOL, 0, OFF(compress_local_database),
     NULL},
    {CF_OPT_BYTECODE, "Bytecode", NULL, 0, CF_T_BOOL, 0, OFF(bytecode), NULL},
    {CF_OPT_EXTRA_DATABASE, "ExtraDatabase", NULL, 0, CF_T_LIST, 0, OFF(extra_database), NULL},
    {CF_OPT_EXCLUDE_DATABASE, "ExcludeDatabase", NULL, 0, CF_T_LIST, 0, OFF(exclude_database), NULL},
    {CF_OPT_CUSTOM_URL, "DatabaseCustomURL", NULL, 0, CF_T_LIST, 0, OFF(custom_url), NULL},
    {CF_OPT_CONNECT_TIMEOUT, "ConnectTimeout", NULL, 0, CF_T_NUMBER, 0, OFF(connect_timeout), NULL},
    {CF_OPT_RECEIVE_TIMEOUT, "ReceiveTimeout", NULL, 0, CF_T_NUMBER, 0, OFF(receive_timeout), NULL},
    {CF_OPT_PROXY_SERVER, "HTTPProxyServer", NULL, 0, CF_T_STRING, 0, OFF(proxy_server), NULL},
    {CF_OPT_PROXY_PORT, "HTTPProxyPort", NULL, 0, CF_T_NUMBER, 0, OFF(proxy_port), NULL},
    {CF_OPT_PROXY_USERNAME, "HTTPProxyUsername", NULL, 0, CF_T_STRING, 0, OFF(proxy_username), NULL},
    {CF_OPT_PROXY_PASSWORD, "HTTPProxyPassword", NULL, 0, CF_T_STRING, 0, OFF(proxy_password), NULL},
    {CF_OPT_USER_AGENT, "HTTPUserAgent", NULL, 0, CF_T_STRING, 0, OFF(user_agent), NULL},
    /* clamfresh additions */
    {CF_OPT_CVD_PUBLIC_KEY, "CVDPublicKey", NULL, 0, CF_T_STRING, CF_F_OURS, OFF(cvd_public_key), NULL},
    {CF_OPT_INFO_PUBLIC_KEY, "InfoPublicKey", NULL, 0, CF_T_STRING, CF_F_OURS, OFF(info_public_key), NULL},
    {CF_OPT_CDIFF_PUBLIC_KEY, "CdiffPublicKey", NULL, 0, CF_T_STRING, CF_F_OURS, OFF(cdiff_public_key), NULL},
    {CF_OPT_TRUST_KEY, NULL, "trust-key", 0, CF_T_STRING, CF_F_OURS, 0, NULL},
    {CF_OPT_STALL_TIMEOUT, "StallTimeout", NULL, 0, CF_T_NUMBER, CF_F_OURS, OFF(stall_timeout), NULL},
    {CF_OPT_LOCK_TIMEOUT, "LockTimeout", "lock-timeout", 0, CF_T_NUMBER, CF_F_OURS, OFF(lock_timeout), NULL},
    {CF_OPT_CONCURRENT_DOWNLOADS, "ConcurrentDownloads", NULL, 0, CF_T_NUMBER, CF_F_OURS,
     OFF(concurrent_downloads), NULL},
    {CF_OPT_STRICT_EXIT_CODES, "StrictExitCodes", "strict-exit-codes", 0, CF_T_BOOL, CF_F_OURS,
     OFF(strict_exit_codes), NULL},
    {CF_OPT_MIRROR_DIRECTORY, "MirrorDirectory", "mirror", 0, CF_T_STRING, CF_F_OURS, OFF(mirror_directory),
     NULL},
    {CF_OPT_ENGINE_FLEVEL, "EngineFlevel", NULL, 0, CF_T_NUMBER, CF_F_OURS, OFF(engine_flevel), NULL},
    {CF_OPT_MIRROR_KEEP_PATCHES, "MirrorKeepPatches", NULL, 0, CF_T_NUMBER, CF_F_OURS,
     OFF(mirror_keep_patches), NULL},
    {CF_OPT_JSON, NULL, "json", 0, CF_T_STRING, CF_F_OURS | CF_F_EXACT | CF_F_ARG_OPTIONAL, OFF(json_file),
     "-"},
    {CF_OPT_CHECK_ONLY, NULL, "check-only", 0, CF_T_BOOL, CF_F_OURS | CF_F_EXACT, OFF(check_only), NULL},
    {CF_OPT_METRICS_FILE, "MetricsFile", "metrics", 0, CF_T_STRING, CF_F_OURS | CF_F_EXACT, OFF(metrics_file),
     NULL},
    {CF_OPT_WARN_BEHIND, NULL, "warn-behind", 0, CF_T_NUMBER, CF_F_OURS | CF_F_EXACT, OFF(warn_behind), NULL},
    {CF_OPT_CRIT_BEHIND, NULL, "crit-behind", 0, CF_T_NUMBER, CF_F_OURS | CF_F_EXACT, OFF(crit_behind), NULL},
    /* deprecated: accepted with a warning, value ignored (§1.2, §3.2) */
    {-1, NULL, "http-proxy", 0, CF_T_STRING, CF_F_DEPRECATED, 0, NULL},
    {-1, NULL, "proxy-user", 0, CF_T_STRING, CF_F_DEPRECATED, 0, NULL},
    {-1, NULL, "log-verbose", 0, CF_T_BOOL, CF_F_DEPRECATED, 0, NULL},
    {-1, "SafeBrowsing", NULL, 0, CF_T_BOOL, CF_F_DEPRECATED, 0, NULL},
    {-1, "AllowSupplementaryGroups", NULL, 0, CF_T_BOOL, CF_F_DEPRECATED, 0, NULL},
};
const size_t cf_noptdefs = sizeof(cf_optdefs) / sizeof(cf_optdefs[0]);

const cf_optdef *cf_optdef_by_name(const char *name)
{
    for (size_t i = 0; i < cf_noptdefs; i++) {
        const cf_optdef *d = &cf_optdefs[i];
        /* freshclam also takes the long option name as a config key (§3.1). */
        if ((d->conf && strcmp(d->conf, name) == 0) || (d->lng && strcmp(d->lng, name) == 0))
            return d;
    }
    return NULL;
}

const cf_optdef *cf_optdef_by_short(char c)
{
    for (size_t i = 0; c && i < cf_noptdefs; i++)
        if (cf_optdefs[i].shrt == c)
            return &cf_optdefs[i];
    return NULL;
}

int cf_opt_lookup(const char *name)
{
    const cf_optdef *d = name ? cf_optdef_by_name(name) : NULL;
    return d ? d->id : -1;
}

static int bool_value(const char *arg, int *out)
{
    static const char *const yes[] = {"yes", "true", "1"}, *const no[] = {"no", "false", "0"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(arg, yes[i]) == 0)
            return *out = 1, 1;
        if (strcasecmp(arg, no[i]) == 0)
            return *out = 0, 1;
    }
    return 0;
}

static int number_value(const char *arg, long *out)
{
    if (!*arg)
        return 0;
    long v = 0;
    for (const char *p = arg; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        if (v > (LONG_MAX - (*p - '0')) / 10)
            return 0; /* too large: a format error rather than a silent wrap */
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 1;
}

static int size_value(const char *arg, uint64_t *out)
{
    uint64_t v = 0, mult = 1;
    const char *p = arg;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    switch (*p) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = 1024;
        p++;
        break;
    case 'm':
    case 'M':
        mult = 1024 * 1024;
        p++;
        break;
    case 'g':
    case 'G':
        mult = 1024 * 1024 * 1024;
        p++;
        break;
    default:
        return 0;
    }
    if (*p || (v && v > UINT64_MAX / mult))
        return 0;
    /* 0 means unlimited (§3.1). */
    *out = v ? v * mult : UINT64_MAX;
    return 1;
}

int cf_optdef_value_ok(const cf_optdef *d, const char *arg)
{
    int b;
    long n;
    uint64_t z;
    switch (d->type) {
    case CF_T_BOOL:
        return bool_value(arg, &b);
    case CF_T_NUMBER:
        return number_value(arg, &n);
    case CF_T_SIZE:
        return size_value(arg, &z);
    default:
        return 1;
    }
}

static cf_code set_string(char **field, const char *arg)
{
    char *copy = strdup(arg);
    if (!copy)
        return CF_ENOMEM;
    free(*field);
    *field = copy;
    return CF_OK;
}

cf_code cf_optdef_apply(cf_settings *s, const cf_optdef *d, const char *arg, int from_cli)
{
    if (d->id < 0 || (d->flags & CF_F_DEPRECATED))
        return CF_OK;
    char *base = (char *)s;
    if (d->type == CF_T_LIST) {
        cf_code rc = cf_strlist_add((cf_strlist *)(base + d->off), arg);
        if (rc == CF_OK) {
            s->set[d->id] = 1;
            if (from_cli)
                s->set_by_cli[d->id] = 1;
        }
        return rc;
    }
    if (s->set[d->id])
        return CF_OK; /* first setting wins; the command line is parsed first (§3.1) */
    if (d->id == CF_OPT_TRUST_KEY) {
        /* One PEM for all three roles, each unless already given on its own. */
        static const int roles[] = {CF_OPT_CVD_PUBLIC_KEY, CF_OPT_INFO_PUBLIC_KEY, CF_OPT_CDIFF_PUBLIC_KEY};
        char **fields[] = {&s->cvd_public_key, &s->info_public_key, &s->cdiff_public_key};
        for (int i = 0; i < 3; i++) {
            if (s->set[roles[i]])
                continue;
            if (set_string(fields[i], arg) != CF_OK)
                return CF_ENOMEM;
            s->set[roles[i]] = 1;
            s->set_by_cli[roles[i]] = (unsigned char)from_cli;
        }
    } else {
        int b = 0;
        switch (d->type) {
        case CF_T_BOOL:
            if (!bool_value(arg, &b))
                return CF_EFORMAT;
            if (d->flags & CF_F_OR) {
                if (b)
                    *(bool *)(base + d->off) = true;
            } else {
                *(bool *)(base + d->off) = b != 0;
            }
            break;
        case CF_T_NUMBER:
            if (!number_value(arg, (long *)(base + d->off)))
                return CF_EFORMAT;
            break;
        case CF_T_SIZE:
            if (!size_value(arg, (uint64_t *)(base + d->off)))
                return CF_EFORMAT;
            break;
        default:
            if (set_string((char **)(base + d->off), arg) != CF_OK)
                return CF_ENOMEM;
            break;
        }
    }
    s->set[d->id] = 1;
    if (from_cli)
        s->set_by_cli[d->id] = 1;
    return CF_OK;
}

bool cf_settings_is_set(const cf_settings *s, cf_opt_id id)
{
    return id >= 0 && id < CF_OPT__COUNT && s->set[id];
}

/* ---- lists ---- */

cf_code cf_strlist_add(cf_strlist *l, const char *str)
{
    char *copy = strdup(str);
    char **v = copy ? realloc(l->v, (l->n + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(copy);
        return CF_ENOMEM;
    }
    v[l->n++] = copy;
    l->v = v;
    return CF_OK;
}

void cf_strlist_free(cf_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

bool cf_strlist_contains(const cf_strlist *l, const char *str)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], str) == 0)
            return true;
    return false;
}

/* ---- defaults ---- */

void cf_settings_init(cf_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->config_file = strdup(CF_DEFAULT_CONFIG_FILE);
    s->log_file_max_size = 1048576;
    s->log_facility = strdup("LOG_LOCAL6");
    s->checks = 12;
    s->database_directory = strdup(CF_DEFAULT_DATADIR);
    s->database_owner = strdup(CF_DEFAULT_OWNER);
    s->dns_database_info = strdup(CF_DEFAULT_DNS_INFO);
    s->max_attempts = 3;
    s->scripted_updates = true;
    s->test_databases = true;
    s->bytecode = true;
    s->connect_timeout = 30;
    s->receive_timeout = 60;
    s->stall_timeout = 120;
    s->lock_timeout = 60;
    s->concurrent_downloads = 8;
    s->mirror_keep_patches = 120;
    s->warn_behind = 2;
    s->crit_behind = 5;
}

void cf_settings_free(cf_settings *s)
{
    char **strings[] = {
        &s->config_file,        &s->log_file,          &s->log_facility,      &s->pid_file,
        &s->database_directory, &s->database_owner,    &s->dns_database_info, &s->cvd_certs_dir_opt,
        &s->notify_clamd,       &s->on_update_execute, &s->on_error_execute,  &s->on_outdated_execute,
        &s->local_address,      &s->proxy_server,      &s->proxy_username,    &s->proxy_password,
        &s->user_agent,         &s->cvd_public_key,    &s->info_public_key,   &s->cdiff_public_key,
        &s->mirror_directory,   &s->proxy_host,        &s->cvd_certs_dir,     &s->json_file,
        &s->metrics_file};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
    cf_strlist *lists[] = {&s->update_db,        &s->database_mirror, &s->private_mirror, &s->extra_database,
                           &s->exclude_database, &s->custom_url,      &s->mirrors,        &s->databases};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        cf_strlist_free(lists[i]);
}

/* ---- derived values ---- */

static const char *const standard_dbs[] = {"daily", "main", "bytecode"};
static const char *const optional_dbs[] = {"safebrowsing", "test", "valhalla"};

static bool contains_nocase(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

static cf_code add_prefixed(cf_strlist *l, const char *scheme, const char *value)
{
    if (strstr(value, "://"))
        return cf_strlist_add(l, value);
    size_t n = strlen(scheme) + strlen(value) + 1;
    char *url = malloc(n);
    if (!url)
        return CF_ENOMEM;
    snprintf(url, n, "%s%s", scheme, value);
    cf_code rc = cf_strlist_add(l, url);
    free(url);
    return rc;
}

/* §3.2 DatabaseMirror / PrivateMirror. */
static cf_code build_mirrors(cf_settings *s, cf_err *e)
{
    cf_strlist_free(&s->mirrors);
    s->private_mode = s->private_mirror.n > 0;
    if (s->private_mode) {
        for (size_t i = 0; i < s->private_mirror.n; i++) {
            const char *m = s->private_mirror.v[i];
            if (contains_nocase(m, ".clamav.net"))
                return cf_err_set(
                    e, CF_EINVAL,
                    "ERROR: The PrivateMirror config option may not include servers under *.clamav.net.");
            if (add_prefixed(&s->mirrors, "http://", m) != CF_OK)
                return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
        }
        return CF_OK;
    }
    if (s->database_mirror.n == 0)
        return cf_err_set(
            e, CF_EINVAL,
            "ERROR: No DatabaseMirror or PrivateMirror servers set in freshclam config file.\n"
            "ERROR: Unable to find DatabaseMirror or PrivateMirror option(s) that specify database "
            "server FQDNs.");
    for (size_t i = 0; i < s->database_mirror.n; i++) {
        const char *m = s->database_mirror.v[i];
        cf_code rc;
        /* Debian's db.XY.clamav.net names are retired in favour of the CDN name. */
        if (strncmp(m, "db.", 3) == 0 && strstr(m, ".clamav.net"))
            rc = cf_strlist_add(&s->mirrors, "https://database.clamav.net");
        else
            rc = add_prefixed(&s->mirrors, "https://", m);
        if (rc != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
    }
    return CF_OK;
}

static int name_in(const char *name, const char *const *set, size_t n, int nocase)
{
    for (size_t i = 0; i < n; i++)
        if (nocase ? strcasecmp(name, set[i]) == 0 : strcmp(name, set[i]) == 0)
            return (int)i;
    return -1;
}

/* §4.1. Official names are stored in their canonical lower-case spelling. */
static cf_code select_databases(cf_settings *s, cf_err *e)
{
    cf_strlist_free(&s->databases);
    s->use_custom_urls = false;
    s->prune = s->update_db.n == 0;
    if (s->update_db.n) {
        for (size_t i = 0; i < s->update_db.n; i++) {
            const char *name = s->update_db.v[i];
            if (strcmp(name, "custom") == 0) {
                if (s->custom_url.n == 0)
                    return cf_err_set(e, CF_EINVAL,
                                      "ERROR: --update-db=custom requires at least one DatabaseCustomURL in "
                                      "freshclam.conf");
                s->use_custom_urls = true;
                continue;
            }
            if (name_in(name, standard_dbs, 3, 0) < 0 && name_in(name, optional_dbs, 3, 0) < 0)
                return cf_err_set(
                    e, CF_EINVAL,
                    "ERROR: Requested database is not available: %s.\n"
                    "ERROR: Failed to select specific databases from available official databases.",
                    name);
            /* A repeated name would only download the same file twice. */
            if (!cf_strlist_contains(&s->databases, name) && cf_strlist_add(&s->databases, name) != CF_OK)
                return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
        }
        return CF_OK;
    }
    for (size_t i = 0; i < 3; i++) {
        const char *db = standard_dbs[i];
        bool skip = !s->bytecode && strcmp(db, "bytecode") == 0;
        for (size_t j = 0; j < s->exclude_database.n && !skip; j++)
            skip = strcasecmp(s->exclude_database.v[j], db) == 0;
        if (!skip && cf_strlist_add(&s->databases, db) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
    }
    for (size_t i = 0; i < s->extra_database.n; i++) {
        int k = name_in(s->extra_database.v[i], optional_dbs, 3, 1);
        if (k < 0) {
            cf_log_warn("Desired optional database \"%s\" is not available.", s->extra_database.v[i]);
            continue;
        }
        if (!cf_strlist_contains(&s->databases, optional_dbs[k]) &&
            cf_strlist_add(&s->databases, optional_dbs[k]) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
    }
    s->use_custom_urls = s->custom_url.n > 0;
    return CF_OK;
}

/* §3.2 HTTPProxyServer/Port/Username/Password. */
static cf_code build_proxy(cf_settings *s, cf_err *e)
{
    free(s->proxy_host);
    s->proxy_host = NULL;
    s->proxy_port_effective = 0;
    if (s->proxy_username && !s->proxy_password)
        return cf_err_set(e, CF_EFORMAT,
                          "HTTPProxyUsername requires HTTPProxyPassword\nERROR: Initialization error!");
    if (s->proxy_password && s->config_file && !s->config_missing) {
        struct stat st;
        /* The password sits in the config file, so nobody else may read it. */
        if (stat(s->config_file, &st) == 0 && (st.st_mode & 077))
            return cf_err_set(
                e, CF_EFORMAT,
                "WARNING: Insecure permissions (for HTTPProxyPassword): %s must have no more than "
                "0700 permissions.\nERROR: Initialization error!",
                s->config_file);
    }
    if (!s->proxy_server)
        return CF_OK;
    const char *host = s->proxy_server;
    if (strncasecmp(host, "http://", 7) == 0)
        host += 7;
    if (!(s->proxy_host = strdup(host)))
        return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
    if (s->set[CF_OPT_PROXY_PORT]) {
        s->proxy_port_effective = s->proxy_port;
    } else {
        struct servent *se = getservbyname("webcache", "tcp");
        s->proxy_port_effective = se ? ntohs((uint16_t)se->s_port) : 8080;
        endservent();
    }
    return CF_OK;
}

cf_code cf_settings_finish(cf_settings *s, cf_err *e)
{
    cf_code rc;
    if (s->daemon) {
        /* Checks is validated only in daemon mode (§1.2). */
        if (s->checks <= 0)
            return cf_err_set(e, CF_EINVAL, "WARNING: Number of checks must be a positive integer.");
        if (s->checks > 50 && s->no_dns)
            return cf_err_set(e, CF_EINVAL, "WARNING: Number of checks must be between 1 and 50.");
    }
    if (s->stall_timeout < 1)
        return cf_err_set(e, CF_EINVAL, "ERROR: StallTimeout must be at least 1 second (0 is not allowed).");
    if (s->concurrent_downloads < 1 || s->concurrent_downloads > 16)
        return cf_err_set(e, CF_EINVAL, "ERROR: ConcurrentDownloads must be between 1 and 16 (got %ld).",
                          s->concurrent_downloads);
    if (s->warn_behind < 1 || s->crit_behind < s->warn_behind)
        return cf_err_set(e, CF_EINVAL,
                          "ERROR: --warn-behind must be at least 1 and --crit-behind at least --warn-behind "
                          "(got %ld and %ld).",
                          s->warn_behind, s->crit_behind);
    if (s->mirror_keep_patches < 1 || s->mirror_keep_patches > 100000)
        return cf_err_set(e, CF_EINVAL, "ERROR: MirrorKeepPatches must be between 1 and 100000 (got %ld).",
                          s->mirror_keep_patches);
    if ((rc = build_mirrors(s, e)) != CF_OK)
        return rc;
    /* freshclam never asks DNS with PrivateMirror. A LAN resolver fed from a
     * mirror's current.txt is the cache-proof answer there too, so DNS is used
     * when DNSDatabaseInfo is set explicitly (clamfresh(1)). */
    s->dns_enabled = !s->no_dns && (!s->private_mode || cf_settings_is_set(s, CF_OPT_DNS_DATABASE_INFO));
    s->scripted_effective = s->scripted_updates && !s->private_mode;
    if ((rc = select_databases(s, e)) != CF_OK)
        return rc;
    if ((rc = build_proxy(s, e)) != CF_OK)
        return rc;

    free(s->cvd_certs_dir);
    const char *env = getenv("CVD_CERTS_DIR");
    const char *certs = s->cvd_certs_dir_opt ? s->cvd_certs_dir_opt
                        : (env && *env)      ? env
                                             : CF_DEFAULT_CERTS_DIR;
    if (!(s->cvd_certs_dir = strdup(certs)))
        return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");

    if (s->databases.n == 0 && !s->use_custom_urls)
        return cf_err_set(e, CF_ENOTFOUND, "ERROR: perform_database_update: No databases requested.");
    return CF_OK;
}

int cf_settings_exit_code(cf_code code)
{
    switch (code) {
    case CF_OK:
        return 0;
    case CF_EINVAL:
        return 9;
    case CF_ENOTFOUND:
        return 16;
    case CF_ENOMEM:
        return 15;
    default:
        return 2;
    }
}

void cf_settings_print_err(const cf_err *e)
{
    const char *p = e->msg;
    while (*p) {
        size_t len = strcspn(p, "\n");
        FILE *out = (strncmp(p, "ERROR: ", 7) == 0 || strncmp(p, "WARNING: ", 9) == 0) ? stderr : stdout;
        fprintf(out, "%.*s\n", (int)len, p);
        fflush(out);
        p += len;
        if (*p == '\n')
            p++;
    }
}

cf_code cf_version_format(const char *engine_version, const cf_cvdhdr *daily, char *out, size_t outsz)
{
    int n;
    if (!engine_version)
        engine_version = CF_FALLBACK_ENGINE_VERSION;
    if (daily) {
        char when[64];
        time_t t = (time_t)daily->stime;
        if (!ctime_r(&t, when))
            return CF_EINVAL;
        when[strcspn(when, "\n")] = '\0';
        n = snprintf(out, outsz, "ClamAV %s/%u/%s", engine_version, (unsigned)daily->version, when);
    } else {
        n = snprintf(out, outsz, "ClamAV %s", engine_version);
    }
    return (n < 0 || (size_t)n >= outsz) ? CF_ETOOBIG : CF_OK;
}
