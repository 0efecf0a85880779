/* NotifyClamd (freshclam-behavior.md §6): clamd.conf is read with clamd's own
 * strictness (§3.1 syntax, clamd's option table), then RELOAD goes to the first
 * socket that accepts a connection. */
#include "clamfresh/clamd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/limits.h"

/* A clamd.conf is a few kilobytes; anything far larger is not one. */
#define CLAMD_CONF_MAX_BYTES (1024UL * 1024)
#define CLAMD_ANSWER_MAX 20 /* freshclam reads one answer of at most 20 bytes (§6.3) */

typedef enum opt_type { OPT_BOOL, OPT_NUMBER, OPT_SIZE, OPT_STRING } opt_type;

typedef struct opt_def {
    const char *name;
    opt_type type;
} opt_def;

/* Every directive clamd 1.4.6 accepts in clamd.conf (its deprecated ones take any
 * value), plus the command switches of 1.5 so newer configs stay readable. The
 * types follow what clamd itself rejects ("Incorrect argument format"). Sorted
 * for bsearch. */
static const opt_def clamd_opts[] = {
    {"AlertBrokenExecutables", OPT_BOOL},
    {"AlertBrokenMedia", OPT_BOOL},
    {"AlertEncrypted", OPT_BOOL},
    {"AlertEncryptedArchive", OPT_BOOL},
    {"AlertEncryptedDoc", OPT_BOOL},
    {"AlertExceedsMax", OPT_BOOL},
    {"AlertOLE2Macros", OPT_BOOL},
    {"AlertPartitionIntersection", OPT_BOOL},
    {"AlertPhishingCloak", OPT_BOOL},
    {"AlertPhishingSSLMismatch", OPT_BOOL},
    {"AlgorithmicDetection", OPT_BOOL},
    {"AllowAllMatchScan", OPT_BOOL},
    {"AllowSupplementaryGroups", OPT_STRING},
    {"ArchiveBlockEncrypted", OPT_BOOL},
    {"ArchiveBlockMax", OPT_STRING},
    {"ArchiveLimitMemoryUsage", OPT_STRING},
    {"ArchiveMaxCompressionRatio", OPT_STRING},
    {"ArchiveMaxFiles", OPT_STRING},
    {"ArchiveMaxRecursion", OPT_STRING},
    {"ArchiveMaxScanSize", OPT_STRING},
    {"BlockMax", OPT_BOOL},
    {"Bytecode", OPT_BOOL},
    {"BytecodeMode", OPT_STRING},
    {"BytecodeSecurity", OPT_STRING},
    {"BytecodeTimeout", OPT_NUMBER},
    {"BytecodeUnsigned", OPT_BOOL},
    {"CVDCertsDirectory", OPT_STRING},
    {"CacheSize", OPT_NUMBER},
    {"CommandReadTimeout", OPT_NUMBER},
    {"ConcurrentDatabaseReload", OPT_BOOL},
    {"CrossFilesystems", OPT_BOOL},
    {"DatabaseDirectory", OPT_STRING},
    {"Debug", OPT_BOOL},
    {"DetectBrokenExecutables", OPT_STRING},
    {"DetectPUA", OPT_BOOL},
    {"DevACDepth", OPT_NUMBER},
    {"DevACOnly", OPT_BOOL},
    {"DevLiblog", OPT_BOOL},
    {"DevPerformance", OPT_BOOL},
    {"DisableCache", OPT_BOOL},
    {"DisableCertCheck", OPT_BOOL},
    {"EnableReloadCommand", OPT_BOOL},
    {"EnableShutdownCommand", OPT_BOOL},
    {"EnableStatsCommand", OPT_BOOL},
    {"EnableVersionCommand", OPT_BOOL},
    {"ExcludePUA", OPT_STRING},
    {"ExcludePath", OPT_STRING},
    {"ExitOnOOM", OPT_BOOL},
    {"ExtendedDetectionInfo", OPT_BOOL},
    {"FailIfCvdOlderThan", OPT_NUMBER},
    {"FixStaleSocket", OPT_BOOL},
    {"FollowDirectorySymlinks", OPT_BOOL},
    {"FollowFileSymlinks", OPT_BOOL},
    {"ForceToDisk", OPT_BOOL},
    {"Foreground", OPT_BOOL},
    {"GenerateMetadataJson", OPT_BOOL},
    {"HeuristicAlerts", OPT_BOOL},
    {"HeuristicScanPrecedence", OPT_BOOL},
    {"IdleTimeout", OPT_NUMBER},
    {"IncludePUA", OPT_STRING},
    {"LeaveTemporaryFiles", OPT_BOOL},
    {"LocalSocket", OPT_STRING},
    {"LocalSocketGroup", OPT_STRING},
    {"LocalSocketMode", OPT_STRING},
    {"LogClean", OPT_BOOL},
    {"LogFacility", OPT_STRING},
    {"LogFile", OPT_STRING},
    {"LogFileMaxSize", OPT_SIZE},
    {"LogFileUnlock", OPT_BOOL},
    {"LogRotate", OPT_BOOL},
    {"LogSyslog", OPT_BOOL},
    {"LogTime", OPT_BOOL},
    {"LogVerbose", OPT_BOOL},
    {"MailFollowURLs", OPT_STRING},
    {"MailMaxRecursion", OPT_STRING},
    {"MaxConnectionQueueLength", OPT_NUMBER},
    {"MaxDirectoryRecursion", OPT_NUMBER},
    {"MaxEmbeddedPE", OPT_SIZE},
    {"MaxFileSize", OPT_SIZE},
    {"MaxFiles", OPT_NUMBER},
    {"MaxHTMLNoTags", OPT_SIZE},
    {"MaxHTMLNormalize", OPT_SIZE},
    {"MaxIconsPE", OPT_NUMBER},
    {"MaxPartitions", OPT_NUMBER},
    {"MaxQueue", OPT_NUMBER},
    {"MaxRecHWP3", OPT_NUMBER},
    {"MaxRecursion", OPT_NUMBER},
    {"MaxScanSize", OPT_SIZE},
    {"MaxScanTime", OPT_NUMBER},
    {"MaxScriptNormalize", OPT_SIZE},
    {"MaxThreads", OPT_NUMBER},
    {"MaxZipTypeRcg", OPT_SIZE},
    {"OLE2BlockMacros", OPT_BOOL},
    {"OfficialDatabaseOnly", OPT_BOOL},
    {"OnAccessCurlTimeout", OPT_NUMBER},
    {"OnAccessDenyOnError", OPT_BOOL},
    {"OnAccessDisableDDD", OPT_BOOL},
    {"OnAccessExcludePath", OPT_STRING},
    {"OnAccessExcludeRootUID", OPT_BOOL},
    {"OnAccessExcludeUID", OPT_NUMBER},
    {"OnAccessExcludeUname", OPT_STRING},
    {"OnAccessExtraScanning", OPT_BOOL},
    {"OnAccessIncludePath", OPT_STRING},
    {"OnAccessMaxFileSize", OPT_SIZE},
    {"OnAccessMaxThreads", OPT_NUMBER},
    {"OnAccessMountPath", OPT_STRING},
    {"OnAccessPrevention", OPT_BOOL},
    {"OnAccessRetryAttempts", OPT_NUMBER},
    {"PCREMatchLimit", OPT_NUMBER},
    {"PCREMaxFileSize", OPT_SIZE},
    {"PCRERecMatchLimit", OPT_NUMBER},
    {"PartitionIntersection", OPT_BOOL},
    {"PhishingAlwaysBlockCloak", OPT_BOOL},
    {"PhishingAlwaysBlockSSLMismatch", OPT_BOOL},
    {"PhishingScanURLs", OPT_BOOL},
    {"PhishingSignatures", OPT_BOOL},
    {"PidFile", OPT_STRING},
    {"PreludeAnalyzerName", OPT_STRING},
    {"PreludeEnable", OPT_BOOL},
    {"ReadTimeout", OPT_NUMBER},
    {"ScanArchive", OPT_BOOL},
    {"ScanELF", OPT_BOOL},
    {"ScanHTML", OPT_BOOL},
    {"ScanHWP3", OPT_BOOL},
    {"ScanImage", OPT_BOOL},
    {"ScanImageFuzzyHash", OPT_BOOL},
    {"ScanMail", OPT_BOOL},
    {"ScanOLE2", OPT_BOOL},
    {"ScanOnAccess", OPT_STRING},
    {"ScanOneNote", OPT_BOOL},
    {"ScanPDF", OPT_BOOL},
    {"ScanPE", OPT_BOOL},
    {"ScanPartialMessages", OPT_BOOL},
    {"ScanSWF", OPT_BOOL},
    {"ScanXMLDOCS", OPT_BOOL},
    {"SelfCheck", OPT_NUMBER},
    {"SendBufTimeout", OPT_NUMBER},
    {"StreamMaxLength", OPT_SIZE},
    {"StreamMaxPort", OPT_NUMBER},
    {"StreamMinPort", OPT_NUMBER},
    {"StructuredCCOnly", OPT_BOOL},
    {"StructuredDataDetection", OPT_BOOL},
    {"StructuredMinCreditCardCount", OPT_NUMBER},
    {"StructuredMinSSNCount", OPT_NUMBER},
    {"StructuredSSNFormatNormal", OPT_BOOL},
    {"StructuredSSNFormatStripped", OPT_BOOL},
    {"TCPAddr", OPT_STRING},
    {"TCPSocket", OPT_NUMBER},
    {"TemporaryDirectory", OPT_STRING},
    {"User", OPT_STRING},
    {"VirusEvent", OPT_STRING},
};

static int opt_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const opt_def *)elem)->name);
}

static const opt_def *opt_find(const char *name)
{
    return bsearch(name, clamd_opts, sizeof(clamd_opts) / sizeof(clamd_opts[0]), sizeof(clamd_opts[0]),
                   opt_cmp);
}

/* BOOL values of §3.1; returns -1 when the text is none of them. */
static int bool_value(const char *v)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
        return 1;
    if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
        return 0;
    return -1;
}

static int all_digits(const char *v, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
    }
    return 1;
}

static int value_ok(opt_type type, const char *v)
{
    size_t n = strlen(v);
    switch (type) {
    case OPT_BOOL:
        return bool_value(v) >= 0;
    case OPT_NUMBER:
        return all_digits(v, n);
    case OPT_SIZE:
        if (n > 1 && strchr("KkMmGg", v[n - 1]) != NULL)
            n--;
        return all_digits(v, n);
    case OPT_STRING:
        return 1;
    }
    return 0;
}

static void copy_value(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v);
}

/* Applies one "Name value" pair; the first occurrence of a single-valued
 * directive wins (§3.1). */
static cf_code conf_apply(cf_clamd_conf *conf, const char *name, const char *value, unsigned seen[3],
                          const char *where, cf_err *e)
{
    if (!strcmp(name, "LocalSocket")) {
        if (seen[0]++)
            return CF_OK;
        if (strlen(value) >= sizeof(conf->local_socket))
            return cf_err_set(e, CF_EFORMAT, "%s: LocalSocket path longer than %zu bytes", where,
                              sizeof(conf->local_socket) - 1);
        copy_value(conf->local_socket, sizeof(conf->local_socket), value);
    } else if (!strcmp(name, "TCPSocket")) {
        if (seen[1]++)
            return CF_OK;
        if (strlen(value) >= sizeof(conf->tcp_port))
            return cf_err_set(e, CF_EFORMAT, "Incorrect argument format for option %s", name);
        copy_value(conf->tcp_port, sizeof(conf->tcp_port), value);
    } else if (!strcmp(name, "TCPAddr")) {
        if (conf->n_tcpaddr >= CF_CLAMD_MAX_TCPADDR)
            return cf_err_set(e, CF_ETOOBIG, "%s: more than %d TCPAddr lines", where, CF_CLAMD_MAX_TCPADDR);
        if (strlen(value) >= sizeof(conf->tcpaddr[0]))
            return cf_err_set(e, CF_EFORMAT, "%s: TCPAddr longer than %zu bytes", where,
                              sizeof(conf->tcpaddr[0]) - 1);
        copy_value(conf->tcpaddr[conf->n_tcpaddr++], sizeof(conf->tcpaddr[0]), value);
    } else if (!strcmp(name, "EnableReloadCommand")) {
        if (seen[2]++)
            return CF_OK;
        conf->reload_enabled = bool_value(value);
    }
    return CF_OK;
}

/* One line without its terminator; n <= CF_MAX_CONF_LINE. */
static cf_code conf_line(cf_clamd_conf *conf, const char *line, size_t n, const char *name, unsigned lineno,
                         unsigned seen[3], cf_err *e)
{
    char buf[CF_MAX_CONF_LINE + 1];
    memcpy(buf, line, n);
    buf[n] = '\0';

    char *p = buf;
    while (*p == ' ' || *p == '\t')
        p++;
    /* clamd skips comments and lines of at most two characters (§3.1). */
    size_t rest = strlen(p);
    while (rest > 0 && p[rest - 1] == '\r')
        p[--rest] = '\0';
    if (*p == '#' || rest <= 2)
        return CF_OK;

    char where[64 + 16];
    snprintf(where, sizeof(where), "%.64s:%u", name, lineno);

    char *key = p;
    while (*p != '\0' && *p != ' ' && *p != '\t')
        p++;
    int has_sep = *p != '\0';
    *p = '\0';
    if (!strcmp(key, "Example"))
        return cf_err_set(e, CF_EFORMAT, "Please edit the example config file %s", name);

    char *value = has_sep ? p + 1 : p;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t vn = strlen(value);
    while (vn > 0 && (value[vn - 1] == ' ' || value[vn - 1] == '\t'))
        value[--vn] = '\0';
    if (vn == 0)
        return cf_err_set(e, CF_EFORMAT, "Missing argument for option at %s", where);
    if (value[0] == '"') {
        char *close = strrchr(value + 1, '"');
        if (close == NULL || close == value + 1)
            return cf_err_set(e, CF_EFORMAT, "Parse error at %s: Incorrect quoted argument", where);
        *close = '\0';
        value++;
    }

    const opt_def *def = opt_find(key);
    if (def == NULL)
        return cf_err_set(e, CF_EFORMAT, "Parse error at %s: Unknown option %s", where, key);
    if (!value_ok(def->type, value))
        return cf_err_set(e, CF_EFORMAT, "Incorrect argument format for option %s", key);
    return conf_apply(conf, key, value, seen, where, e);
}

cf_code cf_clamd_conf_parse(const char *text, size_t len, const char *name, cf_clamd_conf *conf, cf_err *e)
{
    if (text == NULL && len > 0)
        return cf_err_set(e, CF_EINVAL, "clamd.conf: no text");
    if (name == NULL)
        name = "clamd.conf";
    if (len > CLAMD_CONF_MAX_BYTES)
        return cf_err_set(e, CF_ETOOBIG, "%s: %zu bytes, more than the %lu a clamd.conf may have", name, len,
                          CLAMD_CONF_MAX_BYTES);
    memset(conf, 0, sizeof(*conf));
    conf->reload_enabled = 1;

    unsigned seen[3] = {0, 0, 0};
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n > CF_MAX_CONF_LINE)
            return cf_err_set(e, CF_ETOOBIG, "%s:%u: line longer than %d bytes", name, lineno,
                              CF_MAX_CONF_LINE);
        if (memchr(text + pos, '\0', n) != NULL)
            return cf_err_set(e, CF_EFORMAT, "%s:%u: NUL byte in line", name, lineno);
        cf_code rc = conf_line(conf, text + pos, n, name, lineno, seen, e);
        if (rc != CF_OK)
            return rc;
        pos += n + (nl != NULL ? 1 : 0);
    }
    return CF_OK;
}

static cf_code conf_read(const char *path, cf_clamd_conf *conf, cf_err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_set(e, CF_ENOTFOUND, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cf_err_set(e, CF_EIO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > CLAMD_CONF_MAX_BYTES) {
        close(fd);
        return cf_err_set(e, CF_ETOOBIG, "%s: %lld bytes, more than the %lu a clamd.conf may have", path,
                          (long long)st.st_size, CLAMD_CONF_MAX_BYTES);
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *text = malloc(cap);
    if (text == NULL) {
        close(fd);
        return cf_err_set(e, CF_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            free(text);
            close(fd);
            return cf_err_set(e, CF_EIO, "%s: %s", path, strerror(err));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) {
            /* grew while we read it */
            free(text);
            close(fd);
            return cf_err_set(e, CF_EIO, "%s: changed while being read", path);
        }
    }
    close(fd);
    cf_code rc = cf_clamd_conf_parse(text, len, path, conf, e);
    free(text);
    return rc;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; returns >0 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 0)
            return r;
    }
}

/* connect(2) bounded by timeout_ms; returns 0 or an errno value. The socket stays
 * non-blocking. */
static int connect_bounded(int fd, const struct sockaddr *sa, socklen_t salen, int timeout_ms)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return errno;
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (connect(fd, sa, salen) == 0)
            return 0;
        int err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN) {
            /* A Unix socket whose backlog is full: clamd is busy, try again shortly. */
            if (now_ms() >= deadline)
                return ETIMEDOUT;
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (err != EINPROGRESS)
            return err;
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r == 0)
            return ETIMEDOUT;
        if (r < 0)
            return errno;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            return errno;
        return soerr;
    }
}

static int connect_local(const char *path, int timeout_ms, int *fd_out)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        return ENAMETOOLONG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int err = connect_bounded(fd, (struct sockaddr *)&sun, sizeof(sun), timeout_ms);
    if (err != 0) {
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* Tries every address of every TCPAddr (or the local host) in order (§6.2). */
static int connect_tcp(const cf_clamd_conf *conf, int timeout_ms, cf_notes *notes, int *fd_out)
{
    size_t hosts = conf->n_tcpaddr > 0 ? conf->n_tcpaddr : 1;
    for (size_t h = 0; h < hosts; h++) {
        /* No TCPAddr: clamd listens on every address; getaddrinfo(NULL) without
         * AI_PASSIVE yields the loopback addresses. */
        const char *node = conf->n_tcpaddr > 0 ? conf->tcpaddr[h] : NULL;
        const char *shown = node != NULL ? node : "localhost";
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        int gr = getaddrinfo(node, conf->tcp_port, &hints, &res);
        if (gr != 0) {
            cf_notes_add(notes, CF_NOTE_ERROR, "NotifyClamd: Can't resolve hostname %s (%s)", shown,
                         gr == EAI_SYSTEM ? strerror(errno) : gai_strerror(gr));
            continue;
        }
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) {
                cf_notes_add(notes, CF_NOTE_ERROR,
                             "NotifyClamd: Can't create TCP socket to connect to %s: %s", shown,
                             strerror(errno));
                continue;
            }
            int err = connect_bounded(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
            if (err == 0) {
                freeaddrinfo(res);
                *fd_out = fd;
                return 0;
            }
            close(fd);
            cf_notes_add(notes, CF_NOTE_ERROR, "NotifyClamd: Can't connect to clamd on %s:%s: %s", shown,
                         conf->tcp_port, strerror(err));
        }
        freeaddrinfo(res);
    }
    return -1;
}

/* Records the final outcome: one note for the log, the same text in e. */
static cf_code outcome(cf_clamd_result *res, cf_clamd_status status, cf_note_level level, cf_code code,
                       cf_err *e, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static cf_code outcome(cf_clamd_result *res, cf_clamd_status status, cf_note_level level, cf_code code,
                       cf_err *e, const char *fmt, ...)
{
    char text[CF_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    res->status = status;
    cf_notes_add(&res->notes, level, "%s", text);
    if (code == CF_OK)
        return CF_OK;
    return cf_err_set(e, code, "%s", text);
}

/* Talks to the connected socket: one send of RELOAD\0, one bounded read. */
static cf_code reload(int fd, int timeout_ms, cf_clamd_result *res, cf_err *e)
{
    static const char cmd[] = "RELOAD"; /* sizeof includes the NUL: 7 bytes (§6.3) */
    ssize_t w;
    do
        w = send(fd, cmd, sizeof(cmd), MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (wait_fd(fd, POLLOUT, now_ms() + timeout_ms) > 0)
            w = send(fd, cmd, sizeof(cmd), MSG_NOSIGNAL);
    }
    if (w != (ssize_t)sizeof(cmd))
        return outcome(res, CF_CLAMD_SEND_FAILED, CF_NOTE_ERROR, CF_ENET, e,
                       "NotifyClamd: Could not write to clamd socket: %s",
                       w < 0 ? strerror(errno) : "short write");

    char buf[CLAMD_ANSWER_MAX + 1];
    ssize_t r = 0;
    int ready = wait_fd(fd, POLLIN, now_ms() + timeout_ms);
    if (ready == 0) {
        return outcome(res, CF_CLAMD_TIMEOUT, CF_NOTE_WARN, CF_ENET, e,
                       "Clamd was NOT notified: No answer from clamd within %d seconds", timeout_ms / 1000);
    }
    if (ready > 0) {
        do
            r = recv(fd, buf, CLAMD_ANSWER_MAX, 0);
        while (r < 0 && errno == EINTR);
    }
    /* freshclam treats a closed or failed read like RELOADING (§6.3). */
    if (r <= 0)
        return outcome(res, CF_CLAMD_NOTIFIED, CF_NOTE_INFO, CF_OK, e,
                       "Clamd successfully notified about the update.");
    buf[r] = '\0';
    /* clamd's terminator is not part of the answer; the answer ends at a NUL. */
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] == 0x7f)
            buf[i] = '?';
    }
    memcpy(res->answer, buf, n + 1);
    if (strstr(buf, "COMMAND UNAVAILABLE") != NULL)
        return outcome(res, CF_CLAMD_UNAVAILABLE, CF_NOTE_ERROR, CF_EUNSUPP, e,
                       "NotifyClamd: RELOAD command unavailable, consider enabling it in the clamd "
                       "configuration and restarting clamd.");
    if (strstr(buf, "RELOADING") == NULL)
        return outcome(res, CF_CLAMD_UNKNOWN_ANSWER, CF_NOTE_ERROR, CF_EFORMAT, e,
                       "NotifyClamd: Unknown answer from clamd: '%s'", buf);
    return outcome(res, CF_CLAMD_NOTIFIED, CF_NOTE_INFO, CF_OK, e,
                   "Clamd successfully notified about the update.");
}

cf_code cf_clamd_notify(const char *clamd_conf_path, int timeout_s, cf_clamd_result *res, cf_err *e)
{
    cf_clamd_result scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof(*res));
    if (clamd_conf_path == NULL)
        clamd_conf_path = "";
    int timeout_ms = (timeout_s > 0 ? timeout_s : CF_CLAMD_TIMEOUT_S) * 1000;

    cf_clamd_conf conf;
    cf_err perr;
    cf_err_clear(&perr);
    if (conf_read(clamd_conf_path, &conf, &perr) != CF_OK) {
        cf_notes_add(&res->notes, CF_NOTE_ERROR, "%s", perr.msg);
        return outcome(res, CF_CLAMD_BAD_CONFIG, CF_NOTE_ERROR, perr.code, e,
                       "NotifyClamd: Can't find or parse configuration file %s", clamd_conf_path);
    }
    if (!conf.reload_enabled)
        return outcome(res, CF_CLAMD_RELOAD_DISABLED, CF_NOTE_WARN, CF_EUNSUPP, e,
                       "Clamd was NOT notified: The RELOAD command is disabled. Consider enabling "
                       "it in the clamd configuration!");

    int fd = -1;
    if (conf.local_socket[0] != '\0') {
        int err = connect_local(conf.local_socket, timeout_ms, &fd);
        if (err != 0)
            return outcome(res, CF_CLAMD_CONNECT_FAILED, CF_NOTE_WARN, CF_ENET, e,
                           "Clamd was NOT notified: Can't connect to clamd through %s: %s", conf.local_socket,
                           strerror(err));
    } else if (conf.tcp_port[0] != '\0') {
        if (connect_tcp(&conf, timeout_ms, &res->notes, &fd) != 0) {
            res->status = CF_CLAMD_CONNECT_FAILED;
            const cf_note *last = res->notes.n > 0 ? &res->notes.item[res->notes.n - 1] : NULL;
            return cf_err_set(e, CF_ENET, "%s",
                              last != NULL ? last->text : "NotifyClamd: Can't connect to clamd");
        }
    } else {
        return outcome(res, CF_CLAMD_NO_SOCKET, CF_NOTE_ERROR, CF_ENOTFOUND, e,
                       "NotifyClamd: No communication socket specified in %s", clamd_conf_path);
    }

    cf_code rc = reload(fd, timeout_ms, res, e);
    close(fd);
    return rc;
}
