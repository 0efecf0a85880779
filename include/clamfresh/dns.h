/* DNS update info (behavior §4.2): one blocking TXT lookup through c-ares, and
 * the pure reading of the record. The parsers never touch the network; every
 * warning text freshclam prints for a bad record comes back in cf_err.msg. */
#ifndef CLAMFRESH_DNS_H
#define CLAMFRESH_DNS_H

#include <stddef.h>
#include <time.h>

#include "clamfresh/err.h"

#define CF_DNS_TXT_MAX 256       /* a TXT character-string is at most 255 bytes */
#define CF_DNS_TIMEOUT_MS 5000   /* bound on one whole lookup, retries included */
#define CF_DNSINFO_MAX_AGE 43200 /* 12 hours (§4.2) */
#define CF_DNSINFO_DEFAULT "current.cvd.clamav.net"
#define CF_DNS_DB_DOMAIN "cvd.clamav.net" /* <db>.cvd.clamav.net, hard-coded in freshclam */

/* Queries a TXT record of name (class IN) with c-ares, configured from
 * /etc/resolv.conf. Copies the first character-string of the first TXT record
 * into out (NUL-terminated) and its TTL into *ttl (may be NULL). Errors:
 * CF_ENOTFOUND (no such name / no TXT record), CF_ENET (timeout, server
 * failure, no servers), CF_ETOOBIG (string longer than outsz - 1). */
cf_code cf_dns_query_txt(const char *name, char *out, size_t outsz, unsigned *ttl, cf_err *e);

/* Same, with the resolver's queries sent from local_ip (LocalIPAddress; IPv6
 * when it contains ':'). local_ip NULL or "" = no binding. */
cf_code cf_dns_query_txt_from(const char *name, const char *local_ip, char *out, size_t outsz, unsigned *ttl,
                              cf_err *e);

/* A validated current.cvd.clamav.net record. Fields are numbered from 0 as in
 * §4.2; consecutive ':' count as one separator, and a leading ':' leaves field 0
 * empty (freshclam's field splitter). */
typedef struct cf_dnsinfo {
    char txt[CF_DNS_TXT_MAX]; /* the record as received */
    time_t record_time;       /* field 3 */
    int version_warning;      /* field 4 does not start with '0': warn about an outdated ClamAV */
    char newest[64];          /* field 0: newest ClamAV release, e.g. "1.4.1" */
} cf_dnsinfo;

/* Field n of a record (freshclam's splitting rules) into out. CF_ENOTFOUND
 * when the field is absent or empty, CF_ETOOBIG when it does not fit. */
cf_code cf_dnsinfo_field(const char *txt, unsigned n, char *out, size_t outsz, cf_err *e);

/* Checks a record in freshclam's order. On failure e->msg is exactly the warning
 * freshclam prints, and the whole record must be discarded (HTTP mode for every
 * database):
 *   "Failed to find Record Time field in DNS Update Info."
 *   "DNS record is older than 12 hours."          (now - field 3 > 43200)
 *   "Failed to find Version Warning Flag in DNS Update Info."
 *   "Failed to find New Version field in DNS Update Info."
 * All return CF_EFORMAT; CF_ETOOBIG when txt exceeds CF_DNS_TXT_MAX - 1. */
cf_code cf_dnsinfo_parse(const char *txt, time_t now, cf_dnsinfo *out, cf_err *e);

/* Field index of db in the record: main 1, daily 2, safebrowsing 6, bytecode 7;
 * -1 for any other database. */
int cf_dnsinfo_db_field(const char *db);

/* Version of db from the record.
 *   CF_ENOTFOUND: db has no field in the record; e->msg =
 *     "query_remote_database_version: Database name \"<db>\" isn't listed in DNS update info."
 *     (DEBUG), and the caller queries <db>.cvd.clamav.net instead;
 *   CF_EFORMAT, e->msg = "Invalid DNS update info. Falling back to HTTP mode."
 *     (field missing) or "Broken database version in TXT record. Falling back to HTTP mode."
 *     (not all digits); both are WARN.
 * freshclam treats a version of 0 as "unknown": after CF_EFORMAT, and after CF_OK
 * with *version == 0, it too tries <db>.cvd.clamav.net before HTTP probing. */
cf_code cf_dnsinfo_db_version(const cf_dnsinfo *d, const char *db, unsigned *version, cf_err *e);

/* Reads a <db>.cvd.clamav.net record ("version:time") in freshclam's order. On
 * CF_EFORMAT e->msg is the WARN text:
 *   "No recordtime field in TXT record for <db>.cvd"   (field 1 missing)
 *   "DNS record is older than 12 hours."
 *   "Invalid DNS reply. Falling back to HTTP mode."    (field 0 missing)
 *   "Broken database version in TXT record for <db>.cvd" (field 0 not all digits)
 * When the query itself fails freshclam prints CF_DNSINFO_MSG_NO_RECORD with
 * "<db>.cvd" instead. Every failure means HTTP probing for db. */
#define CF_DNSINFO_MSG_NO_RECORD "No timestamp in TXT record for %s"
cf_code cf_dnsinfo_parse_db(const char *txt, time_t now, const char *db, unsigned *version, cf_err *e);

/* Compares dotted versions component-wise numerically, looking only at the text
 * before the first '-' of each: <0, 0, >0 as a is lower, equal, higher. */
int cf_version_compare(const char *a, const char *b);

/* The §4.2 outdated-software check: nonzero when the record's warning flag is
 * set, local contains none of "devel", "beta", "rc", and local is lower than
 * field 0. The caller then prints the three OUTDATED lines and remembers
 * d->newest for OnOutdatedExecute. */
int cf_dnsinfo_outdated(const cf_dnsinfo *d, const char *local_version);

#endif
