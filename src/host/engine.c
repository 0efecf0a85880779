/* libclamav at run time (behavior §1.3, §4.6 item 5, §4.7). Nothing here needs
 * clamav.h: the few prototypes and constants we use are declared below from
 * libclamav's documented API, and the library is opened with dlopen the first
 * time a fact is asked for. */
#include "clamfresh/engine.h"
#include "clamfresh/fcerr.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/buf.h"
#include "engine_priv.h"

/* clamav.h (1.4.6): cl_error_t is an enum with CL_SUCCESS = 0, passed as int. */
#define CL_INIT_DEFAULT 0x0
#define CL_SUCCESS 0
#define CL_DB_PHISHING 0x2
#define CL_DB_PHISHING_URLS 0x8
#define CL_DB_PUA 0x10
#define CL_DB_BYTECODE 0x2000
#define CL_DB_ENHANCED 0x40000

/* freshclam's exit codes that the child uses (behavior §2). */
#define FC_EINIT 2
#define FC_ETESTFAIL 8

struct cl_engine;

typedef int (*cl_init_fn)(unsigned int);
typedef const char *(*cl_retver_fn)(void);
typedef unsigned int (*cl_retflevel_fn)(void);
typedef struct cl_engine *(*cl_engine_new_fn)(void);
typedef int (*cl_load_fn)(const char *, struct cl_engine *, unsigned int *, unsigned int);
typedef int (*cl_engine_compile_fn)(struct cl_engine *);
typedef int (*cl_engine_free_fn)(struct cl_engine *);
typedef const char *(*cl_strerror_fn)(int);
typedef void (*cl_debug_fn)(void);

static struct {
    int ok;
    int resolved; /* the functions below are usable (not only facts from the cache) */
    const char *soname;
    char path[4096]; /* the file dlopen found, for the facts cache */
    char version[64];
    unsigned flevel;
    cl_init_fn init;
    cl_engine_new_fn engine_new;
    cl_load_fn load;
    cl_engine_compile_fn compile;
    cl_engine_free_fn engine_free;
    cl_strerror_fn strerror_;
    cl_debug_fn debug; /* optional */
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char facts_file[4096];       /* "" = no facts cache */
static int facts_may_write;         /* 0: read the cache, never write it (read-only runs) */
static cf_engine_facts_io facts_io; /* the store's file functions */
static unsigned test_timeout = CF_ENGINE_TEST_TIMEOUT;
static int test_debug;

/* Newest ABI first; the bare name last for a hand-installed library. */
static const char *const sonames[] = {"libclamav.so.12", "libclamav.so.11", "libclamav.so.9", "libclamav.so",
                                      NULL};

/* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
static int resolve(void *h, const char *name, void *out_fnptr)
{
    void *sym = dlsym(h, name);
    if (!sym)
        return 0;
    memcpy(out_fnptr, &sym, sizeof sym);
    return 1;
}

static void lib_open(void)
{
    for (size_t i = 0; sonames[i]; i++) {
        /* RTLD_LOCAL: libclamav's symbols stay out of our namespace. */
        void *h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (!h)
            continue;
        cl_retver_fn retver = NULL;
        cl_retflevel_fn retflevel = NULL;
        if (resolve(h, "cl_init", &lib.init) && resolve(h, "cl_retver", &retver) &&
            resolve(h, "cl_retflevel", &retflevel) && resolve(h, "cl_engine_new", &lib.engine_new) &&
            resolve(h, "cl_load", &lib.load) && resolve(h, "cl_engine_compile", &lib.compile) &&
            resolve(h, "cl_engine_free", &lib.engine_free) && resolve(h, "cl_strerror", &lib.strerror_)) {
            /* Both are plain getters that need no cl_init; the parent never
             * initialises libclamav, only the test child does. */
            if (!resolve(h, "cl_debug", &lib.debug))
                lib.debug = NULL;
            const char *v = retver();
            snprintf(lib.version, sizeof lib.version, "%s", v ? v : "");
            lib.flevel = retflevel();
            struct link_map *lm = NULL;
            if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_name == NULL)
                lib.path[0] = '\0';
            else
                snprintf(lib.path, sizeof lib.path, "%s", lm->l_name);
            if (lib.version[0]) {
                lib.soname = sonames[i];
                lib.ok = 1;
                lib.resolved = 1;
                return;
            }
        }
        dlclose(h);
        memset(&lib, 0, sizeof lib);
    }
}

/* ---- the facts cache ------------------------------------------------------
 * Opening libclamav costs more than the rest of an up-to-date run. Its version
 * and f-level change only with the library file, so they are kept in a small
 * file beside the databases, valid while the file dlopen found (followed
 * through links) has the same device, inode, size and modification time and
 * LD_LIBRARY_PATH is unchanged. The load test opens the library for real. */

#define FACTS_MAGIC "clamfresh-engine 1"

static void facts_identity(const struct stat *st, char *out, size_t n)
{
    snprintf(out, n, "%llu %llu %lld %lld.%09ld", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             (long)st->st_mtim.tv_nsec);
}

static int facts_read(void)
{
    if (!facts_file[0] || facts_io.read == NULL)
        return 0;
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    if (facts_io.read(facts_file, 8192, &b, &e) != CF_OK || cf_buf_append(&b, "", 1) != CF_OK) {
        cf_buf_free(&b);
        return 0;
    }
    /* magic, path, identity, LD_LIBRARY_PATH, soname, flevel, version: one a line */
    char *line[7] = {0}, *save = NULL, *p = (char *)b.p;
    size_t n = 0;
    for (char *t = strtok_r(p, "\n", &save); t && n < 7; t = strtok_r(NULL, "\n", &save))
        line[n++] = t;
    int ok = 0;
    struct stat st;
    char id[128];
    const char *ld = getenv("LD_LIBRARY_PATH");
    if (n == 7 && strcmp(line[0], FACTS_MAGIC) == 0 && stat(line[1], &st) == 0) {
        facts_identity(&st, id, sizeof id);
        ok = strcmp(line[2], id) == 0 && strcmp(line[3], ld ? ld : "-") == 0;
    }
    for (size_t i = 0; ok && sonames[i]; i++)
        if (strcmp(line[4], sonames[i]) == 0) {
            char *end = NULL;
            unsigned long fl = strtoul(line[5], &end, 10);
            if (end == line[5] || *end || fl > 100000 || strlen(line[6]) >= sizeof lib.version || !line[6][0])
                break;
            lib.soname = sonames[i];
            lib.flevel = (unsigned)fl;
            snprintf(lib.version, sizeof lib.version, "%s", line[6]);
            snprintf(lib.path, sizeof lib.path, "%s", line[1]);
            lib.ok = 1;
            break;
        }
    cf_buf_free(&b);
    return lib.ok;
}

static void facts_write(void)
{
    struct stat st;
    char id[128], dir[4096];
    if (!facts_file[0] || facts_io.replace == NULL || !facts_may_write || !lib.ok || !lib.path[0] ||
        stat(lib.path, &st) != 0)
        return;
    facts_identity(&st, id, sizeof id);
    const char *ld = getenv("LD_LIBRARY_PATH");
    cf_buf b = CF_BUF_INIT;
    cf_err e = {0};
    snprintf(dir, sizeof dir, "%s", facts_file);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    if (cf_buf_printf(&b, "%s\n%s\n%s\n%s\n%s\n%u\n%s\n", FACTS_MAGIC, lib.path, id, ld && *ld ? ld : "-",
                      lib.soname, lib.flevel, lib.version) == CF_OK)
        (void)facts_io.replace(dir, slash + 1, b.p, b.n, &e); /* best effort: only a cache */
    cf_buf_free(&b);
}

static int facts_stale; /* the library was opened because the cache did not hold */

static void lib_facts(void)
{
    if (facts_read())
        return;
    pthread_once(&load_once, lib_open);
    facts_stale = 1;
}

void cf_engine_facts_save(void)
{
    /* Written only when the run asked for facts and the cache did not have
     * them; called once the run has its final identity (DatabaseOwner), so
     * the file belongs to the same user as the databases. */
    if (facts_stale && facts_may_write)
        facts_write();
    facts_stale = 0;
}

static void lib_ensure(void)
{
    pthread_once(&lib_once, lib_facts);
}

/* The functions themselves, for the load test. */
static void lib_ensure_loaded(void)
{
    lib_ensure();
    if (lib.resolved)
        return;
    char version[64];
    unsigned flevel = lib.flevel;
    snprintf(version, sizeof version, "%s", lib.version);
    memset(&lib, 0, sizeof lib);
    pthread_once(&load_once, lib_open);
    if (!lib.ok) {
        /* The library went away since the facts were cached. */
        snprintf(lib.version, sizeof lib.version, "%s", version);
        lib.flevel = flevel;
    }
}

void cf_engine_facts_cache(const char *file, int may_write, const cf_engine_facts_io *io)
{
    snprintf(facts_file, sizeof facts_file, "%s", file && io ? file : "");
    facts_may_write = may_write;
    if (io)
        facts_io = *io;
}

int cf_engine_available(void)
{
    lib_ensure();
    return lib.ok;
}

const char *cf_engine_version(void)
{
    lib_ensure();
    return lib.ok ? lib.version : CF_ENGINE_FALLBACK_VERSION;
}

unsigned cf_engine_flevel(void)
{
    lib_ensure();
    return lib.ok ? lib.flevel : 0;
}

const char *cf_engine_library(void)
{
    lib_ensure();
    return lib.ok ? lib.soname : "";
}

void cf_engine_set_debug(int on)
{
    test_debug = on;
}

void cf_engine_set_test_timeout(unsigned seconds)
{
    test_timeout = seconds ? seconds : CF_ENGINE_TEST_TIMEOUT;
}

const char *cf_engine_status_str(cf_engine_status s)
{
    switch (s) {
    case CF_ENGINE_TEST_OK:
        return "ok";
    case CF_ENGINE_TEST_FAILED:
        return "failed";
    case CF_ENGINE_TEST_KILLED:
        return "killed";
    case CF_ENGINE_TEST_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

/* ---- the child ---------------------------------------------------------- */

struct load_args {
    const char *path;
    unsigned dboptions;
};

/* Reports a failure the way freshclam's child does: an ERROR line on stderr
 * (which the parent summarises) and the same text in the report. */
static int child_fail(cf_engine_report *rep, int code, const char *what, const char *detail)
{
    snprintf(rep->error, sizeof rep->error, "%s: %s", what, detail ? detail : "unknown error");
    fprintf(stderr, "ERROR: %s\n", rep->error);
    return code;
}

static int load_child(void *arg, cf_engine_report *rep)
{
    const struct load_args *a = arg;
    if (test_debug && lib.debug)
        lib.debug(); /* --debug: libclamav's own "LibClamAV debug:" lines, as freshclam */
    int r = lib.init(CL_INIT_DEFAULT);
    if (r != CL_SUCCESS)
        return child_fail(rep, FC_EINIT, "Can't initialize libclamav", lib.strerror_(r));
    struct cl_engine *eng = lib.engine_new();
    if (!eng)
        return child_fail(rep, FC_ETESTFAIL, "Can't create a new engine", "out of memory");
    unsigned sigs = 0;
    r = lib.load(a->path, eng, &sigs, a->dboptions);
    if (r != CL_SUCCESS) {
        lib.engine_free(eng);
        return child_fail(rep, FC_ETESTFAIL, "Failed to load new database", lib.strerror_(r));
    }
    /* freshclam prepares only the bytecode; compiling the whole engine is what
     * clamd does next, so a database that would fail there fails here. */
    r = lib.compile(eng);
    if (r != CL_SUCCESS) {
        lib.engine_free(eng);
        return child_fail(rep, FC_ETESTFAIL, "Failed to compile/load new database", lib.strerror_(r));
    }
    rep->sigs = sigs;
    /* The child exits next (_exit, in cf_engine_run_child): the kernel drops
     * its whole address space at once, where cl_engine_free would release
     * millions of allocations one by one first. */
    (void)eng;
    return 0;
}

/* ---- the parent --------------------------------------------------------- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* freshclam's stderr summary (§4.7), one line at a time. */
typedef struct line_state {
    char cur[CF_ENGINE_LINE];
    size_t len;
    int pending; /* bytes of an unterminated line were seen */
    int have_first;
    cf_engine_test_result *res;
} line_state;

static void line_finish(line_state *ls)
{
    cf_engine_test_result *res = ls->res;
    ls->cur[ls->len] = '\0';
    while (ls->len > 0 && (ls->cur[ls->len - 1] == '\r' || ls->cur[ls->len - 1] == '\n'))
        ls->cur[--ls->len] = '\0';
    res->stderr_lines++;
    if (!ls->have_first) {
        /* freshclam keeps reading into the same buffer while lines are
         * warnings, so with nothing but warnings the last one is reported. */
        memcpy(res->stderr_first, ls->cur, ls->len + 1);
        if (strncmp(ls->cur, "LibClamAV Warning:", 18) != 0)
            ls->have_first = 1;
    } else {
        memcpy(res->stderr_last, ls->cur, ls->len + 1);
    }
    ls->len = 0;
    ls->pending = 0;
}

static void line_feed(line_state *ls, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            line_finish(ls);
            continue;
        }
        ls->pending = 1;
        if (ls->len < sizeof ls->cur - 1) /* longer lines are cut, still counted once */
            ls->cur[ls->len++] = p[i];
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void run_in_child(cf_engine_child_fn fn, void *arg, int errw, int repw)
{
    /* The parent's handlers (a daemon's SIGTERM clean-up, a crash handler) must
     * not run in the child: a crash has to show as "killed by signal n". */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(errw, STDERR_FILENO) < 0)
        _exit(FC_EINIT);
    if (errw != STDERR_FILENO)
        close(errw);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        if (null != STDIN_FILENO)
            close(null);
    }
    cf_engine_report rep;
    memset(&rep, 0, sizeof rep);
    int code = fn(arg, &rep);
    ssize_t w;
    do
        w = write(repw, &rep, sizeof rep);
    while (w < 0 && errno == EINTR);
    _exit(code & 0xff);
}

cf_code cf_engine_run_child(cf_engine_child_fn fn, void *arg, unsigned timeout, cf_engine_test_result *res,
                            cf_err *e)
{
    if (!res || !fn)
        return cf_err_set(e, CF_EINVAL, "engine test: no result or child given");
    memset(res, 0, sizeof *res);
    res->status = CF_ENGINE_TEST_FAILED;
    if (timeout == 0)
        timeout = test_timeout;

    int errp[2], repp[2];
    if (pipe2(errp, O_CLOEXEC) < 0)
        return cf_err_set(e, CF_EIO, "engine test: pipe() failed: %s", strerror(errno));
    if (pipe2(repp, O_CLOEXEC) < 0) {
        int err = errno;
        close(errp[0]);
        close(errp[1]);
        return cf_err_set(e, CF_EIO, "engine test: pipe() failed: %s", strerror(err));
    }
    /* Anything still buffered in our stdio would be written twice otherwise. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(errp[0]);
        close(errp[1]);
        close(repp[0]);
        close(repp[1]);
        return cf_err_set(e, CF_EIO, "fork() to test database failed: %s", strerror(err));
    }
    if (pid == 0) {
        close(errp[0]);
        close(repp[0]);
        run_in_child(fn, arg, errp[1], repp[1]);
    }
    close(errp[1]);
    close(repp[1]);
    int errfd = errp[0], repfd = repp[0];

    line_state ls;
    memset(&ls, 0, sizeof ls);
    ls.res = res;
    cf_engine_report rep;
    memset(&rep, 0, sizeof rep);
    size_t repn = 0;
    double deadline = mono_now() + (double)timeout;
    int expired = 0;

    /* Drain both pipes until the child closes them (it must never block on
     * a full pipe), or until the bound. */
    while (errfd >= 0 || repfd >= 0) {
        double left = deadline - mono_now();
        if (left <= 0) {
            expired = 1;
            break;
        }
        struct pollfd pf[2];
        nfds_t np = 0;
        if (errfd >= 0)
            pf[np++] = (struct pollfd){.fd = errfd, .events = POLLIN};
        if (repfd >= 0)
            pf[np++] = (struct pollfd){.fd = repfd, .events = POLLIN};
        int ms = left > 1000.0 ? 1000 : (int)(left * 1000.0) + 1;
        int pr = poll(pf, np, ms);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        for (nfds_t i = 0; i < np; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char chunk[4096];
            ssize_t r;
            if (pf[i].fd == errfd) {
                r = read(errfd, chunk, sizeof chunk);
                if (r > 0)
                    line_feed(&ls, chunk, (size_t)r);
                else if (r == 0 || errno != EINTR)
                    close_fd(&errfd);
            } else {
                if (repn < sizeof rep)
                    r = read(repfd, (char *)&rep + repn, sizeof rep - repn);
                else
                    r = read(repfd, chunk, sizeof chunk); /* excess is ignored */
                if (r > 0 && repn < sizeof rep)
                    repn += (size_t)r;
                else if (r == 0 || (r < 0 && errno != EINTR))
                    close_fd(&repfd);
            }
        }
    }

    int status = 0;
    pid_t w = 0;
    while (!expired) {
        w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        double left = deadline - mono_now();
        if (left <= 0) {
            expired = 1;
            break;
        }
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (expired) {
        kill(pid, SIGKILL);
        do
            w = waitpid(pid, &status, 0);
        while (w < 0 && errno == EINTR);
    }
    close_fd(&errfd);
    close_fd(&repfd);
    if (ls.pending)
        line_finish(&ls);

    if (w != pid) {
        res->status = CF_ENGINE_TEST_FAILED;
        return cf_err_set(e, CF_EIO, "waitpid() failed: %s", strerror(errno));
    }
    rep.error[sizeof rep.error - 1] = '\0';
    /* A child that exited on its own just as the bound passed keeps its verdict. */
    res->timed_out = expired && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    if (WIFSIGNALED(status)) {
        res->status = CF_ENGINE_TEST_KILLED;
        res->signo = WTERMSIG(status);
        if (res->timed_out)
            snprintf(res->error, sizeof res->error, "Database load did not finish within %u seconds",
                     timeout);
        else
            snprintf(res->error, sizeof res->error, "Database load killed by signal %d", res->signo);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->status = CF_ENGINE_TEST_OK;
        res->sigs = repn == sizeof rep ? rep.sigs : 0;
    } else {
        res->status = CF_ENGINE_TEST_FAILED;
        res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        snprintf(res->exit_text, sizeof res->exit_text, "%s", cf_fc_str(res->exit_code));
        if (repn == sizeof rep && rep.error[0])
            snprintf(res->error, sizeof res->error, "%s", rep.error);
        else if (res->stderr_last[0])
            snprintf(res->error, sizeof res->error, "%s", res->stderr_last);
        else if (res->stderr_first[0])
            snprintf(res->error, sizeof res->error, "%s", res->stderr_first);
        else
            snprintf(res->error, sizeof res->error, "Database load exited with status %d", res->exit_code);
    }
    cf_err_clear(e);
    return CF_OK;
}

cf_code cf_engine_test_load(const char *path, int bytecode, cf_engine_test_result *res, cf_err *e)
{
    if (!res)
        return cf_err_set(e, CF_EINVAL, "engine test: no result given");
    memset(res, 0, sizeof *res);
    res->status = CF_ENGINE_TEST_FAILED;
    if (!path || !path[0])
        return cf_err_set(e, CF_EINVAL, "engine test: no database path given");
    lib_ensure_loaded();
    if (!lib.resolved) {
        res->status = CF_ENGINE_TEST_UNAVAILABLE;
        snprintf(res->error, sizeof res->error,
                 "libclamav is not installed: the database load test was not performed");
        cf_err_clear(e);
        return CF_OK;
    }
    struct load_args a = {path, CL_DB_PHISHING | CL_DB_PHISHING_URLS | CL_DB_PUA | CL_DB_ENHANCED |
                                    (bytecode ? CL_DB_BYTECODE : 0u)};
    return cf_engine_run_child(load_child, &a, 0, res, e);
}

void cf_engine_test_notes(const cf_engine_test_result *res, cf_notes *notes)
{
    if (!res)
        return;
    if (res->status == CF_ENGINE_TEST_UNAVAILABLE) {
        cf_notes_add(notes, CF_NOTE_DEBUG, "%s", res->error);
        return;
    }
    if (res->stderr_first[0])
        cf_notes_add(notes, CF_NOTE_WARN, "Stderr output from database load : %s%s%s", res->stderr_first,
                     res->stderr_last[0] ? " [...] " : "", res->stderr_last);
    switch (res->status) {
    case CF_ENGINE_TEST_OK:
        if (res->stderr_first[0])
            cf_notes_add(notes, CF_NOTE_WARN, "Database successfully loaded, but there is stderr output");
        cf_notes_add(notes, CF_NOTE_DEBUG, "Database load test: %u signatures", res->sigs);
        break;
    case CF_ENGINE_TEST_FAILED:
        cf_notes_add(notes, CF_NOTE_WARN, "Database load exited with \"%s\"",
                     res->exit_text[0] ? res->exit_text : cf_fc_str(8));
        break;
    case CF_ENGINE_TEST_KILLED:
        if (res->timed_out)
            cf_notes_add(notes, CF_NOTE_WARN, "%s", res->error);
        cf_notes_add(notes, CF_NOTE_ERROR, "Database load killed by signal %d", res->signo);
        break;
    case CF_ENGINE_TEST_UNAVAILABLE:
        break;
    }
}
