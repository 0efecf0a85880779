/* c-ares TXT lookups against a real dnsmasq in a private network namespace
 * (design/TESTING.md). Needs root, ip netns and dnsmasq; exits 77 otherwise.
 * The parent builds the namespace and runs this same program inside it. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/dns.h"

static char g_ns[64];
static char g_record[128];

/* ---- inside the namespace ------------------------------------------------ */

static void test_current(void **state)
{
    (void)state;
    char txt[CF_DNS_TXT_MAX];
    unsigned ttl = 0;
    cf_err e = {0};
    assert_int_equal(cf_dns_query_txt("current.cvd.clamav.net", txt, sizeof txt, &ttl, &e), CF_OK);
    assert_string_equal(txt, g_record);
    assert_int_equal(ttl, 300);
    cf_dnsinfo d;
    assert_int_equal(cf_dnsinfo_parse(txt, time(NULL), &d, &e), CF_OK);
    unsigned v = 0;
    assert_int_equal(cf_dnsinfo_db_version(&d, "daily", &v, &e), CF_OK);
    assert_int_equal(v, 27830);
    /* Too small a buffer is reported, not truncated. */
    char small[8];
    assert_int_equal(cf_dns_query_txt("current.cvd.clamav.net", small, sizeof small, NULL, &e), CF_ETOOBIG);
}

static void test_per_db_and_multi(void **state)
{
    (void)state;
    char txt[CF_DNS_TXT_MAX];
    cf_err e = {0};
    unsigned v = 0;
    assert_int_equal(cf_dns_query_txt("test.cvd.clamav.net", txt, sizeof txt, NULL, &e), CF_OK);
    assert_int_equal(cf_dnsinfo_parse_db(txt, time(NULL), "test", &v, &e), CF_OK);
    assert_int_equal(v, 6);
    /* Several character-strings: only the first one counts. */
    assert_int_equal(cf_dns_query_txt("multi.cvd.clamav.net", txt, sizeof txt, NULL, &e), CF_OK);
    assert_string_equal(txt, "first");
    /* Bound to a local address. */
    assert_int_equal(cf_dns_query_txt_from("test.cvd.clamav.net", "127.0.0.1", txt, sizeof txt, NULL, &e), CF_OK);
    assert_int_equal(cf_dns_query_txt_from("test.cvd.clamav.net", "not-an-ip", txt, sizeof txt, NULL, &e),
                     CF_EINVAL);
}

static void test_missing(void **state)
{
    (void)state;
    char txt[CF_DNS_TXT_MAX];
    cf_err e = {0};
    assert_int_equal(cf_dns_query_txt("valhalla.cvd.clamav.net", txt, sizeof txt, NULL, &e), CF_ENOTFOUND);
    assert_non_null(strstr(e.msg, "valhalla.cvd.clamav.net"));
    assert_string_equal(txt, "");
}

static void test_silent_server(void **state)
{
    (void)state;
    /* A name server that takes queries and never answers: the lookup must end
     * within its bound. resolv.conf is the namespace's own copy. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    inet_pton(AF_INET, "127.0.0.3", &a.sin_addr);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    char conf[256];
    snprintf(conf, sizeof conf, "/etc/netns/%s/resolv.conf", g_ns);
    FILE *f = fopen(conf, "r+"); /* in place: the namespace sees this inode */
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 0), 0);
    fputs("nameserver 127.0.0.3\n", f);
    fclose(f);

    char txt[CF_DNS_TXT_MAX];
    cf_err e = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(cf_dns_query_txt("current.cvd.clamav.net", txt, sizeof txt, NULL, &e), CF_ENET);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(dt < CF_DNS_TIMEOUT_MS / 1000.0 + 1.0);
    close(s);
}

static int run_inside(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current),
        cmocka_unit_test(test_per_db_and_multi),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_silent_server), /* last: it rewrites resolv.conf */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ---- the namespace ------------------------------------------------------- */

static int run(char *const argv[])
{
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

int main(void)
{
    const char *child = getenv("CF_DNS_LIVE_NS");
    long now = (long)time(NULL);
    const char *rec_env = getenv("CF_DNS_LIVE_RECORD");
    if (child && rec_env) {
        snprintf(g_ns, sizeof g_ns, "%s", child);
        snprintf(g_record, sizeof g_record, "%s", rec_env);
        return run_inside();
    }
    if (geteuid() != 0 || !have("ip") || !have("dnsmasq")) {
        printf("SKIP: needs root, ip netns and dnsmasq\n");
        return 77;
    }
    snprintf(g_ns, sizeof g_ns, "cfdns%ld", (long)getpid());
    snprintf(g_record, sizeof g_record, "1.4.6:62:27830:%ld:1:90:49192:339", now);
    char *add[] = {"ip", "netns", "add", g_ns, NULL};
    if (run(add) != 0) {
        printf("SKIP: ip netns add failed (no network namespaces here)\n");
        return 77;
    }
    int rc = 1;
    pid_t dns = -1;
    char dir[256], conf[300], pidfile[300];
    snprintf(dir, sizeof dir, "/etc/netns/%s", g_ns);
    snprintf(conf, sizeof conf, "%s/resolv.conf", dir);
    char *lo[] = {"ip", "netns", "exec", g_ns, "ip", "link", "set", "lo", "up", NULL};
    if (run(lo) != 0)
        goto out;
    mkdir("/etc/netns", 0755);
    mkdir(dir, 0755);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        goto out;
    fputs("nameserver 127.0.0.1\n", f);
    fclose(f);

    char txt1[200], txt2[100];
    snprintf(txt1, sizeof txt1, "--txt-record=current.cvd.clamav.net,%s", g_record);
    snprintf(txt2, sizeof txt2, "--txt-record=test.cvd.clamav.net,6:%ld", now);
    snprintf(pidfile, sizeof pidfile, "/tmp/%s.dnsmasq.pid", g_ns);
    dns = fork();
    if (dns == 0) {
        execlp("ip", "ip", "netns", "exec", g_ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
               "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=53",
               "--user=root", "--group=root", "--local-ttl=300", "--local=/cvd.clamav.net/", txt1, txt2,
               "--txt-record=multi.cvd.clamav.net,first,second", (char *)NULL);
        _exit(127);
    }
    usleep(700000);

    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        goto out;
    self[n] = '\0';
    setenv("CF_DNS_LIVE_NS", g_ns, 1);
    setenv("CF_DNS_LIVE_RECORD", g_record, 1);
    pid_t t = fork();
    if (t == 0) {
        execlp("ip", "ip", "netns", "exec", g_ns, self, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(t, &st, 0);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
out:
    if (dns > 0) {
        kill(dns, SIGTERM);
        waitpid(dns, NULL, 0);
    }
    char *del[] = {"ip", "netns", "del", g_ns, NULL};
    run(del);
    unlink(conf);
    rmdir(dir);
    unlink(pidfile);
    return rc;
}
