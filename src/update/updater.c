/* The per-database policy (updater.h). Every decision of freshclam-behavior.md
 * §4.3-§4.9 and §5.3 is made here, in this order:
 *
 *   try_once:   remote version (DNS, else the Range probe weighed against the
 *               pointer and the next patch: weigh, remote.h) -> up to date?
 *               -> cdiff_route (L+1..V, fetched in batches, applied in one pass;
 *                  open-ended when only the patches know how far to go)
 *               -> full_route  (NAME-V.cvd, NAME.cvd?version=V, NAME.cvd no-cache)
 *   db_attempts: MaxAttempts per mirror, mirror rotation, 403/429, not-synchronised.
 *
 * Bytes only become a database through the trust path (verify.h) and only
 * reach the directory through the store (stage.h, install.h, vrecord.h). */
#include "clamfresh/updater.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamfresh/cdiff.h"
#include "clamfresh/codesign.h"
#include "clamfresh/cvd.h"
#include "clamfresh/dbpatch.h"
#include "clamfresh/dbstream.h"
#include "clamfresh/fileio.h"
#include "clamfresh/install.h"
#include "clamfresh/limits.h"
#include "clamfresh/stage.h"
#include "clamfresh/vrecord.h"

#define MSG_MAX 2048
#define URL_MAX CF_REMOTE_URL_MAX

/* Outcomes internal to one attempt, beside the cf_fc codes. */
enum {
    R_RETRY_NOW = 1000, /* installed an older CVD than advertised: re-run at once (§4.4) */
    R_NOTSYNC,          /* nothing newer than local was served: re-run at once, then accept */
    R_REFUSED,          /* NAME-V.cvd answered 403: a block only if no other name delivers */
    R_DAMAGED,          /* the local database fails verification: fetch it as if absent */
};

/* ------------------------------------------------------------------ helpers */

/* Every message goes through the remote layer's log. */
#define say(u, ...) cf_remote_say(&(u)->net, __VA_ARGS__)

/* freshclam words a failure as a warning while attempts remain, as an error on
 * the last one (§5.2). */
static cf_msglevel warn_or_error(int last)
{
    return last ? CF_MSG_ERROR : CF_MSG_WARN;
}

static time_t now_of(cf_updater *u)
{
    return cf_remote_now(&u->net);
}

/* The remote layer's reaction flags, as the caller reads them. */
static void sync_flags(cf_updater *u)
{
    u->state_dirty |= u->net.state_dirty;
    u->forbidden |= u->net.forbidden;
}

static void fetch(cf_updater *u, const cf_http_req *reqs, cf_http_resp *resps, size_t n, unsigned k)
{
    unsigned before = u->net.requests;
    uint64_t bytes = u->net.bytes;
    cf_remote_fetch(&u->net, reqs, resps, n, k);
    if (u->cur != NULL) {
        u->cur->requests += u->net.requests - before;
        u->cur->bytes += u->net.bytes - bytes;
    }
}

/* Every URL buffer here is URL_MAX bytes. */
static int url_join(char *out, const char *mirror, const char *file)
{
    return cf_remote_url(out, mirror, file);
}

static void hdr_summary(char *out, size_t n, const cf_cvdhdr *h)
{
    snprintf(out, n, "version: %u, sigs: %u, f-level: %u, builder: %s", h->version, h->sigs, h->flevel,
             h->builder);
}

int cf_updater_local(const char *dbdir, const char *db, cf_cvdhdr *hdr, char *file)
{
    return cf_stage_local_header(dbdir, db, hdr, file);
}

void cf_updater_init(cf_updater *u, const cf_update_opts *o, const cf_update_env *env)
{
    memset(u, 0, sizeof *u);
    u->o = *o;
    u->env = *env;
    cf_remote_init(&u->net, &u->env, o->proxy_label, o->state);
    if (u->o.concurrency == 0)
        u->o.concurrency = 1;
}

int cf_updater_cooldown_active(cf_updater *u)
{
    int active = cf_remote_cooldown_active(&u->net);
    sync_flags(u);
    return active;
}

/* -------------------------------------- per-mirror memory of NAME-V.cvd 404s */

static void mirror_note(cf_updater *u, cf_mirror_lack kind, const char *mirror, time_t when)
{
    cf_err e = {0};
    if (cf_state_mirror_note(u->o.dbdir, kind, mirror, when, &e) != CF_OK)
        say(u, CF_MSG_DEBUG, "Can't record mirror state: %s", e.msg);
}

/* ------------------------------------------------------------------ install */

typedef struct dbctx {
    cf_updater *u;
    const char *db;
    uint32_t dnsver;
    int have_local;
    cf_cvdhdr lhdr;
    char lfile[64];
    unsigned parts;    /* staged candidate files made so far */
    cf_discovery disc; /* what the version probe learnt beside the header */
    int open;          /* the header was stale: patch as far as the patches reach */
    int readonly;      /* --check-only: write nothing, not even the per-mirror memory */
    long last_status;  /* HTTP status of the last header probe (0: none) */
    uint32_t said;     /* the version the stale header said */
} dbctx;

/* Is the open file fd dbdir/name the very file verified in full at version
 * less than a day ago (vrecord.h)? */
static int recently_verified(cf_updater *u, const char *name, int fd, uint32_t version)
{
    return cf_vrecord_fresh_fd(u->o.dbdir, name, fd, version, now_of(u));
}

/* Records that dbdir/name, just installed or checked, passed a full
 * verification at version (vrecord.h). A failure only costs a later check. */
static void record_verified(cf_updater *u, const char *name, int fd, uint32_t version, int ok)
{
    cf_err e = {0};
    if (cf_vrecord_note(u->o.dbdir, name, fd, version, ok, now_of(u), &e) != CF_OK)
        say(u, CF_MSG_DEBUG, "Can't record the verification of %s: %s", name, e.msg);
}

/* The load test of §4.7 on the staged file itself: 0 when it passed,
 * CF_FC_ETESTFAIL otherwise (messages logged). */
static int load_test(cf_updater *u, const char *staged)
{
    say(u, CF_MSG_INFO, "Testing database: '%s' ...", staged);
    if (u->env.testdb) {
        cf_err te = {0};
        if (u->env.testdb(u->env.arg, staged, &te) != CF_OK) {
            if (te.msg[0])
                say(u, CF_MSG_WARN, "%s", te.msg);
            say(u, CF_MSG_ERROR, "Database test FAILED.");
            return CF_FC_ETESTFAIL;
        }
    }
    say(u, CF_MSG_INFO, "Database test passed.");
    return 0;
}

/* Two-phase install (§4.6, §4.7): the staged file <tmpdir>/<db>.<ext>, complete
 * and fsynced, is load-tested where it lies and then renamed into place; no
 * second copy is written. The staged file is gone afterwards either way. */
static int test_and_install(cf_updater *u, const char *db, const char *ext, const char *staged,
                            const cf_buf *sign, const cf_cvdhdr *h)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", db, ext);
    int rc = load_test(u, staged);
    if (rc != 0) {
        cf_stage_discard(staged);
        return rc;
    }
    cf_err e = {0};
    int stale = 0;
    if (cf_install_db_commit(u->o.dbdir, db, ext, staged, sign && sign->n ? sign->p : NULL,
                             sign ? sign->n : 0, h->version, &stale, &e) != CF_OK) {
        say(u, CF_MSG_ERROR, "updatedb: Can't install %s in %s: %s", name, u->o.dbdir, e.msg);
        cf_stage_discard(staged);
        return CF_FC_EDBDIRACCESS;
    }
    if (stale)
        say(u, CF_MSG_WARN, "%s", e.msg);
    u->replaced++;
    record_verified(u, name, -1, h->version, 1);
    char sum[256];
    hdr_summary(sum, sizeof sum, h);
    say(u, CF_MSG_INFO, "%s updated (%s)", name, sum);
    say(u, CF_MSG_DEBUG, "fc_update_database: %s updated.", name);
    if (u->o.engine_flevel && h->flevel > u->o.engine_flevel) {
        say(u, CF_MSG_WARN, "Your ClamAV installation is OUTDATED!");
        say(u, CF_MSG_WARN, "Current functionality level = %u, recommended = %u", u->o.engine_flevel,
            h->flevel);
        say(u, CF_MSG_INFO, "DON'T PANIC! Read https://docs.clamav.net/manual/Installing.html");
    }
    return CF_FC_SUCCESS;
}

/* .sign files carry lines only engines from f-level 230 on read (§7.2): an
 * older engine never asks for them. */
static int sign_wanted(const cf_updater *u)
{
    const cf_verifyctx *v = u->o.verify;
    return v != NULL && v->certs != NULL && v->flevel >= CF_SIGN_MIN_FLEVEL;
}

/* A file in the run's private directory (same file system as dbdir), which
 * is made here the first time. */
static int stage_path(cf_updater *u, char out[4096], const char *name)
{
    int w = snprintf(out, 4096, "%s/%s", u->o.tmpdir, name);
    if (w < 0 || w >= 4096)
        return -1;
    if (!u->tmp_ready) {
        cf_err e = {0};
        if (cf_stage_dir(u->o.tmpdir, &e) != CF_OK) {
            say(u, CF_MSG_ERROR, "%s", e.msg);
            return -1;
        }
        u->tmp_ready = 1;
    }
    return 0;
}

static void say_uptodate(dbctx *c)
{
    char sum[256];
    hdr_summary(sum, sizeof sum, &c->lhdr);
    say(c->u, CF_MSG_INFO, "%s database is up-to-date (%s)", c->lfile, sum);
    say(c->u, CF_MSG_DEBUG, "fc_update_database: %s already up-to-date.", c->lfile);
}

/* -------------------------------------------------------------------- probe */

/* Range probe of <mirror>/<file> (§4.2). Returns 0 with *ver set, CF_FC_UPTODATE
 * on 304, or a failure code. quiet_404: a failed .cld probe of a private mirror
 * is only a warning before the .cvd probe (§4.8). */
static int probe(dbctx *c, const char *mirror, const char *file, int last, int quiet, int discover,
                 uint32_t *ver)
{
    cf_updater *u = c->u;
    char url[URL_MAX];
    if (url_join(url, mirror, file) != 0)
        return CF_FC_EFAILEDGET;
    say(u, CF_MSG_INFO, "Trying to retrieve CVD header from %s", url);
    cf_http_req reqs[3] = {
        {.url = url, .range_head = 1, .if_modified_since = c->have_local ? (time_t)c->lhdr.stime : 0}};
    cf_http_resp resps[3];
    /* What the header says may come from a cache: the pointer and the next
     * patch ask the same question under names no cache can answer wrongly,
     * in the same round (remote.h). */
    size_t extra = 0;
    if (discover) {
        cf_discovery_free(&c->disc);
        /* A mirror that answered 404 for its pointer is not asked for a day,
         * so an up-to-date run costs at most two small requests there too. */
        int ask_pointer = !cf_state_mirror_lacks(u->o.dbdir, CF_MIRROR_LACKS_POINTER, mirror, now_of(u));
        extra = cf_discovery_prepare(&u->net, &c->disc, mirror, c->db, c->have_local ? c->lhdr.version : 0,
                                     u->o.scripted, ask_pointer, reqs + 1);
    }
    fetch(u, reqs, resps, 1 + extra, (unsigned)(1 + extra));
    if (discover) {
        cf_discovery_read(&u->net, &c->disc, c->db, resps + 1, extra);
        if (c->readonly)
            ; /* nothing is written by a check */
        else if (c->disc.pointer_asked && c->disc.pointer_missing)
            mirror_note(u, CF_MIRROR_LACKS_POINTER, mirror, now_of(u));
        else if (c->disc.pointer)
            mirror_note(u, CF_MIRROR_LACKS_POINTER, mirror, 0);
    }
    for (size_t i = 1; i <= extra; i++)
        cf_http_resp_free(&resps[i]);
    cf_http_resp r = resps[0];
    c->last_status = r.err.code == CF_OK ? r.status : 0;
    int rc = 0;
    switch (cf_remote_kind(&r)) {
    case CF_HTTP_OK: {
        cf_err e = {0};
        cf_cvdhdr h;
        int bad = 0;
        if (r.body.n < CF_HDR_SIZE) {
            say(u, warn_or_error(last), "remote_cvdhead: Malformed CVD header (too short)");
            bad = 1;
        } else {
            for (size_t i = 0; i < CF_HDR_SIZE && !bad; i++)
                if (r.body.p[i] < 0x20 || r.body.p[i] > 0x7e)
                    bad = 1;
            if (bad)
                say(u, warn_or_error(last), "remote_cvdhead: Malformed CVD header (bad chars)");
            else if (cf_cvdhdr_parse(r.body.p, CF_HDR_SIZE, &h, &e) != CF_OK) {
                say(u, warn_or_error(last), "remote_cvdhead: Malformed CVD header (can't parse)");
                bad = 1;
            }
        }
        if (!bad) {
            say(u, CF_MSG_INFO, "OK");
            *ver = h.version;
            say(u, CF_MSG_DEBUG, "%s database version obtained using HTTP GET: %u", c->db, h.version);
        } else {
            rc = CF_FC_EFAILEDGET;
        }
        break;
    }
    case CF_HTTP_NOT_MODIFIED:
        if (!c->have_local) {
            say(u, CF_MSG_ERROR,
                "check_for_new_database_version: server claims we're up-to-date, but we don't have a local "
                "database!");
            rc = CF_FC_EFAILEDGET;
        } else {
            rc = CF_FC_UPTODATE;
        }
        break;
    case CF_HTTP_FORBIDDEN:
        say(u, CF_MSG_ERROR, "check_for_new_database_version: Blocked from using server %s.", mirror);
        rc = cf_remote_forbidden(&u->net, file, url, &r);
        break;
    case CF_HTTP_RATE_LIMITED:
        rc = cf_remote_rate_limited(&u->net, &r);
        break;
    default:
        cf_remote_say_failure(&u->net, quiet ? CF_MSG_WARN : warn_or_error(last), &r, "remote_cvdhead", url,
                              mirror);
        rc = CF_FC_EFAILEDGET;
        break;
    }
    if (rc == CF_FC_EFAILEDGET && !quiet) {
        say(u, CF_MSG_WARN, "Failed to get %s database version information from server: %s", c->db, mirror);
        say(u, warn_or_error(last),
            "check_for_new_database_version: Failed to find %s database using server %s.", c->db, mirror);
    }
    cf_http_resp_free(&r);
    return rc;
}

/* ----------------------------------------------------------------- full file */

/* A whole database staged in the private directory. */
typedef struct stagedfile {
    char path[4096]; /* "" when none */
    cf_buf sign;     /* the .sign to keep beside a CVD, when one was used */
    cf_cvdhdr hdr;
    char url[URL_MAX];
    int have;
} stagedfile;

static void staged_free(stagedfile *f)
{
    cf_stage_discard(f->path);
    cf_buf_free(&f->sign);
    memset(f, 0, sizeof *f);
}

/* A download written to its staged file as it arrives, checked on the same
 * stream (dbstream.h) when no .sign is in play. */
typedef struct dl {
    int fd;
    cf_dbscan *scan; /* NULL: the file is verified after it arrived */
    uint64_t n;
    uint8_t head[CF_HDR_SIZE];
    int scan_failed, io_failed;
    cf_err scan_err, io_err;
} dl;

static cf_code dl_sink(void *arg, const uint8_t *p, size_t n, cf_err *e)
{
    dl *d = arg;
    if (d->n < CF_HDR_SIZE) {
        size_t k = CF_HDR_SIZE - d->n < n ? CF_HDR_SIZE - d->n : n;
        memcpy(d->head + d->n, p, k);
    }
    if (cf_fd_write_all(d->fd, p, n, &d->io_err) != CF_OK) {
        d->io_failed = 1;
        return cf_err_set(e, d->io_err.code, "%s", d->io_err.msg);
    }
    d->n += n;
    if (d->scan != NULL && cf_dbscan_feed(d->scan, p, n, &d->scan_err) != CF_OK) {
        /* No later byte can make it verify: stop the transfer now. */
        d->scan_failed = 1;
        return cf_err_set(e, d->scan_err.code, "%s", d->scan_err.msg);
    }
    return CF_OK;
}

/* The .sign of a downloaded CVD, fetched after it when its name was not known
 * before (the version is the one the header names). */
static void fetch_sign_after(dbctx *c, const char *mirror, uint32_t version, cf_buf *sign)
{
    char sname[128], surl[URL_MAX];
    if (cf_signfile_name_cvd(c->db, version, sname, sizeof sname) != 0 || url_join(surl, mirror, sname) != 0)
        return;
    cf_http_req sreq = {.url = surl, .max_bytes = CF_MAX_SIGN_BYTES};
    cf_http_resp sr;
    fetch(c->u, &sreq, &sr, 1, 1);
    if (cf_remote_kind(&sr) == CF_HTTP_OK && sr.body.n > 0)
        cf_buf_set(sign, sr.body.p, sr.body.n);
    cf_http_resp_free(&sr);
}

/* Fetches, checks and verifies one candidate URL for the whole database into a
 * staged file. signver: the version whose .sign is fetched alongside (the
 * name asked for carries it), or 0. Returns 0 and fills *out, or a cf_fc code (0 never with
 * out->have unset). last_attempt: this is the last attempt on the last mirror;
 * last: and the last of the three names too, so any failure here ends the
 * database. A transport failure ends the chain of names at once, so it is an
 * ERROR on the last attempt whichever name it hit. */
static int full_candidate(dbctx *c, const char *mirror, const char *file, const char *url,
                          const char *const *headers, int last_attempt, int last, int quiet404,
                          uint32_t signver, stagedfile *out)
{
    cf_updater *u = c->u;
    char path[4096], pname[160];
    snprintf(pname, sizeof pname, "%s.part%u", file, ++c->parts);
    if (stage_path(u, path, pname) != 0)
        return CF_FC_EDBDIRACCESS;
    cf_err ce = {0};
    dl d = {.fd = cf_stage_create(path, &ce)};
    if (d.fd < 0) {
        say(u, CF_MSG_ERROR, "%s", ce.msg);
        return CF_FC_EDBDIRACCESS;
    }
    int is_cvd = strstr(file, ".cvd") != NULL;
    int with_sign = is_cvd && sign_wanted(u);
    cf_err e = {0};
    if (!with_sign && cf_dbscan_new(u->o.verify, is_cvd, 0, &d.scan, &e) != CF_OK) {
        cf_stage_close(d.fd);
        cf_stage_discard(path);
        say(u, CF_MSG_ERROR, "%s", e.msg);
        return CF_FC_EMEM;
    }
    cf_sink sink = {dl_sink, &d};
    char surl[URL_MAX], signame[160];
    cf_http_req reqs[2] = {
        {.url = url,
         .headers = headers,
         .if_modified_since = c->have_local ? (time_t)c->lhdr.stime : 0,
         .sink = &sink},
        {.url = surl, .max_bytes = CF_MAX_SIGN_BYTES},
    };
    size_t nreq = with_sign && signver != 0 &&
                          cf_signfile_name_cvd(c->db, signver, signame, sizeof signame) == 0 &&
                          url_join(surl, mirror, signame) == 0
                      ? 2
                      : 1;
    cf_http_resp resps[2];
    fetch(u, reqs, resps, nreq, (unsigned)nreq);
    cf_http_resp *r = &resps[0];

    int rc = 0;
    cf_http_outcome k = d.scan_failed || d.io_failed ? CF_HTTP_OK : cf_remote_kind(r);
    if (d.io_failed) {
        say(u, CF_MSG_ERROR, "Can't write %s: %s", path, d.io_err.msg);
        rc = CF_FC_EDBDIRACCESS;
    } else if (k == CF_HTTP_OK && d.n == 0) {
        say(u, warn_or_error(last), "Can't download %s from %s: the server sent an empty file", file, url);
        rc = CF_FC_EEMPTYFILE;
    } else if (k == CF_HTTP_NOT_MODIFIED) {
        say(u, CF_MSG_INFO, "%s is up-to-date.", file);
        rc = CF_FC_UPTODATE;
    } else if ((k == CF_HTTP_NOT_FOUND || k == CF_HTTP_FORBIDDEN) && quiet404) {
        /* A mirror that refuses names it does not have (object stores without
         * list rights) answers 403 here; freshclam never asks for this name,
         * so it must not cost a 24 h cool-down when another name delivers. */
        say(u, CF_MSG_DEBUG, "%s is not published at %s", file, url);
        rc = k == CF_HTTP_FORBIDDEN ? R_REFUSED : CF_FC_EFAILEDGET;
    } else if (k == CF_HTTP_FORBIDDEN) {
        rc = cf_remote_forbidden(&u->net, file, url, r);
    } else if (k == CF_HTTP_RATE_LIMITED) {
        rc = cf_remote_rate_limited(&u->net, r);
    } else if (k != CF_HTTP_OK) {
        cf_msglevel lvl = warn_or_error(k == CF_HTTP_TRANSPORT ? last_attempt : last);
        cf_remote_say_failure(&u->net, lvl, r, "downloadFile", url, mirror);
        say(u, lvl, "Can't download %s from %s", file, url);
        rc = k == CF_HTTP_TRANSPORT ? CF_FC_ECONNECTION : CF_FC_EFAILEDGET;
    }

    cf_cvdhdr h;
    if (rc == 0 && (d.n < CF_HDR_SIZE || cf_cvdhdr_parse(d.head, CF_HDR_SIZE, &h, &e) != CF_OK)) {
        /* freshclam verifies before it reads the header, so a file that is no
         * CVD at all fails as "Verification: ..." there; scripts match that. */
        say(u, warn_or_error(last), "Verification: Can't read CVD header of new %s database from %s: %s",
            file, url, d.n < CF_HDR_SIZE ? "shorter than 512 bytes" : e.msg);
        rc = CF_FC_EBADCVD;
    }
    cf_buf sign = CF_BUF_INIT;
    if (rc == 0) {
        cf_code vrc;
        if (d.scan_failed) {
            e = d.scan_err;
            vrc = e.code;
        } else if (d.scan != NULL) {
            vrc = cf_dbscan_finish(d.scan, &h, &e);
        } else {
            if (nreq == 2 && h.version == signver && cf_remote_kind(&resps[1]) == CF_HTTP_OK &&
                resps[1].body.n > 0)
                cf_buf_set(&sign, resps[1].body.p, resps[1].body.n);
            else
                fetch_sign_after(c, mirror, h.version, &sign);
            if (sign.n == 0)
                say(u, CF_MSG_DEBUG, "No external .sign digital signature file for %s-%u", c->db, h.version);
            vrc = cf_verify_file(u->o.verify, d.fd, is_cvd, sign.n ? sign.p : NULL, sign.n, &h, NULL, &e);
        }
        if (vrc != CF_OK) {
            say(u, warn_or_error(last), "Verification: %s (%s)", e.msg, url);
            rc = CF_FC_EBADCVD;
        }
    }
    if (rc == 0 && cf_stage_sync(d.fd, path, &e) != CF_OK) {
        say(u, CF_MSG_ERROR, "%s", e.msg);
        rc = CF_FC_EDBDIRACCESS;
    }
    cf_dbscan_free(d.scan);
    cf_stage_close(d.fd);
    for (size_t i = 0; i < nreq; i++)
        cf_http_resp_free(&resps[i]);
    if (rc != 0 || k != CF_HTTP_OK) {
        cf_stage_discard(path);
        cf_buf_free(&sign);
        return rc;
    }
    staged_free(out);
    snprintf(out->path, sizeof out->path, "%s", path);
    out->sign = sign;
    out->hdr = h;
    snprintf(out->url, sizeof out->url, "%s", url);
    out->have = 1;
    return 0;
}

/* Whole database under cache-proof names (ARCHITECTURE "The one idea"):
 * NAME-V.cvd, NAME.cvd?version=V, NAME.cvd with no-cache headers. Keeps the
 * first verified copy of version >= V, else the newest verified one seen. */
static int full_fetch(dbctx *c, const char *mirror, const char *ext, uint32_t V, int last, stagedfile *best,
                      int *bad)
{
    *bad = 0;
    cf_updater *u = c->u;
    char file[128], url[URL_MAX], tmp[256];
    snprintf(file, sizeof file, "%s.%s", c->db, ext);
    int rc = CF_FC_EFAILEDGET;
    time_t now = now_of(u);
    char refused[URL_MAX] = "";

    for (int step = 0; step < CF_REMOTE_FULL_STEPS; step++) {
        const char *const *headers = NULL;
        uint32_t signver = 0;
        if (cf_remote_full_name(c->db, ext, V, step, tmp, sizeof tmp, &headers) != 0)
            continue;
        if (step == 0) {
            if (cf_state_mirror_lacks(u->o.dbdir, CF_MIRROR_LACKS_VERSIONED, mirror, now)) {
                say(u, CF_MSG_DEBUG, "%s does not publish %s-%u.cvd (remembered); not asking", mirror, c->db,
                    V);
                continue;
            }
            signver = V;
        }
        if (url_join(url, mirror, tmp) != 0)
            return CF_FC_EFAILEDGET;

        /* A mirror that does not publish versioned names answers 404 to the
         * first step: expected, so only remembered, not reported as a failure. */
        stagedfile cand = {0};
        int r =
            full_candidate(c, mirror, file, url, headers, last, last && step == 2, step == 0, signver, &cand);
        if (r == R_REFUSED) {
            snprintf(refused, sizeof refused, "%s", url);
            r = CF_FC_EFAILEDGET;
        }
        if (r == CF_FC_EFORBIDDEN || r == CF_FC_ERETRYLATER || r == CF_FC_UPTODATE ||
            r == CF_FC_EDBDIRACCESS) {
            staged_free(&cand);
            return r;
        }
        if (r == CF_FC_ECONNECTION) {
            staged_free(&cand);
            return best->have ? 0 : r;
        }
        if (step == 0) {
            /* A 403 is not remembered: it may be a block, to be seen again. */
            if (r == CF_FC_EFAILEDGET && !refused[0])
                mirror_note(u, CF_MIRROR_LACKS_VERSIONED, mirror, now);
            else if (r == 0)
                mirror_note(u, CF_MIRROR_LACKS_VERSIONED, mirror, 0);
        }
        if (r == CF_FC_EBADCVD)
            *bad = 1;
        if (r != 0) {
            /* Report the most telling failure: a bad or empty file says more
             * than the 404s of the other names. */
            if (rc == CF_FC_EFAILEDGET || r == CF_FC_EBADCVD ||
                (r == CF_FC_EEMPTYFILE && rc != CF_FC_EBADCVD))
                rc = r;
            continue;
        }
        if (cand.hdr.version >= V) {
            staged_free(best);
            *best = cand;
            return 0;
        }
        say(u, CF_MSG_WARN, "%s served version %u, advertised %u", url, cand.hdr.version, V);
        if (!best->have || cand.hdr.version > best->hdr.version) {
            staged_free(best);
            *best = cand;
        } else {
            staged_free(&cand);
        }
    }
    if (best->have)
        return 0;
    /* Only 404s elsewhere: the 403 was the mirror's real answer. */
    if (refused[0] && rc == CF_FC_EFAILEDGET)
        return cf_remote_forbidden(&u->net, file, refused, NULL);
    return rc;
}

/* The identity of a whole file (Hardening: the database asked for): a validly
 * signed database of another name never replaces this one. */
static int full_identity(dbctx *c, const stagedfile *f, const char *ext)
{
    char want[CF_MAX_NAME + 8];
    snprintf(want, sizeof want, "%s.info", c->db);
    cf_err e = {0};
    int fd = cf_stage_open(f->path, &e);
    if (fd < 0)
        return -1;
    char got[CF_MAX_NAME + 1] = "";
    cf_code rc = cf_dbfile_info_name(fd, got, sizeof got, &e);
    cf_stage_close(fd);
    if (rc == CF_OK && strcmp(got, want) == 0)
        return 0;
    say(c->u, CF_MSG_ERROR, "Verification: %s.%s from %s is not the %s database: its manifest is %s", c->db,
        ext, f->url, c->db, rc == CF_OK ? got : e.msg);
    return -1;
}

/* Full download route (§4.4). from_fallback: reached because the incremental
 * update failed, so an older-than-advertised copy is settled for. */
static int full_route(dbctx *c, const char *mirror, const char *ext, uint32_t V, int last, int from_fallback)
{
    cf_updater *u = c->u;
    stagedfile f = {0};
    int bad = 0;
    int rc = full_fetch(c, mirror, ext, V, last, &f, &bad);
    if (rc == CF_FC_UPTODATE) {
        say(u, CF_MSG_WARN,
            "Expected newer version of %s database but the server's copy is not newer than our local file "
            "(version %u).",
            c->db, c->have_local ? c->lhdr.version : 0);
        staged_free(&f);
        return CF_FC_SUCCESS;
    }
    if (rc != 0) {
        staged_free(&f);
        return rc;
    }
    if (full_identity(c, &f, ext) != 0) {
        staged_free(&f);
        return CF_FC_EBADCVD;
    }
    uint32_t H = f.hdr.version;
    if (c->have_local && H <= c->lhdr.version && bad) {
        /* A newer copy failed verification and only an old one verified:
         * that is a damaged mirror, not one that is merely behind. */
        say(u, CF_MSG_ERROR, "%s version %u could not be had intact from %s; keeping %s (version %u)", c->db,
            V, mirror, c->lfile, c->lhdr.version);
        staged_free(&f);
        return CF_FC_EBADCVD;
    }
    if (c->have_local && H <= c->lhdr.version) {
        /* Stricter than freshclam: an older or equal copy never replaces ours. */
        say(u, CF_MSG_WARN,
            "Expected newer version of %s database but the server's copy is not newer than our local file "
            "(version %u).",
            c->db, c->lhdr.version);
        say(u, CF_MSG_WARN, "%s served version %u, advertised %u; keeping %s (version %u)", f.url, H, V,
            c->lfile, c->lhdr.version);
        staged_free(&f);
        return R_NOTSYNC;
    }
    if (H < V)
        say(u, CF_MSG_DEBUG, "The %s.%s database downloaded from %s is older than the version advertised.",
            c->db, ext, mirror);
    /* The load test needs the database's own name. */
    char final[4096], name[128];
    snprintf(name, sizeof name, "%s.%s", c->db, ext);
    cf_err re = {0};
    if (stage_path(u, final, name) != 0 || cf_stage_rename(f.path, final, &re) != CF_OK) {
        say(u, CF_MSG_ERROR, "%s", re.msg[0] ? re.msg : "Can't name the staged database");
        staged_free(&f);
        return CF_FC_EDBDIRACCESS;
    }
    snprintf(f.path, sizeof f.path, "%s", final);
    rc = test_and_install(u, c->db, ext, f.path, &f.sign, &f.hdr);
    if (rc == 0 && u->cur != NULL) {
        /* Which of the cache-proof names delivered it. */
        const char *q = strrchr(f.url, '/');
        q = q ? q + 1 : f.url;
        if (strchr(q, '?'))
            snprintf(u->cur->how, sizeof u->cur->how, "NAME.%s?version=V", ext);
        else if (strchr(q, '-'))
            snprintf(u->cur->how, sizeof u->cur->how, "NAME-V.%s", ext);
        else
            snprintf(u->cur->how, sizeof u->cur->how, "NAME.%s", ext);
    }
    staged_free(&f);
    if (rc != 0)
        return rc;
    if (H < V) {
        if (from_fallback || !u->o.scripted) {
            say(u, CF_MSG_WARN,
                "Received an older %s CVD than was advertised. Incremental updates either failed or are "
                "disabled, so we'll have to settle for a slightly out-of-date database.",
                c->db);
            return CF_FC_SUCCESS;
        }
        say(u, CF_MSG_DEBUG,
            "Received an older %s CVD than was advertised. We'll keep it and try updating to the latest "
            "version "
            "with CDIFFs.",
            c->db);
        return R_RETRY_NOW;
    }
    return CF_FC_SUCCESS;
}

/* -------------------------------------------------------------------- cdiffs */

enum { P_NONE, P_EMPTY, P_DOWNLOAD, P_APPLY, P_END };

/* The patches of one chain, downloaded and verified, in order. */
typedef struct chain {
    cf_buf *scripts;
    char (*labels)[128];
    const char **labelp;
    size_t n;     /* verified scripts */
    size_t bytes; /* their total size, bounded by CF_CHAIN_MAX_BYTES */
} chain;

static void chain_free(chain *ch)
{
    for (size_t i = 0; i < ch->n; i++)
        cf_buf_free(&ch->scripts[i]);
    free(ch->scripts);
    free(ch->labels);
    free(ch->labelp);
    memset(ch, 0, sizeof *ch);
}

/* Downloads and verifies patches L+1..V in batches, strictly in order, stopping
 * at the first that cannot be had (as freshclam does). With c->open the end
 * is not known (the header was stale): batches start small and grow, and the
 * first missing patch ends the chain where the patches reach (P_END). Returns
 * P_NONE when all arrived, else why the chain stopped; ch->n patches are
 * usable either way. */
static int chain_fetch(dbctx *c, const char *mirror, uint32_t L, uint32_t V, int last, chain *ch)
{
    cf_updater *u = c->u;
    size_t n = V - L;
    int with_sign = sign_wanted(u);
    size_t per = with_sign ? 2 : 1;
    ch->scripts = calloc(n, sizeof *ch->scripts);
    ch->labels = calloc(n, sizeof *ch->labels);
    ch->labelp = calloc(n, sizeof *ch->labelp);
    cf_http_resp *resps = calloc(per * CF_PATCH_BATCH, sizeof *resps);
    if (!ch->scripts || !ch->labels || !ch->labelp || !resps) {
        free(resps);
        return P_APPLY;
    }
    int err = P_NONE;
    cf_err e = {0};
    size_t batch = c->open ? 4 : CF_PATCH_BATCH;
    size_t m = 0;
    for (size_t base = 0; base < n && err == P_NONE;
         base += m, batch = batch * 2 > CF_PATCH_BATCH ? CF_PATCH_BATCH : batch * 2) {
        m = n - base < batch ? n - base : batch;
        uint32_t vers[CF_PATCH_BATCH];
        for (size_t i = 0; i < m; i++)
            vers[i] = L + 1 + (uint32_t)(base + i);
        /* The first patch may have come with the version probe. */
        int have_first = base == 0 && c->disc.next_exists;
        unsigned before = u->net.requests;
        uint64_t bytes = u->net.bytes;
        if (cf_remote_patch_batch(&u->net, mirror, c->db, vers, m, with_sign, CF_PATCH_MAX_BYTES,
                                  u->o.concurrency, have_first, resps) != 0) {
            err = P_APPLY;
            break;
        }
        if (u->cur != NULL) {
            u->cur->requests += u->net.requests - before;
            u->cur->bytes += u->net.bytes - bytes;
        }
        if (have_first) {
            resps[0] = c->disc.next;
            cf_http_resp_init(&c->disc.next);
            c->disc.next_exists = 0;
        }
        for (size_t i = 0; i < m && err == P_NONE; i++) {
            uint32_t ver = vers[i];
            char *patch = ch->labels[ch->n];
            char url[URL_MAX];
            snprintf(patch, sizeof ch->labels[0], "%s-%u.cdiff", c->db, ver);
            url_join(url, mirror, patch);
            say(u, CF_MSG_PROGRESS, "Downloading database patch # %u...", ver);
            cf_http_resp *r = &resps[per * i];
            if (c->open && ch->n > 0 &&
                (cf_remote_kind(r) == CF_HTTP_NOT_FOUND ||
                 (cf_remote_kind(r) == CF_HTTP_OK && r->body.n == 0))) {
                /* Past the newest patch: the chain ends here. */
                say(u, CF_MSG_DEBUG, "%s: the patches reach version %u", c->db, ver - 1);
                err = P_END;
                break;
            }
            /* Each patch gets MaxAttempts tries, without delay (§4.5 step 3).
             * freshclam 1.4.6 treats a 403 or 429 on a patch like any failed
             * patch: no cool-down, and the fallback rules decide (observed). */
            for (unsigned tries = 1;; tries++) {
                cf_http_outcome k = cf_remote_kind(r);
                if (k == CF_HTTP_OK)
                    break;
                if ((k == CF_HTTP_NOT_FOUND || k == CF_HTTP_FORBIDDEN) && u->o.private_mirror) {
                    /* A private mirror need not carry cdiffs (the whole-file
                     * fallback): neither a warning nor worth a retry. */
                    say(u, CF_MSG_DEBUG, "%s does not carry %s", mirror, patch);
                    err = P_DOWNLOAD;
                    break;
                }
                cf_remote_say_failure(&u->net, CF_MSG_WARN, r, "downloadFile", url, mirror);
                /* An ERROR on the database's last attempt, as freshclam words it. */
                say(u, warn_or_error(last), "downloadPatchAndApply: Can't download %s from %s", patch, url);
                if (tries >= u->o.max_attempts || r->unreachable) {
                    err = P_DOWNLOAD;
                    break;
                }
                cf_http_resp_free(r);
                cf_http_req req = {.url = url, .max_bytes = CF_PATCH_MAX_BYTES};
                fetch(u, &req, r, 1, 1);
            }
            if (err != P_NONE)
                break;
            if (r->body.n == 0) {
                say(u, CF_MSG_INFO, "Empty script %s, need to download entire database", patch);
                err = P_EMPTY;
                break;
            }
            const uint8_t *sp = NULL;
            size_t sn = 0;
            if (with_sign && cf_remote_kind(&resps[per * i + 1]) == CF_HTTP_OK &&
                resps[per * i + 1].body.n > 0) {
                sp = resps[per * i + 1].body.p;
                sn = resps[per * i + 1].body.n;
            } else {
                say(u, CF_MSG_DEBUG, "No external .sign digital signature file for %s", patch);
            }
            cf_buf *script = &ch->scripts[ch->n];
            uint32_t got = 0;
            if (cf_verify_cdiff(u->o.verify, r->body.p, r->body.n, sp, sn, script, &got, NULL, &e) != CF_OK) {
                say(u, CF_MSG_ERROR, "downloadPatchAndApply: Can't apply '%s': %s", patch, e.msg);
                err = P_APPLY;
            } else if (got != ver) {
                say(u, CF_MSG_ERROR, "downloadPatchAndApply: Can't apply '%s': it is the patch to version %u",
                    patch, got);
                err = P_APPLY;
            } else if (script->n > CF_CHAIN_MAX_BYTES - ch->bytes) {
                /* Patches this large cost more than the whole database. */
                say(u, CF_MSG_INFO,
                    "%s: the patches up to version %u exceed %lu bytes; downloading the whole database",
                    c->db, ver, (unsigned long)CF_CHAIN_MAX_BYTES);
                err = P_EMPTY;
            } else {
                ch->bytes += script->n;
                ch->labelp[ch->n] = patch;
                ch->n++;
            }
            if (err != P_NONE)
                cf_buf_free(script);
        }
        for (size_t i = 0; i < per * m; i++)
            cf_http_resp_free(&resps[i]);
    }
    free(resps);
    return err;
}

/* The chain applied to the local database in one streaming pass into the
 * staged <tmpdir>/<db>.cld (dbpatch.h). Returns 0 and fills *h, or P_APPLY
 * (the patches do not make the signed result) or -1 (the local database is no
 * usable base), or a cf_fc code for a file-system failure. */
static int chain_apply(dbctx *c, chain *ch, const char *staged, cf_cvdhdr *h)
{
    cf_updater *u = c->u;
    cf_err e = {0};
    cf_patchplan *plan = NULL;
    if (cf_patchplan_new(ch->scripts, ch->labelp, ch->n, &plan, &e) != CF_OK) {
        say(u, CF_MSG_ERROR, "downloadPatchAndApply: Can't apply %s: %s", ch->labelp[0], e.msg);
        return P_APPLY;
    }
    char local[4096];
    snprintf(local, sizeof local, "%s/%s", u->o.dbdir, c->lfile);
    int in = cf_stage_open(local, &e);
    if (in < 0) {
        say(u, CF_MSG_WARN, "Can't use %s as the base of an incremental update: %s", c->lfile, e.msg);
        cf_patchplan_free(plan);
        return -1;
    }
    int out = cf_stage_create(staged, &e);
    if (out < 0) {
        say(u, CF_MSG_ERROR, "%s", e.msg);
        cf_stage_close(in);
        cf_patchplan_free(plan);
        return CF_FC_EDBDIRACCESS;
    }
    uint32_t want = c->lhdr.version + (uint32_t)ch->n;
    cf_dbpatch_opts o = {.verify = u->o.verify,
                         .db = c->db,
                         .want_version = want,
                         .spooldir = u->o.tmpdir,
                         .base_trusted = recently_verified(u, c->lfile, in, c->lhdr.version)};
    cf_dbpatch_fault fault = CF_DBPATCH_NONE;
    cf_code rc = cf_dbpatch_run(&o, in, plan, out, h, &fault, &e);
    cf_stage_close(in);
    cf_patchplan_free(plan);
    int ret = 0;
    if (rc != CF_OK) {
        if (fault == CF_DBPATCH_BASE) {
            say(u, CF_MSG_WARN, "Can't use %s as the base of an incremental update: %s", c->lfile, e.msg);
            ret = -1;
        } else if (fault == CF_DBPATCH_IO) {
            say(u, CF_MSG_ERROR, "updatedb: Incremental update failed. Failed to build CLD. (%s: %s)", staged,
                e.msg);
            ret = CF_FC_EDBDIRACCESS;
        } else {
            say(u, CF_MSG_ERROR, "downloadPatchAndApply: the database patched to version %u fails: %s", want,
                e.msg);
            ret = P_APPLY;
        }
    }
    if (ret == 0 && u->o.compress_cld) {
        char gz[4100];
        snprintf(gz, sizeof gz, "%s.gz", staged);
        int zfd = cf_stage_create(gz, &e);
        if (zfd < 0 || cf_dbpatch_compress(out, zfd, &e) != CF_OK || cf_stage_sync(zfd, gz, &e) != CF_OK ||
            cf_stage_rename(gz, staged, &e) != CF_OK) {
            say(u, CF_MSG_ERROR, "updatedb: Incremental update failed. Failed to build CLD. (%s: %s)", gz,
                e.msg);
            cf_stage_discard(gz);
            ret = CF_FC_EDBDIRACCESS;
        }
        cf_stage_close(zfd);
    } else if (ret == 0 && cf_stage_sync(out, staged, &e) != CF_OK) {
        say(u, CF_MSG_ERROR, "%s", e.msg);
        ret = CF_FC_EDBDIRACCESS;
    }
    cf_stage_close(out);
    if (ret != 0)
        cf_stage_discard(staged);
    return ret;
}

/* §4.5. Returns a cf_fc code, or sets *fallback to ask for the full database. */
static int cdiff_route(dbctx *c, const char *mirror, uint32_t *Vp, int last, int *fallback)
{
    cf_updater *u = c->u;
    uint32_t V = *Vp;
    uint32_t L = c->lhdr.version;
    size_t n = V - L;
    *fallback = 0;
    if (n > CF_PATCH_WINDOW) {
        /* Mirrors keep only recent patches, and so many cost more than the
         * whole file: the full database, without asking for any of them. */
        say(u, CF_MSG_INFO,
            "%s is %zu versions behind, beyond the %u patches a mirror keeps; downloading the whole database",
            c->lfile, n, (unsigned)CF_PATCH_WINDOW);
        *fallback = 1;
        return 0;
    }

    if (!c->open)
        say(u, CF_MSG_PROGRESS, "Current database is %zu version%s behind.", n, n == 1 ? "" : "s");
    chain ch = {0};
    int err = chain_fetch(c, mirror, L, V, last, &ch);
    size_t applied = ch.n;
    if (c->open) {
        if (err == P_END || (err == P_NONE && applied == n)) {
            say(u, CF_MSG_WARN, "%s.cvd from %s is stale: says %u, patches reach %u", c->db, mirror, c->said,
                L + (uint32_t)applied);
            if (u->cur != NULL)
                u->cur->advertised = L + (uint32_t)applied;
            n = applied;
            err = P_NONE;
        } else if (applied == 0 && err == P_DOWNLOAD) {
            say(u, CF_MSG_WARN, "%s.cvd from %s says %u, but %s-%u.cdiff could not be had; keeping %s", c->db,
                mirror, c->said, c->db, L + 1, c->lfile);
            chain_free(&ch);
            return CF_FC_SUCCESS;
        } else {
            /* The patch that failed names a version the mirror has. */
            *Vp = V = L + (uint32_t)applied + (err == P_DOWNLOAD ? 0 : 1);
            n = V - L;
        }
    }

    if (err != P_NONE && u->o.private_mirror) {
        /* A private mirror need not carry cdiffs: quietly take the whole file. */
        say(u, CF_MSG_DEBUG,
            "Incremental update from %s stopped after %zu patches; downloading the whole database", mirror,
            applied);
        chain_free(&ch);
        *fallback = 1;
        return 0;
    }
    if (err == P_EMPTY) {
        say(u, CF_MSG_DEBUG,
            "Empty CDIFF found. Skip incremental updates for this version and download %s.cvd", c->db);
        chain_free(&ch);
        *fallback = 1;
        return 0;
    }
    if (err == P_APPLY || (err != P_NONE && applied == 0 && L + 1 < V)) {
        say(u, CF_MSG_WARN, "Incremental update failed, trying to download %s.cvd", c->db);
        chain_free(&ch);
        *fallback = 1;
        return 0;
    }
    if (err != P_NONE && applied == 0) {
        say(u, CF_MSG_INFO,
            "The database server doesn't have the latest patch for the %s database (version %u). The server "
            "will "
            "likely have updated if you check again in a few hours.",
            c->db, V);
        chain_free(&ch);
        return CF_FC_SUCCESS;
    }

    char staged[4096], name[128];
    snprintf(name, sizeof name, "%s.cld", c->db);
    if (stage_path(u, staged, name) != 0) {
        chain_free(&ch);
        return CF_FC_EDBDIRACCESS;
    }
    cf_cvdhdr h;
    int rc = chain_apply(c, &ch, staged, &h);
    chain_free(&ch);
    if (rc == -1 || rc == P_APPLY) {
        say(u, CF_MSG_WARN, "Incremental update failed, trying to download %s.cvd", c->db);
        if (c->open)
            *Vp = L + (uint32_t)applied;
        *fallback = 1;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (applied < n) {
        say(u, CF_MSG_INFO, "Downloaded %zu patches for %s, which is fewer than the %zu expected patches.",
            applied, c->db, n);
        say(u, CF_MSG_INFO, "We'll settle for this partial-update, at least for now.");
    }
    rc = test_and_install(u, c->db, "cld", staged, NULL, &h);
    if (rc == 0 && u->cur != NULL)
        snprintf(u->cur->how, sizeof u->cur->how, "cdiffs");
    return rc;
}

/* §4.6 item 6: a current local CVD without its detached signature gets it from
 * the mirror when the engine reads .sign files (ClamAV 1.5 checks CVDs against
 * it; 1.4 does not, and neither asks for it). Unlike freshclam, which keeps
 * whatever arrives, a .sign that fails against our certificates is not kept:
 * ClamAV would then refuse the CVD with no fallback. */
static void fetch_missing_sign(dbctx *c, const char *mirror)
{
    cf_updater *u = c->u;
    if (strcmp(c->lfile + strlen(c->lfile) - 4, ".cvd") != 0 || !sign_wanted(u))
        return;
    char name[128], path[4096], url[URL_MAX];
    if (cf_signfile_name_cvd(c->db, c->lhdr.version, name, sizeof name) != 0)
        return;
    (void)path;
    if (cf_stage_exists(u->o.dbdir, name) || url_join(url, mirror, name) != 0)
        return;
    cf_http_req req = {.url = url, .max_bytes = CF_MAX_SIGN_BYTES};
    cf_http_resp r;
    fetch(u, &req, &r, 1, 1);
    if (cf_remote_kind(&r) != CF_HTTP_OK || r.body.n == 0) {
        say(u, CF_MSG_DEBUG, "No external .sign digital signature file for %s-%u", c->db, c->lhdr.version);
        cf_http_resp_free(&r);
        return;
    }
    cf_err e = {0};
    const cf_verifyctx *v = u->o.verify;
    if (v != NULL && v->certs != NULL) {
        char local[4096];
        snprintf(local, sizeof local, "%s/%s", u->o.dbdir, c->lfile);
        int invalid = 0;
        /* Judge it as the engines that read .sign files would, even when the
         * local engine is older and ignores them. */
        unsigned fl = v->flevel < CF_SIGN_MIN_FLEVEL ? CF_SIGN_MIN_FLEVEL : v->flevel;
        int fd = cf_stage_open(local, &e);
        if (fd >= 0) {
            invalid = cf_signfile_verify_fd(v->certs, r.body.p, r.body.n, fd, fl, v->now, NULL, 0, &e) ==
                      CF_SIGN_INVALID;
            cf_stage_close(fd);
        }
        if (invalid) {
            say(u, CF_MSG_WARN, "Not keeping %s from %s: %s", name, url, e.msg);
            cf_http_resp_free(&r);
            return;
        }
    }
    if (cf_install_file(u->o.dbdir, name, r.body.p, r.body.n, &e) == CF_OK)
        say(u, CF_MSG_INFO, "Downloaded missing CVD .sign file %s", name);
    else
        say(u, CF_MSG_WARN, "Can't store %s: %s", name, e.msg);
    cf_http_resp_free(&r);
}

/* -------------------------------------------------- the local database's health */

/* A damaged local database at the advertised version must not be reported
 * up to date forever: the file is trusted when it is the very file verified in
 * full within a day, else it is verified in full now (one streaming pass).
 * Returns 1 when the local database may stand. */
static int local_intact(dbctx *c)
{
    cf_updater *u = c->u;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", u->o.dbdir, c->lfile);
    cf_err e = {0};
    int fd = cf_stage_open(path, &e);
    if (fd < 0) {
        say(u, CF_MSG_WARN, "%s; downloading %s again", e.msg, c->lfile);
        return 0;
    }
    int ok = recently_verified(u, c->lfile, fd, c->lhdr.version);
    if (!ok) {
        int is_cvd = strcmp(c->lfile + strlen(c->lfile) - 4, ".cvd") == 0;
        cf_buf sign = CF_BUF_INIT;
        char sname[128], sp[4096];
        if (is_cvd && sign_wanted(u) &&
            cf_signfile_name_cvd(c->db, c->lhdr.version, sname, sizeof sname) == 0) {
            cf_err se = {0};
            snprintf(sp, sizeof sp, "%s/%s", u->o.dbdir, sname);
            if (cf_file_read_db(sp, CF_MAX_SIGN_BYTES, &sign, &se) != CF_OK)
                sign.n = 0;
        }
        cf_cvdhdr h;
        if (cf_verify_file(u->o.verify, fd, is_cvd, sign.n ? sign.p : NULL, sign.n, &h, NULL, &e) == CF_OK &&
            h.version == c->lhdr.version) {
            ok = 1;
            say(u, CF_MSG_DEBUG, "%s verified in full", c->lfile);
        } else {
            say(u, CF_MSG_WARN, "%s is damaged (%s); downloading it again", c->lfile,
                e.code != CF_OK ? e.msg : "its header and manifest disagree");
        }
        record_verified(u, c->lfile, fd, c->lhdr.version, ok);
        cf_buf_free(&sign);
    }
    cf_stage_close(fd);
    return ok;
}

/* Up to date, unless the local file turns out damaged: then R_DAMAGED, and
 * the database is fetched as if there were none. */
static int up_to_date(dbctx *c, const char *mirror)
{
    if (!local_intact(c)) {
        c->have_local = 0;
        return R_DAMAGED;
    }
    say_uptodate(c);
    fetch_missing_sign(c, mirror);
    if (c->u->cur != NULL)
        snprintf(c->u->cur->how, sizeof c->u->cur->how, "up-to-date");
    return CF_FC_SUCCESS;
}

/* ------------------------------------------------------------- one attempt */

/* What the header probe said, weighed against the pointer and the next patch
 * (remote.h, "Version discovery"). hrc is the probe's code, *V its version.
 * Returns -1 to go on with *V (c->open set when only the patches know how far
 * to go), or a cf_fc code / R_DAMAGED to end the attempt with. */
static int weigh(dbctx *c, const char *mirror, const char *ext, int hrc, uint32_t *V)
{
    cf_updater *u = c->u;
    uint32_t L = c->have_local ? c->lhdr.version : 0;
    if (hrc == CF_FC_EFORBIDDEN || hrc == CF_FC_ERETRYLATER)
        return hrc;
    int answered = hrc == 0 || hrc == CF_FC_UPTODATE;
    /* A probe that failed fails the attempt as freshclam's does (§5.2),
     * unless the pointer answered in its place. */
    if (!answered && !c->disc.pointer)
        return hrc;
    uint32_t said = hrc == 0 ? *V : hrc == CF_FC_UPTODATE ? L : 0;
    uint32_t best = said;
    if (c->disc.pointer > best) {
        if (answered)
            say(u, CF_MSG_WARN, "%s.%s from %s is stale: says %u, %s%s says %u", c->db, ext, mirror, said,
                c->db, CF_REMOTE_POINTER_EXT, c->disc.pointer);
        best = c->disc.pointer;
    }
    if (best <= L && c->disc.next_exists && c->have_local) {
        /* The header is older than a patch the mirror has: follow the
         * patches (bounded by the window) to see how far they go. */
        c->open = 1;
        c->said = said;
        *V = L + CF_PATCH_WINDOW;
        return -1;
    }
    if (!c->disc.pointer && c->disc.pointer_missing && !c->disc.next_exists && strcmp(ext, "cvd") == 0 &&
        answered && (said <= L || !c->have_local)) {
        /* Neither a pointer nor the next patch: versioned full files are the
         * last immutable witness. */
        int code = 0;
        uint32_t from = said > L ? said : L;
        uint32_t found = cf_remote_newest_versioned(&u->net, mirror, c->db, "cvd", from, &code);
        if (code)
            return code;
        if (found > from) {
            say(u, CF_MSG_WARN, "%s.cvd from %s is stale: says %u, %s-%u.cvd is published", c->db, mirror,
                said, c->db, found);
            best = found;
        }
    }
    if (!answered && best == 0)
        return hrc;
    *V = best;
    if (u->cur != NULL)
        u->cur->advertised = best > L ? best : L;
    if (best <= L && c->have_local) {
        int rc = up_to_date(c, mirror);
        return rc;
    }
    return -1;
}

static int try_once(dbctx *c, const char *mirror, int last)
{
    cf_updater *u = c->u;
    c->have_local = cf_updater_local(u->o.dbdir, c->db, &c->lhdr, c->lfile);
    c->open = 0;
    uint32_t V = c->dnsver;
    const char *ext = "cvd";
    int rc;
    if (u->o.private_mirror && V == 0) {
        char f[128];
        /* A private mirror that answered 404 for NAME.cld serves CVDs: not
         * asked again for a day, so its 404s do not reach it per client run. */
        int no_cld = cf_state_mirror_lacks(u->o.dbdir, CF_MIRROR_LACKS_CLD, mirror, now_of(u));
        snprintf(f, sizeof f, "%s.cld", c->db);
        rc = no_cld ? CF_FC_EFAILEDGET : probe(c, mirror, f, last, 1, 1, &V);
        if (rc == 0 || rc == CF_FC_UPTODATE) {
            ext = "cld";
        } else if (rc == CF_FC_EFORBIDDEN || rc == CF_FC_ERETRYLATER) {
            return rc;
        } else {
            if (!no_cld && c->last_status == 404)
                mirror_note(u, CF_MIRROR_LACKS_CLD, mirror, now_of(u));
            snprintf(f, sizeof f, "%s.cvd", c->db);
            rc = probe(c, mirror, f, last, 0, no_cld, &V);
        }
        rc = weigh(c, mirror, ext, rc, &V);
        if (rc != -1 && rc != R_DAMAGED)
            return rc;
    } else if (V == 0) {
        char f[128];
        snprintf(f, sizeof f, "%s.cvd", c->db);
        rc = probe(c, mirror, f, last, 0, 1, &V);
        rc = weigh(c, mirror, "cvd", rc, &V);
        if (rc != -1 && rc != R_DAMAGED)
            return rc;
    }
    if (u->cur != NULL)
        u->cur->advertised = V;
    if (!c->open && c->have_local && c->lhdr.version >= V && (rc = up_to_date(c, mirror)) != R_DAMAGED)
        return rc;
    if (V < c->lhdr.version)
        V = c->lhdr.version; /* a damaged copy is fetched again at its own version */
    if (c->open)
        say(u, CF_MSG_INFO, "%s database available for update (local version: %u, remote version: unknown)",
            c->db, c->lhdr.version);
    else if (c->have_local)
        say(u, CF_MSG_INFO, "%s database available for update (local version: %u, remote version: %u)", c->db,
            c->lhdr.version, V);
    else
        say(u, CF_MSG_INFO, "%s database available for download (remote version: %u)", c->db, V);

    int fallback = 0;
    if (c->have_local && u->o.scripted) {
        rc = cdiff_route(c, mirror, &V, last, &fallback);
        if (!fallback)
            return rc;
    }
    return full_route(c, mirror, ext, V, last, fallback);
}

static int updater_db(cf_updater *u, const char *db, uint32_t remote_version);

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cf_updater_db(cf_updater *u, const char *db, uint32_t remote_version)
{
    cf_dbreport *r = u->nreports < CF_UPDATER_MAX_REPORTS ? &u->reports[u->nreports++] : NULL;
    cf_cvdhdr h;
    char file[64];
    if (r != NULL) {
        memset(r, 0, sizeof *r);
        snprintf(r->db, sizeof r->db, "%s", db);
        r->advertised = remote_version;
        if (cf_updater_local(u->o.dbdir, db, &h, file))
            r->before = h.version;
    }
    u->cur = r;
    double t0 = mono_seconds();
    int rc = updater_db(u, db, remote_version);
    sync_flags(u);
    u->cur = NULL;
    if (r != NULL) {
        r->seconds = mono_seconds() - t0;
        r->outcome = rc;
        if (cf_updater_local(u->o.dbdir, db, &h, file))
            r->after = h.version;
    }
    return rc;
}

int cf_updater_probe(cf_updater *u, const char *db, uint32_t *version)
{
    dbctx c = {.u = u, .db = db, .readonly = 1};
    c.have_local = cf_updater_local(u->o.dbdir, db, &c.lhdr, c.lfile);
    *version = 0;
    char f[128];
    snprintf(f, sizeof f, "%s.cvd", db);
    int rc = CF_FC_EFAILEDGET;
    uint32_t L = c.have_local ? c.lhdr.version : 0;
    for (size_t m = 0; m < u->o.nmirrors; m++) {
        uint32_t v = 0;
        rc = probe(&c, u->o.mirrors[m], f, 1, 1, 1, &v);
        if (rc == CF_FC_SUCCESS || rc == CF_FC_UPTODATE || c.disc.pointer) {
            v = rc == CF_FC_SUCCESS ? v : L;
            if (c.disc.pointer > v)
                v = c.disc.pointer;
            if (v <= L && c.disc.next_exists)
                v = L + 1; /* a stale header: at least the next patch is out */
            *version = v;
            rc = CF_FC_SUCCESS;
            break;
        }
        if (rc == CF_FC_EFORBIDDEN || rc == CF_FC_ERETRYLATER)
            break; /* the CDN said stop: no other mirror either */
    }
    cf_discovery_free(&c.disc);
    sync_flags(u);
    return rc;
}

static int db_attempts(cf_updater *u, dbctx *c);

static int updater_db(cf_updater *u, const char *db, uint32_t remote_version)
{
    dbctx c = {.u = u, .db = db, .dnsver = remote_version};
    int rc = db_attempts(u, &c);
    cf_discovery_free(&c.disc);
    return rc;
}

static int db_attempts(cf_updater *u, dbctx *c)
{
    const char *db = c->db;
    int rc = CF_FC_EFAILEDGET;
    if (u->o.max_attempts == 0 || u->o.nmirrors == 0)
        return CF_FC_SUCCESS;
    for (size_t m = 0; m < u->o.nmirrors; m++) {
        const char *mirror = u->o.mirrors[m];
        if (m < CF_UPDATER_MAX_MIRRORS && u->unreachable[m]) {
            say(u, CF_MSG_INFO, "Not trying %s again in this run: it could not be reached", mirror);
            rc = CF_FC_ECONNECTION;
            continue;
        }
        unsigned unreachable = 0;
        for (unsigned attempt = 1; attempt <= u->o.max_attempts; attempt++) {
            int last = attempt == u->o.max_attempts;
            u->net.saw_unreachable = 0;
            rc = try_once(c, mirror, last);
            /* No network or no such host is not transient like a timeout:
             * one retry, then on to the next mirror (Hardening: offline). */
            if (rc != CF_FC_SUCCESS && u->net.saw_unreachable && ++unreachable >= 2) {
                say(u, CF_MSG_WARN,
                    "%s cannot be reached (%s): the host cannot be resolved or the network is "
                    "unreachable; not retrying it in this run",
                    mirror, u->net.unreachable_why);
                if (m < CF_UPDATER_MAX_MIRRORS)
                    u->unreachable[m] = 1;
                break;
            }
            switch (rc) {
            case CF_FC_SUCCESS:
            case CF_FC_UPTODATE:
                return CF_FC_SUCCESS;
            case CF_FC_EFORBIDDEN:
                return rc;
            case CF_FC_ERETRYLATER:
                return u->o.strict_exit_codes ? CF_FC_ERETRYLATER : CF_FC_SUCCESS;
            case R_RETRY_NOW:
                say(u, CF_MSG_INFO,
                    "Received an older %s CVD than was advertised. We'll retry so the incremental update "
                    "will "
                    "ensure we're up-to-date.",
                    db);
                continue;
            case R_NOTSYNC:
                continue;
            case CF_FC_ECONNECTION:
            case CF_FC_EFAILEDGET:
            case CF_FC_EBADCVD:
                if (!last) {
                    say(u, CF_MSG_INFO, "Trying again in %u secs...", u->o.retry_delay);
                    if (u->env.sleep && u->o.retry_delay)
                        u->env.sleep(u->env.arg, u->o.retry_delay);
                } else {
                    say(u, CF_MSG_INFO, "Giving up on %s...", mirror);
                }
                continue;
            default:
                say(u, CF_MSG_ERROR, "Unexpected error when attempting to update %s: %s", db, cf_fc_str(rc));
                return rc;
            }
        }
    }
    if (rc == R_RETRY_NOW || rc == R_NOTSYNC) {
        /* freshclam counts a mirror that never catches up as success (§4.4). */
        say(u, CF_MSG_WARN, "The mirrors did not serve the advertised version of %s; keeping what we have.",
            db);
        return u->o.strict_exit_codes ? CF_FC_EMIRRORNOTSYNC : CF_FC_SUCCESS;
    }
    say(u, CF_MSG_ERROR, "Update failed for database: %s", db);
    return rc;
}

/* ------------------------------------------------------------- custom URLs */

static unsigned custom_sigs(const char *name, const cf_buf *b)
{
    size_t nl = strlen(name);
    if (nl > 4 && (strcmp(name + nl - 4, ".cvd") == 0 || strcmp(name + nl - 4, ".cld") == 0 ||
                   strcmp(name + nl - 4, ".cud") == 0)) {
        cf_cvdhdr h;
        cf_err e = {0};
        if (b->n >= CF_HDR_SIZE && cf_cvdhdr_parse(b->p, CF_HDR_SIZE, &h, &e) == CF_OK)
            return h.sigs;
        return 0;
    }
    if (nl > 4 && strcmp(name + nl - 4, ".cbc") == 0)
        return 1;
    unsigned count = 0;
    size_t i = 0;
    while (i < b->n) {
        size_t j = i;
        while (j < b->n && b->p[j] != '\n')
            j++;
        if (j > i && b->p[i] != '#' && !(j == i + 1 && b->p[i] == '\r'))
            count++;
        i = j + 1;
    }
    return count;
}

static int custom_once(cf_updater *u, const char *url, const char *name, int last, cf_buf *out, int *uptodate)
{
    char local[4096];
    snprintf(local, sizeof local, "%s/%s", u->o.dbdir, name);
    struct stat lst;
    int have_local = stat(local, &lst) == 0;
    *uptodate = 0;
    if (strncmp(url, "file://", 7) == 0) {
        const char *src = url + 7;
        struct stat sst;
        if (stat(src, &sst) != 0) {
            say(u, CF_MSG_INFO, "DatabaseCustomURL: file %s missing", src);
            return CF_FC_EFAILEDUPDATE;
        }
        if (have_local && lst.st_mtime > sst.st_mtime) {
            *uptodate = 1;
            return 0;
        }
        cf_err e = {0};
        if (cf_file_read(src, CF_MAX_DB_BYTES, out, &e) != CF_OK) {
            say(u, CF_MSG_ERROR, "DatabaseCustomURL: Can't read %s: %s", src, e.msg);
            return CF_FC_EFAILEDUPDATE;
        }
        say(u, CF_MSG_INFO, "Downloading %s [100%%]", name);
        return 0;
    }
    cf_http_req req = {.url = url, .if_modified_since = have_local ? lst.st_mtime : 0};
    cf_http_resp r;
    fetch(u, &req, &r, 1, 1);
    int rc = 0;
    switch (cf_remote_kind(&r)) {
    case CF_HTTP_OK:
        cf_buf_set(out, r.body.p, r.body.n);
        say(u, CF_MSG_INFO, "Downloading %s [100%%]", name);
        if (r.body.n == 0) {
            say(u, CF_MSG_ERROR, "%s: the server sent an empty file", url);
            rc = CF_FC_EEMPTYFILE;
        }
        break;
    case CF_HTTP_NOT_MODIFIED:
        *uptodate = 1;
        break;
    case CF_HTTP_FORBIDDEN:
        rc = cf_remote_forbidden(&u->net, name, url, &r);
        break;
    case CF_HTTP_RATE_LIMITED:
        rc = cf_remote_rate_limited(&u->net, &r);
        break;
    default:
        cf_remote_say_failure(&u->net, warn_or_error(last), &r, "downloadFile", url, url);
        say(u, warn_or_error(last), "Can't download %s from %s", name, url);
        rc = cf_remote_kind(&r) == CF_HTTP_TRANSPORT ? CF_FC_ECONNECTION : CF_FC_EFAILEDGET;
        break;
    }
    cf_http_resp_free(&r);
    return rc;
}

int cf_updater_custom(cf_updater *u, const char *url)
{
    const char *slash = strrchr(url, '/');
    const char *name = slash ? slash + 1 : url;
    if (strlen(name) < 4 || !cf_name_ok(name)) {
        say(u, CF_MSG_INFO, "DatabaseCustomURL: Incorrect URL");
        return CF_FC_EFAILEDUPDATE;
    }
    cf_buf bytes = CF_BUF_INIT;
    int rc = CF_FC_EFAILEDGET, uptodate = 0;
    unsigned attempts = u->o.max_attempts ? u->o.max_attempts : 1;
    for (unsigned attempt = 1; attempt <= attempts; attempt++) {
        int last = attempt == attempts;
        bytes.n = 0;
        rc = custom_once(u, url, name, last, &bytes, &uptodate);
        if (rc == CF_FC_ECONNECTION || rc == CF_FC_EFAILEDGET) {
            if (!last) {
                say(u, CF_MSG_INFO, "Trying again in %u secs...", u->o.retry_delay);
                if (u->env.sleep && u->o.retry_delay)
                    u->env.sleep(u->env.arg, u->o.retry_delay);
                continue;
            }
            say(u, CF_MSG_INFO, "Update failed for custom database URL: %s", url);
            cf_buf_free(&bytes);
            return rc;
        }
        break;
    }
    if (rc == CF_FC_ERETRYLATER) {
        cf_buf_free(&bytes);
        return u->o.strict_exit_codes ? rc : CF_FC_SUCCESS;
    }
    if (rc != 0) {
        if (rc != CF_FC_EFORBIDDEN) {
            say(u, CF_MSG_INFO, "Unexpected error when attempting to update from custom database URL: %s",
                url);
            say(u, CF_MSG_WARN, "fc_download_url_databases: fc_download_url_database failed: %s (%d)",
                cf_fc_str(rc), rc);
        }
        cf_buf_free(&bytes);
        return rc;
    }
    if (uptodate) {
        say(u, CF_MSG_INFO, "%s is up-to-date (version: custom database)", name);
        cf_buf_free(&bytes);
        return CF_FC_SUCCESS;
    }

    /* Staged under its own name for the load test, then renamed into place. */
    char staged[4096];
    cf_err e = {0};
    if (stage_path(u, staged, name) != 0 || (cf_stage_discard(staged), 0) ||
        cf_file_write_new(staged, bytes.p ? (const void *)bytes.p : "", bytes.n, 0644, &e) != CF_OK) {
        say(u, CF_MSG_ERROR, "Can't write %s for testing: %s", staged, e.msg);
        cf_buf_free(&bytes);
        return CF_FC_EDBDIRACCESS;
    }
    unsigned sigs = custom_sigs(name, &bytes);
    cf_buf_free(&bytes);
    rc = load_test(u, staged);
    if (rc == CF_FC_ETESTFAIL) {
        say(u, CF_MSG_INFO, "Unexpected error when attempting to update from custom database URL: %s", url);
        say(u, CF_MSG_WARN, "fc_download_url_databases: fc_download_url_database failed: %s (%d)",
            cf_fc_str(CF_FC_ETESTFAIL), CF_FC_ETESTFAIL);
    }
    if (rc != 0) {
        cf_stage_discard(staged);
        return rc;
    }
    if (cf_install_file_commit(u->o.dbdir, name, staged, &e) != CF_OK) {
        say(u, CF_MSG_ERROR, "Can't install %s: %s", name, e.msg);
        cf_stage_discard(staged);
        return CF_FC_EDBDIRACCESS;
    }
    u->replaced++;
    say(u, CF_MSG_INFO, "%s updated (version: custom database, sigs: %u)", name, sigs);
    return CF_FC_SUCCESS;
}

/* ---------------------------------------------------------------------- run */

int cf_updater_run(cf_updater *u, const char *const *dbs, const uint32_t *versions, size_t ndbs,
                   const char *const *urls, size_t nurls)
{
    int soft = 0; /* 12/18 under StrictExitCodes: reported at the end, not fatal */
    if (u->o.max_attempts == 0)
        return CF_FC_SUCCESS;
    if (ndbs && !cf_updater_cooldown_active(u)) {
        for (size_t i = 0; i < ndbs; i++) {
            int rc = cf_updater_db(u, dbs[i], versions ? versions[i] : 0);
            if (rc == CF_FC_EMIRRORNOTSYNC || rc == CF_FC_ERETRYLATER) {
                soft = rc;
                continue;
            }
            if (rc != 0)
                return rc;
        }
    }
    for (size_t i = 0; i < nurls; i++) {
        int rc = cf_updater_custom(u, urls[i]);
        if (rc == CF_FC_ERETRYLATER) {
            soft = rc;
            continue;
        }
        if (rc != 0)
            return rc;
    }
    return soft;
}
