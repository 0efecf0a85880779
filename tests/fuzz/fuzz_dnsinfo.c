/* The TXT record readers of dns.h: the current.cvd.clamav.net record, the
 * per-database record, field splitting and version comparison. The input is
 * cut at its first newline into a record and a second version string. */
#include "fuzz.h"

#include "clamfresh/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = cf_fuzz_strndup(data, size);
    if (!s)
        return 0;
    char *other = strchr(s, '\n');
    if (other)
        *other++ = '\0';
    else
        other = "1.4.6";
    const time_t now = 1700000000;
    cf_err e = {0};
    char field[CF_DNS_TXT_MAX];
    for (unsigned n = 0; n < 10; n++)
        if (cf_dnsinfo_field(s, n, field, sizeof field, &e) == CF_OK)
            CF_FUZZ_ASSERT(field[0] != '\0' && strlen(field) < sizeof field);
    (void)cf_dnsinfo_field(s, 1, field, 2, &e);

    cf_dnsinfo d;
    memset(&d, 0, sizeof d);
    if (cf_dnsinfo_parse(s, now, &d, &e) == CF_OK) {
        static const char *const dbs[] = {"main", "daily", "bytecode", "safebrowsing", "other", ""};
        for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
            unsigned v = 0;
            (void)cf_dnsinfo_db_version(&d, dbs[i], &v, &e);
            (void)cf_dnsinfo_db_field(dbs[i]);
        }
        (void)cf_dnsinfo_outdated(&d, other);
        (void)cf_dnsinfo_outdated(&d, "1.4.6");
    }
    unsigned v = 0;
    (void)cf_dnsinfo_parse_db(s, now, "daily", &v, &e);
    int c1 = cf_version_compare(s, other), c2 = cf_version_compare(other, s);
    CF_FUZZ_ASSERT((c1 > 0) == (c2 < 0) && (c1 == 0) == (c2 == 0));
    CF_FUZZ_ASSERT(cf_version_compare(s, s) == 0);
    free(s);
    return 0;
}
