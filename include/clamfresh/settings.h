/* freshclam's command line and freshclam.conf merged into one settings struct
 * (freshclam-behavior.md §1, §3, §4.1). The struct is filled in three steps:
 *
 *   cf_settings_init(&s);                       built-in defaults
 *   cf_cli_parse(argc, argv, &s, &r);           command line (wins: first setting sticks)
 *   cf_config_load(&s, NULL, &e);               freshclam.conf (only fills what is unset)
 *   cf_settings_finish(&s, &e);                 derived values: mirrors, databases, proxy, ...
 *
 * and is read-only afterwards. Every failure comes back as a cf_err whose message holds
 * the complete lines freshclam prints ("ERROR: ...", possibly several, '\n'-separated,
 * no trailing newline); cf_settings_print_err() writes them and cf_settings_exit_code()
 * gives freshclam's exit status for them. */
#ifndef CLAMFRESH_SETTINGS_H
#define CLAMFRESH_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clamfresh/engine.h"
#include "clamfresh/err.h"
#include "clamfresh/image.h"

/* Debian's compile-time paths (§1.2). */
#define CF_DEFAULT_CONFIG_FILE "/etc/clamav/freshclam.conf"
#define CF_DEFAULT_CLAMD_CONF "/etc/clamav/clamd.conf"
#define CF_DEFAULT_DATADIR "/var/lib/clamav"
#define CF_DEFAULT_CERTS_DIR "/etc/clamav/certs"
#define CF_DEFAULT_OWNER "clamav"
#define CF_DEFAULT_DNS_INFO "current.cvd.clamav.net"
#define CF_DEFAULT_MIRROR "database.clamav.net"
/* Engine version reported when libclamav is not available. */
#define CF_FALLBACK_ENGINE_VERSION CF_ENGINE_FALLBACK_VERSION
/* f-level assumed when EngineFlevel is 0 and libclamav is not available. */
#define CF_FALLBACK_FLEVEL 230

/* Every option and directive. The names in the comments are the command-line /
 * config spellings; "ours" marks clamfresh additions that freshclam does not have. */
typedef enum cf_opt_id {
    CF_OPT_HELP,                /* -h --help */
    CF_OPT_VERSION,             /* -V --version */
    CF_OPT_VERBOSE,             /* -v --verbose */
    CF_OPT_DEBUG,               /* --debug ; Debug */
    CF_OPT_QUIET,               /* --quiet */
    CF_OPT_NO_WARNINGS,         /* --no-warnings */
    CF_OPT_STDOUT,              /* --stdout */
    CF_OPT_SHOW_PROGRESS,       /* --show-progress */
    CF_OPT_CONFIG_FILE,         /* --config-file */
    CF_OPT_LOG_FILE,            /* -l --log ; UpdateLogFile */
    CF_OPT_DAEMON,              /* -d --daemon */
    CF_OPT_PID_FILE,            /* -p --pid ; PidFile */
    CF_OPT_FOREGROUND,          /* -F --foreground ; Foreground */
    CF_OPT_DATABASE_OWNER,      /* -u --user ; DatabaseOwner */
    CF_OPT_NO_DNS,              /* --no-dns */
    CF_OPT_CHECKS,              /* -c --checks ; Checks */
    CF_OPT_DATABASE_DIRECTORY,  /* --datadir ; DatabaseDirectory */
    CF_OPT_NOTIFY_CLAMD,        /* --daemon-notify[=FILE] ; NotifyClamd */
    CF_OPT_LOCAL_ADDRESS,       /* -a --local-address ; LocalIPAddress */
    CF_OPT_ON_UPDATE_EXECUTE,   /* --on-update-execute ; OnUpdateExecute */
    CF_OPT_ON_ERROR_EXECUTE,    /* --on-error-execute ; OnErrorExecute */
    CF_OPT_ON_OUTDATED_EXECUTE, /* --on-outdated-execute ; OnOutdatedExecute */
    CF_OPT_UPDATE_DB,           /* --update-db (multiple) */
    CF_OPT_LOG_ROTATE,          /* --log-rotate ; LogRotate */
    CF_OPT_CVD_CERTS_DIR,       /* --cvdcertsdir ; CVDCertsDirectory */
    CF_OPT_FIPS_LIMITS,         /* --fips-limits ; FIPSCryptoHashLimits */
    CF_OPT_LIST_MIRRORS,        /* --list-mirrors (deprecated, exits 0) */
    CF_OPT_LOG_FILE_MAX_SIZE,   /* LogFileMaxSize */
    CF_OPT_LOG_TIME,            /* LogTime */
    CF_OPT_LOG_SYSLOG,          /* LogSyslog */
    CF_OPT_LOG_FACILITY,        /* LogFacility */
    CF_OPT_DNS_DATABASE_INFO,   /* DNSDatabaseInfo */
    CF_OPT_DATABASE_MIRROR,     /* DatabaseMirror (multiple) */
    CF_OPT_PRIVATE_MIRROR,      /* PrivateMirror (multiple) */
    CF_OPT_MAX_ATTEMPTS,        /* MaxAttempts */
    CF_OPT_SCRIPTED_UPDATES,    /* ScriptedUpdates */
    CF_OPT_TEST_DATABASES,      /* TestDatabases */
    CF_OPT_COMPRESS_LOCAL_DB,   /* CompressLocalDatabase */
    CF_OPT_BYTECODE,            /* Bytecode */
    CF_OPT_EXTRA_DATABASE,      /* ExtraDatabase (multiple) */
    CF_OPT_EXCLUDE_DATABASE,    /* ExcludeDatabase (multiple) */
    CF_OPT_CUSTOM_URL,          /* DatabaseCustomURL (multiple) */
    CF_OPT_CONNECT_TIMEOUT,     /* ConnectTimeout */
    CF_OPT_RECEIVE_TIMEOUT,     /* ReceiveTimeout */
    CF_OPT_PROXY_SERVER,        /* HTTPProxyServer */
    CF_OPT_PROXY_PORT,          /* HTTPProxyPort */
    CF_OPT_PROXY_USERNAME,      /* HTTPProxyUsername */
    CF_OPT_PROXY_PASSWORD,      /* HTTPProxyPassword */
    CF_OPT_USER_AGENT,          /* HTTPUserAgent */
    /* ours */
    CF_OPT_CVD_PUBLIC_KEY,       /* CVDPublicKey */
    CF_OPT_INFO_PUBLIC_KEY,      /* InfoPublicKey */
    CF_OPT_CDIFF_PUBLIC_KEY,     /* CdiffPublicKey */
    CF_OPT_TRUST_KEY,            /* --trust-key (all three roles) */
    CF_OPT_STALL_TIMEOUT,        /* StallTimeout */
    CF_OPT_LOCK_TIMEOUT,         /* LockTimeout ; --lock-timeout */
    CF_OPT_CONCURRENT_DOWNLOADS, /* ConcurrentDownloads */
    CF_OPT_STRICT_EXIT_CODES,    /* StrictExitCodes ; --strict-exit-codes */
    CF_OPT_MIRROR_DIRECTORY,     /* MirrorDirectory ; --mirror */
    CF_OPT_ENGINE_FLEVEL,        /* EngineFlevel */
    CF_OPT_MIRROR_KEEP_PATCHES,  /* MirrorKeepPatches */
    CF_OPT_LOG_VERBOSE,          /* LogVerbose (same effect as -v; either turns it on) */
    CF_OPT_JSON,                 /* --json[=FILE] */
    CF_OPT_CHECK_ONLY,           /* --check-only */
    CF_OPT_METRICS_FILE,         /* --metrics=FILE ; MetricsFile */
    CF_OPT_WARN_BEHIND,          /* --warn-behind=N */
    CF_OPT_CRIT_BEHIND,          /* --crit-behind=N */
    CF_OPT__COUNT
} cf_opt_id;

/* An ordered list of owned strings. */
typedef struct cf_strlist {
    char **v;
    size_t n;
} cf_strlist;

typedef struct cf_settings {
    /* ---- terminal and program mode (command line only) ---- */
    bool help, version, list_mirrors;
    bool quiet, no_warnings, to_stdout, show_progress;
    bool daemon, no_dns;
    char *config_file;    /* CF_DEFAULT_CONFIG_FILE unless --config-file */
    bool config_explicit; /* --config-file was given */
    bool config_missing;  /* default config absent: built-in defaults in use (ours) */
    cf_strlist update_db; /* --update-db, command-line order */

    /* ---- logging (§3.2, §8) ---- */
    bool verbose;               /* -v or LogVerbose */
    bool debug;                 /* --debug or Debug */
    char *log_file;             /* UpdateLogFile / --log; NULL = none */
    uint64_t log_file_max_size; /* bytes; UINT64_MAX = unlimited (LogFileMaxSize 0) */
    bool log_time, log_syslog, log_rotate;
    char *log_facility; /* "LOG_LOCAL6"; validated by cf_log_init */

    /* ---- daemon ---- */
    char *pid_file;
    bool foreground;
    long checks; /* 12 */

    /* ---- databases and mirrors ---- */
    char *database_directory;     /* CF_DEFAULT_DATADIR */
    char *database_owner;         /* "clamav" */
    char *dns_database_info;      /* CF_DEFAULT_DNS_INFO */
    cf_strlist database_mirror;   /* as configured */
    cf_strlist private_mirror;    /* as configured */
    long max_attempts;            /* 3 */
    bool scripted_updates;        /* yes (as configured; see scripted_effective) */
    bool test_databases;          /* yes */
    bool compress_local_database; /* no */
    bool bytecode;                /* yes */
    cf_strlist extra_database, exclude_database, custom_url;
    char *cvd_certs_dir_opt; /* --cvdcertsdir / CVDCertsDirectory as given */
    bool fips_limits;

    /* ---- clamd and hooks ---- */
    char *notify_clamd; /* path of clamd.conf; NULL = don't notify */
    char *on_update_execute, *on_error_execute, *on_outdated_execute;

    /* ---- network ---- */
    char *local_address;
    long connect_timeout; /* 30 s */
    long receive_timeout; /* 60 s, 0 = never */
    char *proxy_server;   /* as configured */
    long proxy_port;      /* as configured; 0 = unset */
    char *proxy_username, *proxy_password;
    char *user_agent;

    /* ---- clamfresh additions (not in freshclam) ---- */
    char *cvd_public_key;      /* PEM replacing the built-in CVD signing key */
    char *info_public_key;     /* ... the .info manifest key */
    char *cdiff_public_key;    /* ... the cdiff key */
    long stall_timeout;        /* 120 s, >= 1: no progress that long aborts a transfer */
    long lock_timeout;         /* 60 s to wait for the database-directory lock, 0 = don't */
    long concurrent_downloads; /* 4, 1..16 parallel cdiff downloads */
    bool strict_exit_codes;    /* no: freshclam's codes; yes: 12/18 for not-synced/429 */
    char *mirror_directory;    /* mirror mode target; NULL = normal update */
    long engine_flevel;        /* 0 = ask libclamav (else CF_FALLBACK_FLEVEL) */
    long mirror_keep_patches;  /* mirror mode: cdiffs kept per database (1..100000, default 120) */
    char *json_file;           /* --json: "-" = stdout (human output then on stderr); NULL = none */
    bool check_only;           /* --check-only: report, change nothing */
    char *metrics_file;        /* Prometheus textfile; NULL = none */
    long warn_behind;          /* --check-only WARNING at this many versions behind (2) */
    long crit_behind;          /* --check-only CRITICAL at this many versions behind (5) */

    /* ---- which options were set explicitly (command line or config) ---- */
    unsigned char set[CF_OPT__COUNT];
    unsigned char set_by_cli[CF_OPT__COUNT];

    /* ---- derived by cf_settings_finish ---- */
    cf_strlist mirrors;        /* normalised URLs, in order (PrivateMirror if any, else DatabaseMirror) */
    bool private_mode;         /* PrivateMirror in use */
    bool dns_enabled;          /* !no_dns, and with PrivateMirror only when DNSDatabaseInfo is set */
    bool scripted_effective;   /* scripted_updates && !private_mode */
    cf_strlist databases;      /* official databases to update, in order (§4.1) */
    bool use_custom_urls;      /* process DatabaseCustomURL entries */
    bool prune;                /* normal run (no --update-db): prune unwanted files */
    char *proxy_host;          /* HTTPProxyServer minus a leading http://; NULL = none */
    long proxy_port_effective; /* HTTPProxyPort, else webcache/tcp, else 8080; 0 without proxy */
    char *cvd_certs_dir;       /* option/config, else $CVD_CERTS_DIR, else CF_DEFAULT_CERTS_DIR */
} cf_settings;

/* What the command line asks the program to do once it has been parsed. */
typedef enum cf_cli_action {
    CF_CLI_RUN = 0,      /* go on: load config, finish, update */
    CF_CLI_HELP,         /* print cf_cli_help() and exit 0 (before reading the config) */
    CF_CLI_VERSION,      /* after the config: print the version line, exit 0 */
    CF_CLI_LIST_MIRRORS, /* after the config: print the deprecation warning, exit 0 */
    CF_CLI_ERROR,        /* messages already printed to stderr; exit with exit_code (2) */
} cf_cli_action;

typedef struct cf_cli_result {
    cf_cli_action action;
    int exit_code; /* meaningful for CF_CLI_ERROR */
} cf_cli_result;

/* Defaults of §1.2/§3.2 and our additions; every string is owned. */
void cf_settings_init(cf_settings *s);
void cf_settings_free(cf_settings *s);

/* Parses argv (argv[0] = program name). Error texts of §1.1 go to stderr here,
 * deprecated-option warnings too. Returns CF_OK or CF_EFORMAT (r->action says what). */
cf_code cf_cli_parse(int argc, char **argv, cf_settings *s, cf_cli_result *r);

/* Usage text (banner, options, environment, our additions); static storage. The engine
 * version is printed in the banner. */
void cf_cli_help(FILE *out, const char *engine_version);

/* Reads freshclam.conf from path, or s->config_file when path is NULL, and fills every
 * option that is still unset (§3.1). Deprecated-option warnings are printed to stderr.
 * When the config path was not given explicitly and the default file does not exist,
 * built-in defaults with DatabaseMirror database.clamav.net are used and one INFO note is
 * printed (clamfresh addition). Errors: CF_EIO / CF_EFORMAT (exit 2). */
cf_code cf_config_load(cf_settings *s, const char *path, cf_err *e);

/* Parses a configuration held in memory (same rules; name is used in messages). */
cf_code cf_config_parse(cf_settings *s, const char *text, size_t n, const char *name, cf_err *e);

/* Computes the derived fields (mirrors, databases, proxy, certs dir) and validates.
 * Errors: CF_EINVAL = configuration error (exit 9), CF_ENOTFOUND = no database
 * selected (exit 16), CF_EFORMAT / CF_EIO = initialisation error (exit 2).
 * Warnings (e.g. unknown ExtraDatabase) are printed to stderr. */
cf_code cf_settings_finish(cf_settings *s, cf_err *e);

/* freshclam's exit status for an error returned by the functions above:
 * CF_OK 0, CF_EINVAL 9, CF_ENOTFOUND 16, CF_ENOMEM 15, anything else 2. */
int cf_settings_exit_code(cf_code code);

/* Writes e->msg line by line: "ERROR: "/"WARNING: " lines to stderr, other lines
 * (freshclam's INFO) to stdout. */
void cf_settings_print_err(const cf_err *e);

/* The --version line of §1.3 without a trailing newline:
 * "ClamAV <engine>" or, with the daily header, "ClamAV <engine>/<version>/<ctime>"
 * where ctime is the local-time ctime() of daily->stime without its newline. */
cf_code cf_version_format(const char *engine_version, const cf_cvdhdr *daily, char *out, size_t outsz);

/* Whether option id was set on the command line or in the config file. */
bool cf_settings_is_set(const cf_settings *s, cf_opt_id id);

/* Looks up an option by config name (case-sensitive, also accepts the long option name)
 * or returns -1. */
int cf_opt_lookup(const char *name);

/* List helpers. */
cf_code cf_strlist_add(cf_strlist *l, const char *s);
void cf_strlist_free(cf_strlist *l);
bool cf_strlist_contains(const cf_strlist *l, const char *s);

#endif
