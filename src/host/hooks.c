/* OnUpdateExecute / OnErrorExecute / OnOutdatedExecute (freshclam-behavior.md §7).
 * Commands run as `/bin/sh -c CMD` in a child we fork ourselves rather than via
 * system(): system() ignores SIGINT/SIGQUIT in the caller while it waits, so a
 * Ctrl-C during a slow hook would not stop clamfresh, and it cannot be made
 * asynchronous for the daemon. */
#include "clamfresh/hooks.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOOK_CMD_MAX 4096 /* a config line is at most 1024 bytes; %v adds little */

const char *cf_hook_name(cf_hook_type type)
{
    switch (type) {
    case CF_HOOK_UPDATE:
        return "OnUpdateExecute";
    case CF_HOOK_ERROR:
        return "OnErrorExecute";
    case CF_HOOK_OUTDATED:
        return "OnOutdatedExecute";
    }
    return "On?Execute";
}

int cf_hook_exit_code(const char *cmd, int *n)
{
    if (cmd == NULL || strncmp(cmd, "EXIT_", 5) != 0)
        return 0;
    /* scanf's %d: optional white space, optional sign, at least one digit; the
     * rest of the text is ignored. */
    const char *p = cmd + 5;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return 0;
    long long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v < (long long)INT_MAX + 1)
            v = v * 10 + (*p - '0');
    }
    if (neg)
        v = -v;
    if (v > INT_MAX)
        v = INT_MAX;
    if (v < INT_MIN)
        v = INT_MIN;
    if (n != NULL)
        *n = (int)v;
    return 1;
}

static int version_ok(const char *v)
{
    if (v == NULL || *v == '\0')
        return 0;
    for (; *v != '\0'; v++) {
        if (!(*v == '.' || (*v >= '0' && *v <= '9')))
            return 0;
    }
    return 1;
}

cf_code cf_hook_command(cf_hook_type type, const char *cmd, const char *version, char **out, cf_err *e)
{
    *out = NULL;
    if (cmd == NULL)
        return cf_err_set(e, CF_EINVAL, "%s: no command", cf_hook_name(type));
    size_t n = strlen(cmd);
    if (n > HOOK_CMD_MAX)
        return cf_err_set(e, CF_ETOOBIG, "%s: command longer than %d bytes", cf_hook_name(type),
                          HOOK_CMD_MAX);
    if (type != CF_HOOK_OUTDATED) {
        /* %v stays literal in the other two hooks (§7). */
        *out = strdup(cmd);
        return *out != NULL ? CF_OK : cf_err_set(e, CF_ENOMEM, "out of memory");
    }
    /* The version comes from a DNS record; only digits and dots may reach a shell. */
    if (!version_ok(version) || strlen(version) > 64)
        return cf_err_set(e, CF_EINVAL,
                          "executeIfNewVersion: OnOutdatedExecute: Incorrect version number string");
    /* Upstream substitutes an empty string here (a pointer bug, §7); the
     * documented behaviour, the version number, is what we do. */
    const char *at = strstr(cmd, "%v");
    size_t vn = at != NULL ? strlen(version) : 0;
    char *s = malloc(n + vn + 1);
    if (s == NULL)
        return cf_err_set(e, CF_ENOMEM, "out of memory");
    if (at == NULL) {
        memcpy(s, cmd, n + 1);
    } else {
        size_t head = (size_t)(at - cmd);
        memcpy(s, cmd, head);
        memcpy(s + head, version, vn);
        memcpy(s + head + vn, at + 2, n - head - 2 + 1);
    }
    *out = s;
    return CF_OK;
}

/* cf_hook_command, with its error also recorded as a note for the log. */
static cf_code command_or_note(cf_hook_type type, const char *cmd, const char *version, char **line,
                               cf_notes *notes, cf_err *e)
{
    cf_err le;
    cf_err_clear(&le);
    cf_code rc = cf_hook_command(type, cmd, version, line, &le);
    if (rc != CF_OK) {
        cf_notes_add(notes, CF_NOTE_ERROR, "%s", le.msg);
        cf_err_set(e, rc, "%s", le.msg);
    }
    return rc;
}

/* Forks a child that execs /bin/sh -c cmd; returns its PID or -1 with errno. */
static pid_t spawn_shell(const char *cmd)
{
    /* Output buffered by us must not be written twice (once by the child). */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The hook gets a normal signal environment even if the daemon ignores SIGPIPE
     * or blocks signals around its loop. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

cf_code cf_hook_run(cf_hook_type type, const char *cmd, const char *version, int *exit_status,
                    cf_notes *notes, cf_err *e)
{
    const char *name = cf_hook_name(type);
    if (exit_status != NULL)
        *exit_status = -1;
    char *line = NULL;
    cf_code rc = command_or_note(type, cmd, version, &line, notes, e);
    if (rc != CF_OK)
        return rc;
    int n;
    if (cf_hook_exit_code(line, &n)) {
        cf_notes_add(notes, CF_NOTE_DEBUG, "%s: EXIT_%d", name, n);
        free(line);
        if (exit_status != NULL)
            *exit_status = n;
        return CF_OK;
    }
    pid_t pid = spawn_shell(line);
    if (pid < 0) {
        int err = errno;
        cf_notes_add(notes, CF_NOTE_INFO, "%s: system(%s) failed", name, line);
        rc = cf_err_set(e, CF_EIO, "%s: cannot start /bin/sh: %s", name, strerror(err));
        free(line);
        return rc;
    }
    free(line);
    /* The command's own status is ignored, as freshclam does (§7). */
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return CF_OK;
}

void cf_hook_pool_init(cf_hook_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
}

size_t cf_hook_pool_reap(cf_hook_pool *pool)
{
    size_t reaped = 0;
    for (size_t i = 0; i < CF_HOOK_MAX_CHILDREN; i++) {
        if (pool->pid[i] <= 0)
            continue;
        int status;
        pid_t r = waitpid(pool->pid[i], &status, WNOHANG);
        /* ECHILD: someone else reaped it (a SIGCHLD handler); the slot is free. */
        if (r == pool->pid[i] || (r < 0 && errno == ECHILD)) {
            pool->pid[i] = 0;
            pool->active--;
            reaped++;
        }
    }
    return reaped;
}

cf_code cf_hook_pool_spawn(cf_hook_pool *pool, cf_hook_type type, const char *cmd, const char *version,
                           cf_notes *notes, cf_err *e)
{
    const char *name = cf_hook_name(type);
    cf_hook_pool_reap(pool);
    if (pool->active >= CF_HOOK_MAX_CHILDREN) {
        cf_notes_add(notes, CF_NOTE_WARN, "%s: already %zu processes active.", name, pool->active);
        return cf_err_set(e, CF_EUNSUPP, "%s: already %zu processes active.", name, pool->active);
    }
    char *line = NULL;
    cf_code rc = command_or_note(type, cmd, version, &line, notes, e);
    if (rc != CF_OK)
        return rc;
    /* EXIT_<n> is an ordinary command here: a daemon does not exit because of a hook. */
    pid_t pid = spawn_shell(line);
    free(line);
    if (pid < 0) {
        int err = errno;
        cf_notes_add(notes, CF_NOTE_WARN, "%s::fork() failed, %s.", name, strerror(err));
        return cf_err_set(e, CF_EIO, "%s::fork() failed, %s.", name, strerror(err));
    }
    for (size_t i = 0; i < CF_HOOK_MAX_CHILDREN; i++) {
        if (pool->pid[i] == 0) {
            pool->pid[i] = pid;
            pool->active++;
            break;
        }
    }
    return CF_OK;
}

size_t cf_hook_pool_drain(cf_hook_pool *pool, int timeout_ms)
{
    struct timespec step = {0, 10 * 1000000L};
    for (int waited = 0;; waited += 10) {
        cf_hook_pool_reap(pool);
        if (pool->active == 0 || waited >= timeout_ms)
            return pool->active;
        nanosleep(&step, NULL);
    }
}
