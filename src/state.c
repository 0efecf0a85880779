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

/* ------------------------------------------------------------ Retry-After */

/* Days since 1970-01-01 of a proleptic Gregorian date (y in 0..9999 here). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The Gregorian year that contains Unix time t (any int64). */
static int64_t year_of(int64_t t)
{
    int64_t z = t / 86400 - (t % 86400 < 0) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Exactly n digits at *p, advancing past them; -1 when not. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int lit(const char **p, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*p, s, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* The first of names that p starts with, advancing past it: its 1-based
 * index, or 0. */
static int word(const char **p, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (lit(p, names[i]))
            return i + 1;
    return 0;
}

static const char *const wkday[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const weekday[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                      "Friday", "Saturday", "Sunday"};
static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

typedef struct http_date {
    int64_t year;
    int mon, day, hour, min, sec;
} http_date;

/* "HH:MM:SS" */
static int parse_clock(const char **p, http_date *d)
{
    d->hour = digits(p, 2);
    if (d->hour < 0 || !lit(p, ":"))
        return 0;
    d->min = digits(p, 2);
    if (d->min < 0 || !lit(p, ":"))
        return 0;
    d->sec = digits(p, 2);
    return d->sec >= 0;
}

/* The three forms of RFC 9110 §5.6.7; the whole of p must be consumed. */
static int parse_http_date(const char *p, size_t n, time_t now, http_date *d)
{
    const char *end = p + n;
    if (word(&p, weekday, 7)) { /* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
        if (!lit(&p, ", ") || (d->day = digits(&p, 2)) < 0 || !lit(&p, "-") ||
            (d->mon = word(&p, month, 12)) == 0 || !lit(&p, "-"))
            return 0;
        int yy = digits(&p, 2);
        if (yy < 0 || !lit(&p, " ") || !parse_clock(&p, d) || !lit(&p, " GMT"))
            return 0;
        /* A two-digit year more than 50 years ahead is the most recent past
         * year with those digits (RFC 9110 §5.6.7). */
        int64_t ny = year_of((int64_t)now);
        int64_t y = ny - ((ny % 100) + 100) % 100 + yy;
        if (y > ny + 50)
            y -= 100;
        d->year = y;
    } else if (word(&p, wkday, 7)) {
        if (lit(&p, ", ")) { /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            if ((d->day = digits(&p, 2)) < 0 || !lit(&p, " ") || (d->mon = word(&p, month, 12)) == 0 ||
                !lit(&p, " ") || (d->year = digits(&p, 4)) < 0 || !lit(&p, " ") || !parse_clock(&p, d) ||
                !lit(&p, " GMT"))
                return 0;
        } else { /* asctime-date: Sun Nov  6 08:49:37 1994 */
            if (!lit(&p, " ") || (d->mon = word(&p, month, 12)) == 0 || !lit(&p, " "))
                return 0;
            if (*p == ' ') {
                p++;
                d->day = digits(&p, 1);
            } else {
                d->day = digits(&p, 2);
            }
            if (d->day < 0 || !lit(&p, " ") || !parse_clock(&p, d) || !lit(&p, " ") ||
                (d->year = digits(&p, 4)) < 0)
                return 0;
        }
    } else {
        return 0;
    }
    /* 60 seconds: a leap second, which Unix time folds into the next minute. */
    return p == end && d->day >= 1 && d->day <= days_in_month(d->year, d->mon) && d->hour <= 23 &&
           d->min <= 59 && d->sec <= 60;
}

cf_code cf_retry_after_parse(const char *value, time_t now, long *seconds)
{
    if (!value)
        return CF_EFORMAT;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return CF_EFORMAT;
    size_t i = 0;
    int64_t v = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        /* Saturate: the digits only matter up to the cap. */
        if (v <= CF_COOLDOWN_MAX)
            v = v * 10 + (p[i] - '0');
        i++;
    }
    if (i == n) {
        *seconds = (long)(v > CF_COOLDOWN_MAX ? CF_COOLDOWN_MAX : v);
        return CF_OK;
    }
    if (i != 0)
        return CF_EFORMAT;
    http_date d;
    if (!parse_http_date(p, n, now, &d))
        return CF_EFORMAT;
    /* The year has at most four digits (RFC 850 years stay near now's year,
     * clamped below), so this fits easily in 64 bits. */
    if (d.year < 0 || d.year > 9999)
        return CF_EFORMAT;
    int64_t t = days_from_civil(d.year, d.mon, d.day) * 86400 + d.hour * 3600 + d.min * 60 + d.sec;
    int64_t nw = (int64_t)now;
    if (t <= nw)
        *seconds = 0;
    else if (nw < t - CF_COOLDOWN_MAX)
        *seconds = CF_COOLDOWN_MAX;
    else
        *seconds = (long)(t - nw);
    return CF_OK;
}
