/* freshclam.dat (behavior §5.5, §5.3). The byte layout is written field by field
 * at fixed offsets, so the file matches what freshclam dumps on x86-64 without
 * depending on this compiler's struct layout. */
#include "clamfresh/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "clamfresh/buf.h"
#include "clamfresh/fileio.h"
#include "clamfresh/install.h"

/* A temporary of a save younger than this may belong to a live writer. */
#define CF_STATE_TEMP_GRACE 600

void cf_state_encode(const cf_state *s, uint8_t out[CF_STATE_SIZE])
{
    uint32_t version = CF_STATE_VERSION;
    memset(out, 0, CF_STATE_SIZE);
    memcpy(out, CF_STATE_MAGIC, 13);
    memcpy(out + CF_STATE_OFF_VERSION, &version, sizeof version);
    /* strncpy-style: text then zero fill, and the last byte always NUL. */
    memcpy(out + CF_STATE_OFF_UUID, s->uuid, strnlen(s->uuid, CF_STATE_UUID_SIZE - 1));
    memcpy(out + CF_STATE_OFF_PAD, s->pad, CF_STATE_PAD_SIZE);
    memcpy(out + CF_STATE_OFF_RETRY, &s->retry_after, sizeof s->retry_after);
    memcpy(out + CF_STATE_OFF_RAY, s->cf_ray, strnlen(s->cf_ray, CF_STATE_RAY_SIZE - 1));
}

cf_code cf_state_decode(const uint8_t *p, size_t n, cf_state *s, cf_err *e)
{
    memset(s, 0, sizeof *s);
    if (n < CF_STATE_MIN_SIZE)
        return cf_err_set(e, CF_EFORMAT, "freshclam.dat: %zu bytes, at least %d needed", n,
                          CF_STATE_MIN_SIZE);
    if (memcmp(p, CF_STATE_MAGIC, 13) != 0)
        return cf_err_set(e, CF_EFORMAT, "freshclam.dat: bad magic at offset 0 (not \"%s\")", CF_STATE_MAGIC);
    uint32_t version;
    memcpy(&version, p + CF_STATE_OFF_VERSION, sizeof version);
    if (version != CF_STATE_VERSION)
        return cf_err_set(e, CF_EFORMAT, "freshclam.dat: format version %u at offset %d, expected %u",
                          version, CF_STATE_OFF_VERSION, CF_STATE_VERSION);
    memcpy(s->uuid, p + CF_STATE_OFF_UUID, CF_STATE_UUID_SIZE - 1);
    s->uuid[CF_STATE_UUID_SIZE - 1] = '\0';
    memcpy(s->pad, p + CF_STATE_OFF_PAD, CF_STATE_PAD_SIZE);
    memcpy(&s->retry_after, p + CF_STATE_OFF_RETRY, sizeof s->retry_after);
    if (n >= CF_STATE_SIZE) {
        memcpy(s->cf_ray, p + CF_STATE_OFF_RAY, CF_STATE_RAY_SIZE - 1);
        s->cf_ray[CF_STATE_RAY_SIZE - 1] = '\0';
    }
    return CF_OK;
}

cf_code cf_state_init_new(cf_state *s, cf_err *e)
{
    uint8_t r[16];
    memset(s, 0, sizeof *s);
    if (RAND_bytes(r, sizeof r) != 1)
        return cf_err_set(e, CF_EIO, "freshclam.dat: no random bytes for a new UUID");
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(s->uuid, sizeof s->uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    return CF_OK;
}

static cf_code state_path(const char *dbdir, char *out, size_t outsz, cf_err *e)
{
    int n = snprintf(out, outsz, "%s/%s", dbdir, CF_STATE_FILE);
    if (n < 0 || (size_t)n >= outsz)
        return cf_err_set(e, CF_EINVAL, "freshclam.dat: database directory path too long: %s", dbdir);
    return CF_OK;
}

cf_code cf_state_save(const char *dbdir, const cf_state *s, cf_err *e)
{
    uint8_t bytes[CF_STATE_SIZE];
    cf_state_encode(s, bytes);
    return cf_file_replace_db(dbdir, CF_STATE_FILE, bytes, sizeof bytes, e);
}

/* "freshclam.dat.tmp-" and 8 hex digits: the temporary name of earlier
 * versions, which nothing writes any more. */
static int is_legacy_temp(const char *name)
{
    static const char prefix[] = CF_STATE_FILE ".tmp-";
    size_t pl = sizeof prefix - 1;
    if (strncmp(name, prefix, pl) != 0 || strlen(name) != pl + 8)
        return 0;
    for (size_t i = pl; i < pl + 8; i++)
        if (!strchr("0123456789abcdef", name[i]))
            return 0;
    return 1;
}

/* Removes what a save killed half-way left behind. The current temporaries are
 * spared while young: a run that does not hold the directory lock (mirror mode)
 * may be saving right now. Under the lock cf_install_cleanup removes them all. */
static void remove_stale_temps(const char *dbdir, time_t now)
{
    DIR *d = opendir(dbdir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int legacy = is_legacy_temp(de->d_name);
        if (!legacy && !cf_file_is_replace_temp(de->d_name, CF_STATE_FILE))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode))
            continue;
        if (legacy || st.st_mtime < now - CF_STATE_TEMP_GRACE || st.st_mtime > now + CF_STATE_TEMP_GRACE)
            (void)unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

cf_code cf_state_load(const char *dbdir, cf_state *s, int *created, cf_err *e)
{
    if (created)
        *created = 0;
    char path[PATH_MAX];
    cf_code c = state_path(dbdir, path, sizeof path, e);
    if (c != CF_OK)
        return c;
    time_t now = time(NULL);
    remove_stale_temps(dbdir, now);
    cf_buf b = CF_BUF_INIT;
    cf_err re = {0};
    /* Anything bigger than a few structs is not ours; read a bounded amount. */
    c = cf_file_read_db(path, 4096, &b, &re);
    if (c == CF_OK)
        c = cf_state_decode(b.p, b.n, s, NULL);
    cf_buf_free(&b);
    if (c == CF_EUNSUPP) {
        /* A link or FIFO there is someone else's doing: neither read through it
         * nor silently replace it. */
        if (e)
            *e = re;
        return c;
    }
    if (c == CF_OK) {
        if (cf_state_cooldown_clamp(s, now))
            (void)cf_state_save(dbdir, s, NULL);
        return CF_OK;
    }
    if ((c = cf_state_init_new(s, e)) != CF_OK)
        return c;
    if ((c = cf_state_save(dbdir, s, e)) != CF_OK)
        return c;
    if (created)
        *created = 1;
    return CF_OK;
}

/* now + secs for 0 <= secs <= CF_COOLDOWN_MAX, saturating instead of
 * overflowing at the end of time. */
static int64_t end_after(time_t now, int64_t secs)
{
    int64_t n = (int64_t)now;
    return n > INT64_MAX - secs ? INT64_MAX : n + secs;
}

void cf_state_block_403(cf_state *s, time_t now)
{
    s->retry_after = end_after(now, CF_COOLDOWN_403 < CF_COOLDOWN_MAX ? CF_COOLDOWN_403 : CF_COOLDOWN_MAX);
}

void cf_state_block_429(cf_state *s, time_t now, long retry_after_secs)
{
    int64_t secs = retry_after_secs <= 0                ? CF_COOLDOWN_429
                   : retry_after_secs > CF_COOLDOWN_MAX ? CF_COOLDOWN_MAX
                                                        : (int64_t)retry_after_secs;
    s->retry_after = end_after(now, secs);
}

int cf_state_cooldown_clamp(cf_state *s, time_t now)
{
    int64_t limit = end_after(now, CF_COOLDOWN_MAX);
    if (s->retry_after <= limit)
        return 0;
    s->retry_after = limit;
    return 1;
}

void cf_state_set_ray(cf_state *s, const char *ray)
{
    memset(s->cf_ray, 0, sizeof s->cf_ray);
    if (ray)
        memcpy(s->cf_ray, ray, strnlen(ray, CF_STATE_RAY_SIZE - 1));
}

cf_cooldown cf_state_cooldown_check(cf_state *s, time_t now)
{
    (void)cf_state_cooldown_clamp(s, now);
    if (s->retry_after <= 0)
        return CF_COOLDOWN_NONE;
    if (s->retry_after > (int64_t)now)
        return CF_COOLDOWN_ACTIVE;
    s->retry_after = 0;
    return CF_COOLDOWN_EXPIRED;
}

void cf_state_format_time(time_t t, char out[20])
{
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, 20, "%lld", (long long)t);
}

void cf_state_msg_on_cooldown(const cf_state *s, char out[CF_STATE_MSG_SIZE])
{
    char t[20];
    cf_state_format_time((time_t)s->retry_after, t);
    snprintf(out, CF_STATE_MSG_SIZE, "You are on cool-down until after: %s", t);
}

void cf_state_msg_still_cooldown(const cf_state *s, char out[CF_STATE_MSG_SIZE])
{
    char t[20];
    cf_state_format_time((time_t)s->retry_after, t);
    snprintf(out, CF_STATE_MSG_SIZE, "You are still on cool-down until after: %s", t);
}

/* ------------------------------------------------ per-mirror memory */

/* Lines "<time> <mirror>" (no versioned files) or "<time> <kind> <mirror>";
 * mirror URLs hold no spaces. */
static int line_is(const char *line, const char *kind, const char *mirror, time_t *when)
{
    const char *sp = strchr(line, ' ');
    if (!sp)
        return 0;
    const char *rest = sp + 1, *sp2 = strchr(rest, ' ');
    int match;
    if (sp2 == NULL)
        match = kind == NULL && strcmp(rest, mirror) == 0;
    else
        match = kind != NULL && (size_t)(sp2 - rest) == strlen(kind) &&
                strncmp(rest, kind, strlen(kind)) == 0 && strcmp(sp2 + 1, mirror) == 0;
    if (match && when)
        *when = (time_t)strtoll(line, NULL, 10);
    return match;
}

static const char *kind_word(cf_mirror_lack kind)
{
    return kind == CF_MIRROR_LACKS_POINTER ? "pointer" : kind == CF_MIRROR_LACKS_CLD ? "cld" : NULL;
}

int cf_state_mirror_lacks(const char *dbdir, cf_mirror_lack kind, const char *mirror, time_t now)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dbdir, CF_MIRROR_STATE_FILE);
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    time_t since = 0;
    if (cf_file_read_db(path, CF_MIRROR_STATE_MAX, &b, &e) == CF_OK && cf_buf_append(&b, "", 1) == CF_OK) {
        char *save = NULL;
        for (char *line = strtok_r((char *)b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            line_is(line, kind_word(kind), mirror, &since);
    }
    cf_buf_free(&b);
    return since && now >= since && now - since < CF_MIRROR_LACK_RETRY;
}

cf_code cf_state_mirror_note(const char *dbdir, cf_mirror_lack kind, const char *mirror, time_t when,
                             cf_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dbdir, CF_MIRROR_STATE_FILE);
    cf_buf old = CF_BUF_INIT, out = CF_BUF_INIT;
    cf_err re = {0};
    int had = 0;
    if (cf_file_read_db(path, CF_MIRROR_STATE_MAX, &old, &re) == CF_OK &&
        cf_buf_append(&old, "", 1) == CF_OK) {
        char *save = NULL;
        for (char *line = strtok_r((char *)old.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (!strchr(line, ' '))
                continue;
            if (line_is(line, kind_word(kind), mirror, NULL)) {
                had = 1;
                continue;
            }
            cf_buf_printf(&out, "%s\n", line);
        }
    }
    cf_buf_free(&old);
    if (!when && !had) {
        /* Nothing to forget: leave the file (and the directory) alone. */
        cf_buf_free(&out);
        return CF_OK;
    }
    if (when && kind_word(kind))
        cf_buf_printf(&out, "%lld %s %s\n", (long long)when, kind_word(kind), mirror);
    else if (when)
        cf_buf_printf(&out, "%lld %s\n", (long long)when, mirror);
    cf_code rc = cf_install_file(dbdir, CF_MIRROR_STATE_FILE, out.p ? (const void *)out.p : "", out.n, e);
    cf_buf_free(&out);
    return rc;
}
