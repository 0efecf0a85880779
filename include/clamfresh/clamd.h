/* NotifyClamd / --daemon-notify: tell a running clamd to reload its databases
 * (freshclam-behavior.md §6). Reads clamd.conf to find the socket, sends RELOAD,
 * interprets the answer. */
#ifndef CLAMFRESH_CLAMD_H
#define CLAMFRESH_CLAMD_H

#include <stddef.h>

#include "clamfresh/err.h"
#include "clamfresh/notes.h"

/* Default bound for connect and for waiting on clamd's answer. freshclam waits
 * for the answer forever; a clamd that accepts and never answers must not hang
 * an update (§6.3). */
#define CF_CLAMD_TIMEOUT_S 10

#define CF_CLAMD_MAX_TCPADDR 16

/* What clamd.conf says about reaching clamd (only the directives §6.2 needs). */
typedef struct cf_clamd_conf {
    char local_socket[108]; /* "" when LocalSocket is absent (sun_path size) */
    char tcp_port[16];      /* "" when TCPSocket is absent */
    size_t n_tcpaddr;       /* TCPAddr lines, in file order */
    char tcpaddr[CF_CLAMD_MAX_TCPADDR][256];
    int reload_enabled; /* EnableReloadCommand; 1 when absent */
} cf_clamd_conf;

/* Parses clamd.conf text (pure; clamd's syntax and option table, strict like
 * clamd: an unknown option, a missing or malformed value is an error naming the
 * line). `name` is used in messages only. */
cf_code cf_clamd_conf_parse(const char *text, size_t len, const char *name, cf_clamd_conf *conf, cf_err *e);

typedef enum cf_clamd_status {
    CF_CLAMD_NOTIFIED,        /* answer contained RELOADING, or no answer at all (§6.3) */
    CF_CLAMD_BAD_CONFIG,      /* clamd.conf missing or unreadable */
    CF_CLAMD_NO_SOCKET,       /* neither LocalSocket nor TCPSocket */
    CF_CLAMD_RELOAD_DISABLED, /* EnableReloadCommand no (a 1.5 directive, honoured whatever
                                 the clamd version): nothing sent */
    CF_CLAMD_CONNECT_FAILED,  /* no socket could be connected (or name resolution failed) */
    CF_CLAMD_SEND_FAILED,
    CF_CLAMD_TIMEOUT,     /* connected, sent, nothing came back within the timeout: WARN
                             "Clamd was NOT notified: No answer from clamd within <n>
                             seconds" (freshclam would wait forever here) */
    CF_CLAMD_UNAVAILABLE, /* COMMAND UNAVAILABLE */
    CF_CLAMD_UNKNOWN_ANSWER,
} cf_clamd_status;

typedef struct cf_clamd_result {
    cf_clamd_status status;
    char answer[21]; /* clamd's answer: at most 20 bytes, up to its first NUL, without the
                        trailing newline, control bytes shown as '?'; "" when none */
    cf_notes notes;  /* §6.2/§6.3 message texts, in order, for the caller to log */
} cf_clamd_result;

/* Sends `RELOAD\0` to the clamd that clamd_conf_path describes and reads one
 * answer, waiting at most timeout_s seconds (<= 0 means CF_CLAMD_TIMEOUT_S) for
 * each connect and for the answer. res is always filled; the caller logs every
 * note in res->notes at its level. Returns CF_OK when clamd was notified, else
 * an error code with e holding the last message. The outcome must never change
 * the exit code (§6.1). */
cf_code cf_clamd_notify(const char *clamd_conf_path, int timeout_s, cf_clamd_result *res, cf_err *e);

#endif
