/* freshclam.dat (behavior §5.5, §5.3). The byte layout is written field by field
 * at fixed offsets, so the file matches what freshclam dumps on x86-64 without
 * depending on this compiler's struct layout. */
#include "clamfresh/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "clamfresh/fileio.h"

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

static const char *const help_403[] = {
    "This could mean several things:",
    " 1. You are running an out-of-date version of ClamAV / FreshClam.",
    "    Ensure you are the most updated version by visiting https://www.clamav.net/downloads",
    " 2. Your network is explicitly denied by the FreshClam CDN.",
    "    In order to rectify this please check that you are:",
    "   a. Running an up-to-date version of FreshClam",
    "   b. Running FreshClam no more than once an hour",
    "   c. Connecting from an IP in a blocked region",
    "      Please see https://www.cisco.com/c/m/en_us/crisissupport.html",
    "   d. If you have checked (a), (b) and (c), please open a ticket at",
    "      https://github.com/Cisco-Talos/clamav/issues",
    "      and we will investigate why your network is blocked.",
    NULL,
};

static const char *const help_429[] = {
    "This means that you have been rate limited by the CDN.",
    " 1. Run FreshClam no more than once an hour to check for updates.",
    "    FreshClam should check DNS first to see if an update is needed.",
    " 2. If you have more than 10 hosts on your network attempting to download,",
    "    it is recommended that you set up a private mirror on your network using",
    "    cvdupdate (https://pypi.org/project/cvdupdate/) to save bandwidth on the",
    "    CDN and your own network.",
    " 3. Please do not open a ticket asking for an exemption from the rate limit,",
    "    it will not be granted.",
    NULL,
};

static const char *const help_previous[] = {
    "This means that you have been rate limited or blocked by the CDN.",
    " 1. Verify that you're running a supported ClamAV version.",
    "    See https://docs.clamav.net/faq/faq-eol.html for details.",
    " 2. Run FreshClam no more than once an hour to check for updates.",
    "    FreshClam should check DNS first to see if an update is needed.",
    " 3. If you have more than 10 hosts on your network attempting to download,",
    "    it is recommended that you set up a private mirror on your network using",
    "    cvdupdate (https://pypi.org/project/cvdupdate/) to save bandwidth on the",
    "    CDN and your own network.",
    " 4. Please do not open a ticket asking for an exemption from the rate limit,",
    "    it will not be granted.",
    NULL,
};

size_t cf_state_help(cf_state_help_kind kind, const char *ray,
                     char lines[CF_STATE_HELP_LINES][CF_STATE_MSG_SIZE])
{
    const char *const *src = kind == CF_STATE_HELP_403   ? help_403
                             : kind == CF_STATE_HELP_429 ? help_429
                                                         : help_previous;
    size_t n = 0;
    for (; n < CF_STATE_HELP_LINES && src[n]; n++)
        snprintf(lines[n], CF_STATE_MSG_SIZE, "%s", src[n]);
    if (ray == NULL || ray[0] == '\0' || kind == CF_STATE_HELP_429)
        return n;
    if (kind == CF_STATE_HELP_403) {
        snprintf(lines[n++], CF_STATE_MSG_SIZE,
                 "      Please provide the following cf-ray id with your ticket: %.20s", ray);
    } else {
        snprintf(lines[n++], CF_STATE_MSG_SIZE, "%s",
                 " 5. If you have verified that you are not blocked due to your region, and have");
        snprintf(lines[n++], CF_STATE_MSG_SIZE, "%s",
                 "    not exceeded the rate limit, please provide the following cf-ray id when");
        snprintf(lines[n++], CF_STATE_MSG_SIZE, "    submitting a ticket: %.20s", ray);
    }
    lines[n++][0] = '\0';
    return n;
}
