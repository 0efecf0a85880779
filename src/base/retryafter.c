/* Retry-After (retryafter.h). */
#include "clamfresh/retryafter.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

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
