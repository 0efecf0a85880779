/* freshclam.conf (freshclam-behavior.md §3.1): one "Name value" per line, parsed with
 * the same quirks as ClamAV's parser so that existing files behave identically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/buf.h"
#include "clamfresh/fileio.h"
#include "clamfresh/limits.h"
#include "clamfresh/log.h"
#include "clamfresh/settings.h"
#include "settings_table.h"

/* A configuration file larger than this is certainly not one. */
#define CF_MAX_CONFIG_BYTES (4UL * 1024 * 1024)

static cf_code parse_error(cf_err *e, const char *name, const char *what)
{
    return cf_err_set(e, CF_EFORMAT, "ERROR: %s\nERROR: Can't open/parse the config file %s", what, name);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One line as ClamAV's reader sees it (at most CF_MAX_CONF_LINE - 1 bytes, newline
 * included; longer lines continue as the next "line"). */
static cf_code parse_line(cf_settings *s, char *buff, const char *file, int line, cf_err *e)
{
    char msg[CF_ERR_MSG];
    size_t len = strlen(buff);
    /* Leading blanks are skipped, but never the last character. */
    while (len > 1 && is_blank(*buff)) {
        buff++;
        len--;
    }
    if (len <= 2 || buff[0] == '#')
        return CF_OK;
    if (strncmp(buff, "Example", 7) == 0)
        return cf_err_set(
            e, CF_EFORMAT,
            "ERROR: Please edit the example config file %s\nERROR: Can't open/parse the config file %s", file,
            file);
    char *pt = strpbrk(buff, " \t");
    if (!pt) {
        snprintf(msg, sizeof(msg), "Missing argument for option at %s:%d", file, line);
        return parse_error(e, file, msg);
    }
    const char *name = buff;
    *pt++ = '\0';
    while (pt[0] && pt[1] && is_blank(*pt))
        pt++;
    /* Inline comments, as in ClamAV 1.5+: '#' and everything after it go, in any value. */
    char *hash = strchr(pt, '#');
    if (hash)
        *hash = '\0';
    size_t n = strlen(pt);
    while (n && (is_blank(pt[n - 1]) || pt[n - 1] == '\n' || pt[n - 1] == '\r'))
        n--;
    if (!n) {
        snprintf(msg, sizeof(msg), "Missing argument for option at %s:%d", file, line);
        return parse_error(e, file, msg);
    }
    pt[n] = '\0';
    char *arg = pt;
    if (*arg == '"') {
        arg++;
        char *close = strrchr(arg, '"');
        if (!close) {
            snprintf(msg, sizeof(msg), "Missing closing parenthesis in option %s at %s:%d", name, file, line);
            return parse_error(e, file, msg);
        }
        *close = '\0';
        if (!*arg) {
            snprintf(msg, sizeof(msg), "Empty argument for option %s at %s:%d", name, file, line);
            return parse_error(e, file, msg);
        }
    }
    const cf_optdef *d = cf_optdef_by_name(name);
    if (!d) {
        snprintf(msg, sizeof(msg), "Parse error at %s:%d: Unknown option %s", file, line, name);
        return parse_error(e, file, msg);
    }
    if (d->flags & CF_F_DEPRECATED) {
        fprintf(stderr, "WARNING: Ignoring deprecated option %s at %s:%d\n", name, file, line);
        fflush(stderr);
        return CF_OK;
    }
    if (!cf_optdef_value_ok(d, arg)) {
        snprintf(msg, sizeof(msg), "Incorrect argument format for option %s", name);
        return parse_error(e, file, msg);
    }
    /* Accepted for compatibility but meaningless inside the file itself. */
    if (d->id == CF_OPT_CONFIG_FILE || d->id == CF_OPT_HELP)
        return CF_OK;
    if (cf_optdef_apply(s, d, arg, 0) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "ERROR: Can't register argument for option %s", name);
    return CF_OK;
}

cf_code cf_config_parse(cf_settings *s, const char *text, size_t n, const char *name, cf_err *e)
{
    char line[CF_MAX_CONF_LINE];
    size_t pos = 0;
    int lineno = 0;
    while (pos < n) {
        size_t len = 0;
        while (pos + len < n && len < sizeof(line) - 1) {
            char c = text[pos + len++];
            if (c == '\n')
                break;
        }
        memcpy(line, text + pos, len);
        line[len] = '\0'; /* an embedded NUL ends the line early, as with fgets */
        pos += len;
        lineno++;
        cf_code rc = parse_line(s, line, name, lineno, e);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

cf_code cf_config_load(cf_settings *s, const char *path, cf_err *e)
{
    bool explicit_path = path != NULL || s->config_explicit;
    if (!path)
        path = s->config_file;
    else if (path != s->config_file) {
        char *copy = strdup(path);
        if (!copy)
            return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
        free(s->config_file);
        s->config_file = copy;
        path = copy;
    }
    cf_buf text = CF_BUF_INIT;
    cf_err rerr = {0};
    cf_code rc = cf_file_read(path, CF_MAX_CONFIG_BYTES, &text, &rerr);
    if (rc == CF_ENOTFOUND && !explicit_path) {
        /* clamfresh addition: a missing default config is not fatal; the sample's only
         * required setting is supplied instead. An explicit --config-file still fails. */
        cf_buf_free(&text);
        s->config_missing = true;
        if (cf_strlist_add(&s->database_mirror, CF_DEFAULT_MIRROR) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "ERROR: out of memory");
        s->set[CF_OPT_DATABASE_MIRROR] = 1;
        cf_log_info("No config file found at %s; using built-in defaults (DatabaseMirror %s).", path,
                    CF_DEFAULT_MIRROR);
        return CF_OK;
    }
    if (rc != CF_OK) {
        cf_buf_free(&text);
        return cf_err_set(e, rc == CF_ENOMEM ? CF_ENOMEM : CF_EIO,
                          "ERROR: Can't open/parse the config file %s", path);
    }
    rc = cf_config_parse(s, (const char *)text.p, text.n, path, e);
    cf_buf_free(&text);
    return rc;
}
