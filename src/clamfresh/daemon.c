/* Daemon mode (freshclam-behavior.md §9.4): the single-shot cycle in a loop,
 * woken by SIGUSR1/SIGALRM, log reopened on SIGHUP, clean exit on SIGTERM and
 * SIGINT. Between cycles every signal is taken synchronously (sigtimedwait), so
 * no handler runs logging code. During a cycle SIGTERM/SIGINT end the process
 * at once: the database directory is crash-safe and the next run clears what
 * is left. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "clamfresh/cycle.h"
#include "clamfresh/engine.h"
#include "clamfresh/log.h"
#include "clamfresh/updater.h"

static char g_pidfile[4096];

static void on_term_in_cycle(int sig)
{
    (void)sig;
    if (g_pidfile[0])
        unlink(g_pidfile);
    _exit(0);
}

static int write_pidfile(const char *path)
{
    if (!path)
        return 0;
    mode_t old = umask(022);
    FILE *f = fopen(path, "w");
    umask(old);
    if (!f) {
        cf_log_error("Can't save PID in file %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    snprintf(g_pidfile, sizeof g_pidfile, "%s", path);
    return 0;
}

static void remove_pidfile(void)
{
    if (g_pidfile[0])
        unlink(g_pidfile);
}

/* Fork into the background; the parent leaves once the child is ready and
 * reports the child's status if it dies first. Returns 0 in the child. */
static int daemonize(cf_app *a)
{
    int fds[2];
    if (pipe(fds) != 0) {
        cf_log_error("Can't create a pipe to daemonize: %s", strerror(errno));
        return CF_FC_EFAILEDUPDATE;
    }
    pid_t pid = fork();
    if (pid < 0) {
        cf_log_error("Can't fork to daemonize: %s", strerror(errno));
        return CF_FC_EFAILEDUPDATE;
    }
    if (pid > 0) {
        close(fds[1]);
        char c;
        ssize_t n;
        do
            n = read(fds[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1)
            _exit(0);
        int status = 0;
        waitpid(pid, &status, 0);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : CF_FC_EFAILEDUPDATE);
    }
    close(fds[0]);
    setsid();
    if (write_pidfile(a->c.s.pid_file) != 0)
        _exit(CF_FC_EINIT);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    cf_log_set_terminal(false);
    if (write(fds[1], "r", 1) != 1) {
        /* the parent is gone; nothing to tell */
    }
    close(fds[1]);
    return 0;
}

/* Files created before the drop must stay writable by DatabaseOwner (§5.5). */
static void chown_for_owner(const cf_settings *s)
{
    if (geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(s->database_owner ? s->database_owner : "clamav");
    if (!pw)
        return;
    char p[4096];
    snprintf(p, sizeof p, "%s/freshclam.dat", s->database_directory);
    if (lchown(p, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT)
        cf_log_warn("Can't change the owner of %s: %s", p, strerror(errno));
    if (s->log_file && chown(s->log_file, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT)
        cf_log_warn("Can't change the owner of %s: %s", s->log_file, strerror(errno));
}

static void spawn_hook(cf_app *a, cf_hook_type type, const char *cmd, const char *version)
{
    if (!cmd)
        return;
    cf_notes notes;
    cf_notes_clear(&notes);
    cf_err e = {0};
    cf_hook_pool_spawn(&a->pool, type, cmd, version, &notes, &e);
    cf_log_notes(&notes);
}

int cf_daemon_main(cf_app *a)
{
    const cf_settings *s = &a->c.s;
    if (!s->foreground) {
        int rc = daemonize(a);
        if (rc != 0)
            return rc;
    } else if (write_pidfile(s->pid_file) != 0) {
        return CF_FC_EINIT;
    }
    chown_for_owner(s);
    if (cf_cycle_drop_privileges(s) != 0) {
        remove_pidfile();
        return CF_FC_ECONFIG;
    }
    cf_engine_facts_save(); /* as DatabaseOwner, now */
    cf_log_nf("freshclam daemon %s (OS: Linux, ARCH: x86_64, CPU: x86_64)", a->c.engine_version);
    cf_hook_pool_init(&a->pool);

    sigset_t wait_set, cycle_block;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGUSR1);
    sigaddset(&wait_set, SIGALRM);
    sigaddset(&wait_set, SIGHUP);
    sigaddset(&wait_set, SIGTERM);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGCHLD);
    cycle_block = wait_set;
    sigdelset(&cycle_block, SIGTERM);
    sigdelset(&cycle_block, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term_in_cycle;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    for (;;) {
        /* A cycle: wake-ups stay pending, termination is immediate. */
        sigprocmask(SIG_SETMASK, &cycle_block, NULL);
        cf_cycle_result c;
        cf_cycle_run(&a->c, &c);
        sigprocmask(SIG_BLOCK, &wait_set, NULL);

        if (c.code == CF_FC_EFORBIDDEN) {
            cf_log_error("Update failed.");
            spawn_hook(a, CF_HOOK_ERROR, s->on_error_execute, NULL);
            cf_log_warn("FreshClam was forbidden from downloading a database.");
            cf_log_warn("This is fatal. Retrying later won't help. Exiting now.");
            cf_hook_pool_drain(&a->pool, 5000);
            remove_pidfile();
            return CF_FC_EFORBIDDEN;
        }
        if (c.code != CF_FC_SUCCESS && c.code != CF_FC_EMIRRORNOTSYNC && c.code != CF_FC_ERETRYLATER) {
            cf_log_error("Update failed.");
            spawn_hook(a, CF_HOOK_ERROR, s->on_error_execute, NULL);
        } else {
            if (c.replaced > 0)
                spawn_hook(a, CF_HOOK_UPDATE, s->on_update_execute, NULL);
            if (c.outdated[0])
                spawn_hook(a, CF_HOOK_OUTDATED, s->on_outdated_execute, c.outdated);
        }
        cf_log_nf("--------------------------------------");

        time_t deadline = time(NULL) + (time_t)cf_cycle_interval(s);
        for (;;) {
            time_t now = time(NULL);
            if (now >= deadline)
                break;
            struct timespec ts = {deadline - now, 0};
            siginfo_t info;
            int sig = sigtimedwait(&wait_set, &info, &ts);
            if (sig < 0) {
                if (errno == EAGAIN)
                    break;
                continue;
            }
            if (sig == SIGCHLD) {
                cf_hook_pool_reap(&a->pool);
                continue;
            }
            if (sig == SIGUSR1 || sig == SIGALRM) {
                cf_log_info("Received signal: wake up");
                break;
            }
            if (sig == SIGHUP) {
                cf_log_request_reopen();
                cf_log_info("Received signal: re-opening log file");
                break;
            }
            /* SIGTERM, SIGINT */
            cf_log_info("Update process terminated");
            remove_pidfile();
            return 0;
        }
    }
}
