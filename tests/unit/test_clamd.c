/* NotifyClamd against fake clamd servers running in threads of this process, on
 * a Unix socket and on TCP 127.0.0.1 (freshclam-behavior.md §6). */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/clamd.h"
#include "clamfresh/limits.h"

enum fake_mode {
    FAKE_REPLY, /* read the command, send reply, close */
    FAKE_CLOSE, /* read the command, close without answering */
    FAKE_MUTE,  /* read the command, then wait for the client to hang up */
};

typedef struct fake {
    int lfd;
    int port;            /* TCP only */
    char path[108];      /* Unix only */
    enum fake_mode mode;
    const char *reply;
    size_t reply_len;
    char got[64];
    size_t got_n;
    int accepted;
    pthread_t th;
    int running;
} fake;

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = cf_test_mkdtemp();
    return tmp == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_rmtree(tmp);
    free(tmp);
    return 0;
}

static void fake_listen_unix(fake *f, const char *name)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s/%s", tmp, name);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
}

static void fake_listen_tcp(fake *f)
{
    memset(f, 0, sizeof(*f));
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    int one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &sl), 0);
    f->port = ntohs(sin.sin_port);
    assert_int_equal(listen(f->lfd, 4), 0);
}

static void *fake_serve(void *arg)
{
    fake *f = arg;
    struct pollfd pfd = {.fd = f->lfd, .events = POLLIN};
    if (poll(&pfd, 1, 10000) != 1)
        return NULL;
    int c = accept(f->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    f->accepted = 1;
    /* Collect the command: it ends with its NUL, or when the client goes quiet. */
    while (f->got_n < sizeof(f->got)) {
        struct pollfd cp = {.fd = c, .events = POLLIN};
        if (poll(&cp, 1, 2000) != 1)
            break;
        ssize_t r = read(c, f->got + f->got_n, sizeof(f->got) - f->got_n);
        if (r <= 0)
            break;
        f->got_n += (size_t)r;
        if (memchr(f->got, '\0', f->got_n) != NULL)
            break;
    }
    if (f->mode == FAKE_REPLY)
        (void)!write(c, f->reply, f->reply_len);
    if (f->mode == FAKE_MUTE) {
        char b[16];
        struct pollfd cp = {.fd = c, .events = POLLIN};
        while (poll(&cp, 1, 20000) == 1 && read(c, b, sizeof(b)) > 0)
            ;
    }
    close(c);
    return NULL;
}

static void fake_start(fake *f, enum fake_mode mode, const char *reply, size_t reply_len)
{
    f->mode = mode;
    f->reply = reply;
    f->reply_len = reply_len;
    assert_int_equal(pthread_create(&f->th, NULL, fake_serve, f), 0);
    f->running = 1;
}

static void fake_stop(fake *f)
{
    if (f->running)
        pthread_join(f->th, NULL);
    f->running = 0;
    close(f->lfd);
    if (f->path[0] != '\0')
        unlink(f->path);
}

/* A connection is waiting in the backlog (the client connected). */
static int fake_pending(const fake *f)
{
    struct pollfd pfd = {.fd = f->lfd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

static const char *write_conf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *write_conf(const char *fmt, ...)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/clamd.conf", tmp);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    fclose(fp);
    return path;
}

static int note_is(const cf_clamd_result *r, cf_note_level level, const char *text)
{
    for (size_t i = 0; i < r->notes.n; i++) {
        if (r->notes.item[i].level == level && !strcmp(r->notes.item[i].text, text))
            return 1;
    }
    return 0;
}

static void dump(const cf_clamd_result *r)
{
    for (size_t i = 0; i < r->notes.n; i++)
        print_message("note[%zu] level %d: %s\n", i, r->notes.item[i].level, r->notes.item[i].text);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- clamd.conf parsing (pure) ---- */

static cf_code parse(const char *text, cf_clamd_conf *c, cf_err *e)
{
    return cf_clamd_conf_parse(text, strlen(text), "t.conf", c, e);
}

static void test_conf_syntax(void **state)
{
    (void)state;
    cf_clamd_conf c;
    cf_err e = {0};
    const char *text = "\n  # comment line\n"
                       "  LogFile /var/log/clamav/clamd.log\n"
                       "\tLocalSocket   /run/a.sock  \r\n"
                       "LocalSocket /run/second-ignored.sock\n"
                       "TCPSocket 3310\n"
                       "TCPAddr 127.0.0.1\n"
                       "TCPAddr \"::1\"\n"
                       "x\n"
                       "FixStaleSocket true\n"
                       "MaxFileSize 25M\n"
                       "EnableReloadCommand YES\n";
    assert_int_equal(parse(text, &c, &e), CF_OK);
    assert_string_equal(c.local_socket, "/run/a.sock");
    assert_string_equal(c.tcp_port, "3310");
    assert_int_equal(c.n_tcpaddr, 2);
    assert_string_equal(c.tcpaddr[0], "127.0.0.1");
    assert_string_equal(c.tcpaddr[1], "::1");
    assert_int_equal(c.reload_enabled, 1);

    assert_int_equal(parse("EnableReloadCommand no\n", &c, &e), CF_OK);
    assert_int_equal(c.reload_enabled, 0);
    assert_int_equal(c.local_socket[0], '\0');
    assert_int_equal(parse("", &c, &e), CF_OK);
    assert_int_equal(c.reload_enabled, 1);
}

static void test_conf_rejects(void **state)
{
    (void)state;
    cf_clamd_conf c;
    cf_err e = {0};
    assert_int_equal(parse("LocalSocket /a\nBogusOption 1\n", &c, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Parse error at t.conf:2: Unknown option BogusOption");
    /* names are case-sensitive, like clamd's */
    assert_int_equal(parse("localsocket /a\n", &c, &e), CF_EFORMAT);
    assert_int_equal(parse("\n\nLogFile\n", &c, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Missing argument for option at t.conf:3");
    assert_int_equal(parse("LocalSocket    \n", &c, &e), CF_EFORMAT);
    assert_int_equal(parse("TCPSocket 33a\n", &c, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Incorrect argument format for option TCPSocket");
    assert_int_equal(parse("Foreground maybe\n", &c, &e), CF_EFORMAT);
    assert_int_equal(parse("MaxFileSize 10X\n", &c, &e), CF_EFORMAT);
    /* 1.4 has no inline comments: the # makes a number malformed */
    assert_int_equal(parse("SelfCheck 600 # seconds\n", &c, &e), CF_EFORMAT);
    assert_int_equal(parse("Example\n", &c, &e), CF_EFORMAT);
    assert_string_equal(e.msg, "Please edit the example config file t.conf");
    assert_int_equal(parse("LocalSocket \"\"\n", &c, &e), CF_EFORMAT);
    char longline[CF_MAX_CONF_LINE + 40];
    memset(longline, 'a', sizeof(longline) - 1);
    memcpy(longline, "LogFile /", 9);
    longline[sizeof(longline) - 1] = '\0';
    assert_int_equal(parse(longline, &c, &e), CF_ETOOBIG);
    const char nul[] = "LogFile /a\0b\n";
    assert_int_equal(cf_clamd_conf_parse(nul, sizeof(nul) - 1, "t.conf", &c, &e), CF_EFORMAT);
}

/* ---- notification over a Unix socket ---- */

static void run_unix(const char *reply, size_t reply_len, enum fake_mode mode, int timeout_s,
                     cf_clamd_result *r, cf_code *rc, fake *f)
{
    fake_listen_unix(f, "clamd.sock");
    const char *conf = write_conf("LocalSocket %s\nFixStaleSocket yes\n", f->path);
    fake_start(f, mode, reply, reply_len);
    cf_err e = {0};
    *rc = cf_clamd_notify(conf, timeout_s, r, &e);
    fake_stop(f);
    dump(r);
}

static void test_unix_reloading(void **state)
{
    (void)state;
    fake f;
    cf_clamd_result r;
    cf_code rc;
    run_unix("RELOADING\n", 10, FAKE_REPLY, 5, &r, &rc, &f);
    assert_int_equal(rc, CF_OK);
    assert_int_equal(r.status, CF_CLAMD_NOTIFIED);
    /* exactly RELOAD and its NUL, nothing more (§6.3) */
    assert_int_equal(f.got_n, 7);
    assert_memory_equal(f.got, "RELOAD\0", 7);
    assert_string_equal(r.answer, "RELOADING");
    assert_true(note_is(&r, CF_NOTE_INFO, "Clamd successfully notified about the update."));
}

static void test_unix_unavailable(void **state)
{
    (void)state;
    fake f;
    cf_clamd_result r;
    cf_code rc;
    run_unix("COMMAND UNAVAILABLE\n", 20, FAKE_REPLY, 5, &r, &rc, &f);
    assert_int_equal(rc, CF_EUNSUPP);
    assert_int_equal(r.status, CF_CLAMD_UNAVAILABLE);
    assert_true(note_is(&r, CF_NOTE_ERROR,
                        "NotifyClamd: RELOAD command unavailable, consider enabling it in the "
                        "clamd configuration and restarting clamd."));
}

static void test_unix_garbage(void **state)
{
    (void)state;
    fake f;
    cf_clamd_result r;
    cf_code rc;
    run_unix("UNKNOWN COMMAND\n", 16, FAKE_REPLY, 5, &r, &rc, &f);
    assert_int_equal(rc, CF_EFORMAT);
    assert_int_equal(r.status, CF_CLAMD_UNKNOWN_ANSWER);
    assert_true(note_is(&r, CF_NOTE_ERROR, "NotifyClamd: Unknown answer from clamd: 'UNKNOWN COMMAND'"));
    /* control bytes never reach the log */
    run_unix("BAD\033[31m\n", 9, FAKE_REPLY, 5, &r, &rc, &f);
    assert_int_equal(r.status, CF_CLAMD_UNKNOWN_ANSWER);
    assert_true(note_is(&r, CF_NOTE_ERROR, "NotifyClamd: Unknown answer from clamd: 'BAD?[31m'"));
    /* the z-style answer with a NUL terminator still counts */
    run_unix("RELOADING\0", 10, FAKE_REPLY, 5, &r, &rc, &f);
    assert_int_equal(r.status, CF_CLAMD_NOTIFIED);
}

static void test_unix_closed_without_answer(void **state)
{
    (void)state;
    fake f;
    cf_clamd_result r;
    cf_code rc;
    run_unix(NULL, 0, FAKE_CLOSE, 5, &r, &rc, &f);
    /* freshclam counts "nothing received" as success (§6.3) */
    assert_int_equal(rc, CF_OK);
    assert_int_equal(r.status, CF_CLAMD_NOTIFIED);
    assert_int_equal(f.got_n, 7);
}

static void test_unix_timeout(void **state)
{
    (void)state;
    fake f;
    cf_clamd_result r;
    cf_code rc;
    double t0 = now_s();
    run_unix(NULL, 0, FAKE_MUTE, 1, &r, &rc, &f);
    double dt = now_s() - t0;
    assert_int_equal(rc, CF_ENET);
    assert_int_equal(r.status, CF_CLAMD_TIMEOUT);
    assert_true(dt >= 0.9 && dt < 5.0);
    assert_true(note_is(&r, CF_NOTE_WARN, "Clamd was NOT notified: No answer from clamd within 1 seconds"));
}

static void test_unix_connect_failure(void **state)
{
    (void)state;
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/absent.sock", tmp);
    const char *conf = write_conf("LocalSocket %s\n", sock);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 2, &r, &e), CF_ENET);
    assert_int_equal(r.status, CF_CLAMD_CONNECT_FAILED);
    char want[512];
    snprintf(want, sizeof(want),
             "Clamd was NOT notified: Can't connect to clamd through %s: No such file or directory",
             sock);
    assert_true(note_is(&r, CF_NOTE_WARN, want));
    assert_string_equal(e.msg, want);

    /* a socket file nobody listens on */
    fake f;
    fake_listen_unix(&f, "dead.sock");
    close(f.lfd);
    conf = write_conf("LocalSocket %s\n", f.path);
    assert_int_equal(cf_clamd_notify(conf, 2, &r, &e), CF_ENET);
    snprintf(want, sizeof(want),
             "Clamd was NOT notified: Can't connect to clamd through %s: Connection refused", f.path);
    assert_true(note_is(&r, CF_NOTE_WARN, want));
    unlink(f.path);
}

static void test_no_socket_and_bad_config(void **state)
{
    (void)state;
    cf_clamd_result r;
    cf_err e = {0};
    const char *conf = write_conf("LogFile /tmp/x.log\nFixStaleSocket yes\n");
    assert_int_equal(cf_clamd_notify(conf, 2, &r, &e), CF_ENOTFOUND);
    assert_int_equal(r.status, CF_CLAMD_NO_SOCKET);
    char want[512];
    snprintf(want, sizeof(want), "NotifyClamd: No communication socket specified in %s", conf);
    assert_true(note_is(&r, CF_NOTE_ERROR, want));

    conf = write_conf("LocalSocket /x\nNotAClamdOption yes\n");
    assert_int_not_equal(cf_clamd_notify(conf, 2, &r, &e), CF_OK);
    assert_int_equal(r.status, CF_CLAMD_BAD_CONFIG);
    snprintf(want, sizeof(want), "NotifyClamd: Can't find or parse configuration file %s", conf);
    assert_true(note_is(&r, CF_NOTE_ERROR, want));
    assert_non_null(cf_notes_find(&r.notes, CF_NOTE_ERROR, "Unknown option NotAClamdOption"));

    char missing[256];
    snprintf(missing, sizeof(missing), "%s/nope.conf", tmp);
    assert_int_equal(cf_clamd_notify(missing, 2, &r, &e), CF_ENOTFOUND);
    snprintf(want, sizeof(want), "NotifyClamd: Can't find or parse configuration file %s", missing);
    assert_true(note_is(&r, CF_NOTE_ERROR, want));
}

static void test_reload_disabled(void **state)
{
    (void)state;
    fake f;
    fake_listen_unix(&f, "clamd.sock");
    const char *conf = write_conf("LocalSocket %s\nEnableReloadCommand no\n", f.path);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 2, &r, &e), CF_EUNSUPP);
    assert_int_equal(r.status, CF_CLAMD_RELOAD_DISABLED);
    assert_true(note_is(&r, CF_NOTE_WARN,
                        "Clamd was NOT notified: The RELOAD command is disabled. Consider "
                        "enabling it in the clamd configuration!"));
    assert_false(fake_pending(&f));
    fake_stop(&f);
}

/* ---- TCP ---- */

static void test_tcp_reloading(void **state)
{
    (void)state;
    fake f;
    fake_listen_tcp(&f);
    const char *conf = write_conf("TCPSocket %d\nTCPAddr 127.0.0.1\n", f.port);
    fake_start(&f, FAKE_REPLY, "RELOADING\n", 10);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 5, &r, &e), CF_OK);
    fake_stop(&f);
    dump(&r);
    assert_int_equal(r.status, CF_CLAMD_NOTIFIED);
    assert_int_equal(f.got_n, 7);
    assert_memory_equal(f.got, "RELOAD\0", 7);
}

static void test_tcp_default_address(void **state)
{
    (void)state;
    /* no TCPAddr: the local host; ::1 may be tried first and refused */
    fake f;
    fake_listen_tcp(&f);
    const char *conf = write_conf("TCPSocket %d\n", f.port);
    fake_start(&f, FAKE_REPLY, "RELOADING\n", 10);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 5, &r, &e), CF_OK);
    fake_stop(&f);
    dump(&r);
    assert_true(f.accepted);
    assert_int_equal(r.status, CF_CLAMD_NOTIFIED);
}

static void test_tcp_next_address(void **state)
{
    (void)state;
    /* The first TCPAddr refuses (nothing listens on 127.0.0.2), the second answers. */
    fake f;
    fake_listen_tcp(&f);
    const char *conf =
        write_conf("TCPSocket %d\nTCPAddr 127.0.0.2\nTCPAddr 127.0.0.1\n", f.port);
    fake_start(&f, FAKE_REPLY, "RELOADING\n", 10);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 5, &r, &e), CF_OK);
    fake_stop(&f);
    dump(&r);
    char want[256];
    snprintf(want, sizeof(want), "NotifyClamd: Can't connect to clamd on 127.0.0.2:%d: Connection refused",
             f.port);
    assert_true(note_is(&r, CF_NOTE_ERROR, want));
    assert_int_equal(r.status, CF_CLAMD_NOTIFIED);
}

static void test_tcp_connect_failure(void **state)
{
    (void)state;
    fake f;
    fake_listen_tcp(&f);
    int port = f.port;
    close(f.lfd); /* now nothing listens there */
    const char *conf = write_conf("TCPSocket %d\nTCPAddr 127.0.0.1\n", port);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 2, &r, &e), CF_ENET);
    assert_int_equal(r.status, CF_CLAMD_CONNECT_FAILED);
    char want[256];
    snprintf(want, sizeof(want), "NotifyClamd: Can't connect to clamd on 127.0.0.1:%d: Connection refused",
             port);
    assert_true(note_is(&r, CF_NOTE_ERROR, want));
    assert_string_equal(e.msg, want);
}

static void test_local_beats_tcp(void **state)
{
    (void)state;
    fake u, t;
    fake_listen_unix(&u, "clamd.sock");
    fake_listen_tcp(&t);
    const char *conf =
        write_conf("TCPSocket %d\nTCPAddr 127.0.0.1\nLocalSocket %s\n", t.port, u.path);
    fake_start(&u, FAKE_REPLY, "RELOADING\n", 10);
    cf_clamd_result r;
    cf_err e = {0};
    assert_int_equal(cf_clamd_notify(conf, 5, &r, &e), CF_OK);
    fake_stop(&u);
    assert_true(u.accepted);
    assert_false(fake_pending(&t));
    fake_stop(&t);

    /* and no TCP fallback when the Unix socket is dead */
    fake_listen_unix(&u, "dead.sock");
    close(u.lfd);
    fake_listen_tcp(&t);
    conf = write_conf("LocalSocket %s\nTCPSocket %d\n", u.path, t.port);
    assert_int_equal(cf_clamd_notify(conf, 2, &r, &e), CF_ENET);
    assert_int_equal(r.status, CF_CLAMD_CONNECT_FAILED);
    assert_false(fake_pending(&t));
    fake_stop(&t);
    unlink(u.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_syntax),
        cmocka_unit_test(test_conf_rejects),
        cmocka_unit_test(test_unix_reloading),
        cmocka_unit_test(test_unix_unavailable),
        cmocka_unit_test(test_unix_garbage),
        cmocka_unit_test(test_unix_closed_without_answer),
        cmocka_unit_test(test_unix_timeout),
        cmocka_unit_test(test_unix_connect_failure),
        cmocka_unit_test(test_no_socket_and_bad_config),
        cmocka_unit_test(test_reload_disabled),
        cmocka_unit_test(test_tcp_reloading),
        cmocka_unit_test(test_tcp_default_address),
        cmocka_unit_test(test_tcp_next_address),
        cmocka_unit_test(test_tcp_connect_failure),
        cmocka_unit_test(test_local_beats_tcp),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
