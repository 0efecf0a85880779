/* freshclam's command line (freshclam-behavior.md §1.1, §1.2, §1.4). GNU-style
 * parsing is done here rather than with getopt_long so that the diagnostics are
 * byte-for-byte those of freshclam 1.4.6. */
#include <stdio.h>
#include <string.h>

#include "clamfresh/settings.h"
#include "settings_table.h"

static void print_optname(const cf_optdef *d)
{
    if (d->shrt)
        fprintf(stderr, "--%s (-%c)", d->lng, d->shrt);
    else
        fprintf(stderr, "--%s", d->lng);
}

static int takes_optional_arg(const cf_optdef *d)
{
    return d->type == CF_T_BOOL || (d->flags & CF_F_ARG_OPTIONAL);
}

/* Long-option lookup with GNU's unambiguous-prefix rule. *ambiguous is set when
 * several options start with the given text and none is an exact match.
 * CF_F_EXACT options take no part in abbreviations: adding --check-only must not
 * make freshclam's --check (= --checks) ambiguous. */
static const cf_optdef *find_long(const char *name, size_t len, int *ambiguous)
{
    const cf_optdef *hit = NULL;
    int hits = 0;
    *ambiguous = 0;
    for (size_t i = 0; i < cf_noptdefs; i++) {
        const cf_optdef *d = &cf_optdefs[i];
        if (!d->lng || strncmp(d->lng, name, len) != 0)
            continue;
        if (strlen(d->lng) == len)
            return d;
        if (d->flags & CF_F_EXACT)
            continue;
        hit = d;
        hits++;
    }
    if (hits > 1) {
        *ambiguous = 1;
        return NULL;
    }
    return hit;
}

/* Checks and stores one option; prints freshclam's message and returns 0 on error. */
static int take(cf_settings *s, const cf_optdef *d, const char *arg)
{
    if (d->flags & CF_F_DEPRECATED) {
        fprintf(stderr, "WARNING: Ignoring deprecated option ");
        print_optname(d);
        fprintf(stderr, "\n");
        return 1;
    }
    if (d->type == CF_T_BOOL || d->type == CF_T_NUMBER || d->type == CF_T_SIZE) {
        if (!arg && d->type == CF_T_BOOL)
            arg = "yes";
        if (!arg || !cf_optdef_value_ok(d, arg)) {
            fprintf(stderr, "ERROR: Incorrect argument format for option ");
            print_optname(d);
            fprintf(stderr, "\n");
            return 0;
        }
    } else {
        if (!arg)
            arg = d->dflt ? d->dflt : "";
        if (!*arg) {
            fprintf(stderr, "ERROR: Option ");
            print_optname(d);
            fprintf(stderr, " requires a non-empty string argument\n");
            return 0;
        }
    }
    if (cf_optdef_apply(s, d, arg, 1) != CF_OK) {
        fprintf(stderr, "ERROR: Can't register argument for option --%s\n", d->lng);
        return 0;
    }
    if (d->id == CF_OPT_CONFIG_FILE)
        s->config_explicit = true;
    return 1;
}

static cf_code fail(cf_cli_result *r)
{
    fprintf(stderr, "ERROR: Can't parse command line options\n");
    fflush(stderr);
    r->action = CF_CLI_ERROR;
    r->exit_code = 2;
    return CF_EFORMAT;
}

static cf_code unknown(cf_cli_result *r)
{
    fprintf(stderr, "ERROR: Unknown option passed\n");
    return fail(r);
}

static cf_code incomplete(cf_cli_result *r)
{
    fprintf(stderr, "ERROR: Incomplete option passed (missing argument)\n");
    return fail(r);
}

cf_code cf_cli_parse(int argc, char **argv, cf_settings *s, cf_cli_result *r)
{
    const char *prog = (argc > 0 && argv[0]) ? argv[0] : "freshclam";
    r->action = CF_CLI_RUN;
    r->exit_code = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break; /* everything after it is a non-option argument */
        if (a[0] != '-' || a[1] == '\0')
            continue; /* non-option arguments are ignored (§1.1) */
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            int ambiguous;
            const cf_optdef *d = find_long(name, len, &ambiguous);
            if (!d) {
                if (ambiguous)
                    fprintf(stderr, "%s: option `%s' is ambiguous\n", prog, a);
                else
                    fprintf(stderr, "%s: unrecognized option `%s'\n", prog, a);
                return unknown(r);
            }
            const char *arg = eq ? eq + 1 : NULL;
            if (!arg && !takes_optional_arg(d)) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "%s: option `--%s' requires an argument\n", prog, d->lng);
                    return incomplete(r);
                }
                arg = argv[++i];
            }
            if (!take(s, d, arg))
                return fail(r);
            continue;
        }
        /* A cluster of short options: -vd, -lFILE, -l FILE. */
        for (const char *p = a + 1; *p; p++) {
            const cf_optdef *d = cf_optdef_by_short(*p);
            if (!d) {
                fprintf(stderr, "%s: illegal option -- %c\n", prog, *p);
                return unknown(r);
            }
            const char *arg = NULL;
            if (d->type != CF_T_BOOL) {
                if (p[1]) {
                    arg = p + 1;
                } else if (i + 1 < argc) {
                    arg = argv[++i];
                } else {
                    fprintf(stderr, "%s: option requires an argument -- %c\n", prog, *p);
                    return incomplete(r);
                }
            }
            if (!take(s, d, arg))
                return fail(r);
            if (arg)
                break;
        }
    }
    fflush(stderr);
    if (s->help)
        r->action = CF_CLI_HELP;
    else if (s->version)
        r->action = CF_CLI_VERSION;
    else if (s->list_mirrors)
        r->action = CF_CLI_LIST_MIRRORS;
    return CF_OK;
}

void cf_cli_help(FILE *out, const char *engine_version)
{
    if (!engine_version)
        engine_version = CF_FALLBACK_ENGINE_VERSION;
    fprintf(out, "\n");
    fprintf(out, "                      Clam AntiVirus: Database Updater %s\n", engine_version);
    fprintf(out, "           By The ClamAV Team: https://www.clamav.net/about.html#credits\n");
    fprintf(out, "           (C) 2024 Cisco Systems, Inc.\n");
    fprintf(out, "           clamfresh: a drop-in replacement for freshclam\n");
    fprintf(out, "\n");
    fprintf(out, "    freshclam [options]\n");
    fprintf(out, "\n");
    fprintf(out, "    --help               -h              Show this help\n");
    fprintf(out, "    --version            -V              Print version number and exit\n");
    fprintf(out, "    --verbose            -v              Be verbose\n");
    fprintf(out, "    --debug                              Enable debug messages\n");
    fprintf(out, "    --quiet                              Only output error messages\n");
    fprintf(out, "    --no-warnings                        Don't print and log warnings\n");
    fprintf(out, "    --stdout                             Write to stdout instead of stderr.\n");
    fprintf(out, "                                         Does not affect 'debug' messages.\n");
    fprintf(out, "    --show-progress                      Show download progress percentage\n");
    fprintf(out, "\n");
    fprintf(out, "    --config-file=FILE                   Read configuration from FILE.\n");
    fprintf(out, "    --log=FILE           -l FILE         Log into FILE\n");
    fprintf(out, "    --daemon             -d              Run in daemon mode\n");
    fprintf(out, "    --pid=FILE           -p FILE         Write the daemon's pid to FILE\n");
    fprintf(
        out,
        "    --foreground         -F              Don't fork into background (for use in daemon mode).\n");
    fprintf(out, "    --user=USER          -u USER         Run as USER\n");
    fprintf(out, "    --no-dns                             Force old non-DNS verification method\n");
    fprintf(out, "    --checks=#n          -c #n           Number of checks per day, 1 <= n <= 50\n");
    fprintf(out, "    --datadir=DIRECTORY                  Download new databases into DIRECTORY\n");
    fprintf(out, "                                         NOTE: DIRECTORY must already exist, be an "
                 "absolute path, and\n");
    fprintf(out, "                                         be writeable by freshclam and readable by "
                 "clamd/clamscan.\n");
    fprintf(out, "    --daemon-notify[=/path/clamd.conf]   Send RELOAD command to clamd\n");
    fprintf(out, "    --local-address=IP   -a IP           Bind to IP for HTTP downloads\n");
    fprintf(out, "    --on-update-execute=COMMAND          Execute COMMAND after successful update.\n");
    fprintf(out, "                                         Use EXIT_1 to return 1 after successful database "
                 "update.\n");
    fprintf(out, "    --on-error-execute=COMMAND           Execute COMMAND if errors occurred\n");
    fprintf(out, "    --on-outdated-execute=COMMAND        Execute COMMAND when software is outdated\n");
    fprintf(out, "    --update-db=DBNAME                   Only update database DBNAME\n");
    fprintf(out,
            "    --log-rotate[=yes|no]                Rotate the log file when it reaches LogFileMaxSize\n");
    fprintf(out, "    --cvdcertsdir=DIRECTORY              Certificates for detached .sign files\n");
    fprintf(out, "\n");
    fprintf(out, "  clamfresh additions (not in freshclam):\n");
    fprintf(out, "\n");
    fprintf(
        out,
        "    --trust-key=FILE                     Trust the PEM public key in FILE instead of ClamAV's\n");
    fprintf(out,
            "                                         built-in keys for CVD, .info and cdiff signatures\n");
    fprintf(
        out,
        "                                         (config: CVDPublicKey, InfoPublicKey, CdiffPublicKey)\n");
    fprintf(
        out,
        "    --lock-timeout=#n                    Wait up to n seconds for the database directory lock\n");
    fprintf(out,
            "                                         (0 = don't wait; config: LockTimeout, default 60)\n");
    fprintf(
        out,
        "    --strict-exit-codes[=yes|no]         Exit 12 (mirror not synchronised) or 18 (rate limited)\n");
    fprintf(out,
            "                                         when the advertised version could not be reached\n");
    fprintf(out, "                                         (config: StrictExitCodes, default no)\n");
    fprintf(out,
            "    --mirror=DIRECTORY                   Maintain a LAN mirror in DIRECTORY instead of a\n");
    fprintf(out, "                                         database directory (config: MirrorDirectory)\n");
    fprintf(
        out,
        "    --json[=FILE]                        Write a JSON report of the run to FILE; without FILE\n");
    fprintf(out, "                                         to stdout, and the messages go to stderr\n");
    fprintf(out,
            "    --check-only                         Report versions and cool-down, change nothing; exit\n");
    fprintf(out, "                                         0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN\n");
    fprintf(out, "    --warn-behind=#n                     --check-only: WARNING at n versions behind (2)\n");
    fprintf(out,
            "    --crit-behind=#n                     --check-only: CRITICAL at n versions behind (5)\n");
    fprintf(out, "    --metrics=FILE                       Write a Prometheus textfile after each run\n");
    fprintf(out, "                                         (config: MetricsFile)\n");
    fprintf(out, "\n");
    fprintf(out, "  clamfresh config directives: StallTimeout N (abort a transfer without progress for N\n");
    fprintf(out,
            "  seconds, default 120), ConcurrentDownloads N (parallel cdiff downloads, 1..16, default 8),\n");
    fprintf(out, "  EngineFlevel N (f-level when libclamav is unavailable; 0 = ask libclamav),\n");
    fprintf(out, "  MirrorKeepPatches N (mirror mode: cdiffs kept per database, default 120).\n");
    fprintf(out, "  Without a config file at the default path, built-in defaults are used\n");
    fprintf(out, "  (DatabaseMirror database.clamav.net).\n");
    fprintf(out, "\n");
    fprintf(out, "Environment Variables:\n");
    fprintf(out, "\n");
    fprintf(out, "  CURL_CA_BUNDLE                         May be set to the path of a file (bundle)\n");
    fprintf(out, "                                         containing one or more CA certificates.\n");
    fprintf(out, "                                         This will override the default openssl\n");
    fprintf(out, "                                         certificate path.\n");
    fprintf(out, "\n");
    fprintf(out, "  FRESHCLAM_CLIENT_CERT                  May be set to the path of a file (PEM)\n");
    fprintf(out, "                                         containing the client certificate.\n");
    fprintf(out, "                                         This may be used for client authentication\n");
    fprintf(out, "                                         to a private mirror.\n");
    fprintf(out, "  FRESHCLAM_CLIENT_KEY                   May be set to the path of a file (PEM)\n");
    fprintf(out, "                                         containing the client private key.\n");
    fprintf(out,
            "                                         This is required if FRESHCLAM_CLIENT_CERT is set.\n");
    fprintf(
        out,
        "  FRESHCLAM_CLIENT_KEY_PASSWD            May be set to a password for the client key PEM file.\n");
    fprintf(out, "                                         This is required if FRESHCLAM_CLIENT_KEY is\n");
    fprintf(out, "                                         set and the PEM file is password protected.\n");
    fprintf(out,
            "  CVD_CERTS_DIR                          Directory of the certificates used to verify .sign\n");
    fprintf(
        out,
        "                                         files (when --cvdcertsdir/CVDCertsDirectory is unset).\n");
    fprintf(out, "\n");
    fflush(out);
}
