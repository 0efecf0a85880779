#include "clamfresh/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REPLACE_RANDOM 8 /* the length cf_install_is_temp expects */

/* Reads fd to its end into out, failing once more than max bytes arrived (the
 * size seen by fstat is only a hint: the file may grow while we read). */
static cf_code read_fd(int fd, const char *path, size_t max, cf_buf *out, cf_err *e)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cf_err_set(e, CF_EIO, "%s: %s", path, strerror(errno));
    if ((unsigned long long)st.st_size > max)
        return cf_err_set(e, CF_ETOOBIG, "%s: %lld bytes exceeds the limit of %zu", path,
                          (long long)st.st_size, max);
    out->n = 0;
    if (cf_buf_reserve(out, (size_t)st.st_size + 1) != CF_OK)
        return cf_err_set(e, CF_ENOMEM, "%s: out of memory", path);
    for (;;) {
        if (out->n > max)
            return cf_err_set(e, CF_ETOOBIG, "%s: grew beyond the limit of %zu bytes", path, max);
        if (cf_buf_reserve(out, 65536) != CF_OK)
            return cf_err_set(e, CF_ENOMEM, "%s: out of memory", path);
        ssize_t r = read(fd, out->p + out->n, out->cap - out->n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cf_err_set(e, CF_EIO, "%s: read failed: %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        out->n += (size_t)r;
    }
    if (out->n > max)
        return cf_err_set(e, CF_ETOOBIG, "%s: exceeds the limit of %zu bytes", path, max);
    return CF_OK;
}

cf_code cf_file_read(const char *path, size_t max, cf_buf *out, cf_err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_set(e, errno == ENOENT ? CF_ENOTFOUND : CF_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cf_err_set(e, CF_EIO, "%s: not a regular file", path);
    }
    cf_code rc = read_fd(fd, path, max, out, e);
    close(fd);
    return rc;
}

/* "a FIFO" for "<path> is a FIFO, not a regular file". */
static const char *kind_of(mode_t m)
{
    if (S_ISLNK(m))
        return "a symbolic link";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    return "not a regular file either";
}

static int not_regular(const char *path, mode_t m, cf_err *e)
{
    cf_err_set(e, CF_EUNSUPP, "%s is %s, not a regular file", path, kind_of(m));
    return -1;
}

static int open_failed(const char *path, int err, cf_err *e)
{
    if (err == ENOENT)
        cf_err_set(e, CF_ENOTFOUND, "%s: %s", path, strerror(err));
    else
        cf_err_set(e, CF_EIO, "Can't open %s: %s", path, strerror(err));
    return -1;
}

int cf_file_open_db(const char *path, int flags, mode_t mode, cf_err *e)
{
    /* O_NONBLOCK: opening a FIFO for reading returns at once instead of
     * waiting for a writer (and for writing fails with ENXIO). */
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd < 0) {
        int err = errno;
        struct stat st;
        /* ELOOP (a link refused by O_NOFOLLOW), EISDIR, ENXIO: say what is there. */
        if (err != ENOENT && lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return not_regular(path, st.st_mode, e);
        return open_failed(path, err, e);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return open_failed(path, err, e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return not_regular(path, st.st_mode, e);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(fd);
        return open_failed(path, err, e);
    }
    return fd;
}

cf_code cf_file_read_db(const char *path, size_t max, cf_buf *out, cf_err *e)
{
    cf_err local = {0};
    cf_err *er = e ? e : &local;
    int fd = cf_file_open_db(path, O_RDONLY, 0, er);
    if (fd < 0)
        return er->code;
    cf_code rc = read_fd(fd, path, max, out, e);
    close(fd);
    return rc;
}

cf_code cf_fd_write_all(int fd, const void *data, size_t n, cf_err *e)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return cf_err_set(e, CF_EIO, "write failed: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return CF_OK;
}

cf_code cf_file_write_new(const char *path, const void *data, size_t n, unsigned mode, cf_err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return cf_err_set(e, CF_EIO, "%s: cannot create: %s", path, strerror(errno));
    cf_code rc = cf_fd_write_all(fd, data, n, e);
    if (rc == CF_OK && fsync(fd) != 0)
        rc = cf_err_set(e, CF_EIO, "fsync failed: %s", strerror(errno));
    if (close(fd) != 0 && rc == CF_OK)
        rc = cf_err_set(e, CF_EIO, "close failed: %s", strerror(errno));
    if (rc != CF_OK) {
        cf_err_prefix(e, "%s: ", path);
        unlink(path);
    }
    return rc;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int cf_file_is_replace_temp(const char *entry, const char *name)
{
    size_t nl = strlen(name), el = strlen(entry);
    if (el != 1 + nl + 1 + REPLACE_RANDOM + 4 || entry[0] != '.' || strncmp(entry + 1, name, nl) != 0 ||
        entry[1 + nl] != '.' || strcmp(entry + el - 4, ".tmp") != 0)
        return 0;
    for (size_t i = 0; i < REPLACE_RANDOM; i++)
        if (!is_alnum(entry[2 + nl + i]))
            return 0;
    return 1;
}

static void random_letters(char out[REPLACE_RANDOM + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[REPLACE_RANDOM];
    if (getrandom(raw, sizeof raw, GRND_NONBLOCK) != (ssize_t)sizeof raw) {
        /* Uniqueness comes from O_EXCL; the letters only make collisions rare. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long x =
            (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 20) ^ (unsigned long)ts.tv_sec;
        for (size_t i = 0; i < sizeof raw; i++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            raw[i] = (unsigned char)(x >> 33);
        }
    }
    for (size_t i = 0; i < REPLACE_RANDOM; i++)
        out[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
    out[REPLACE_RANDOM] = '\0';
}

cf_code cf_file_replace_db(const char *dir, const char *name, const void *data, size_t n, cf_err *e)
{
    char target[4096], tmp[4096];
    int w = snprintf(target, sizeof target, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof target - REPLACE_RANDOM - 8)
        return cf_err_set(e, CF_EINVAL, "Can't create %s in %s: path too long", name, dir);
    int fd = -1, err = 0;
    for (int tries = 0; tries < 16 && fd < 0; tries++) {
        char rnd[REPLACE_RANDOM + 1];
        random_letters(rnd);
        snprintf(tmp, sizeof tmp, "%s/.%s.%s.tmp", dir, name, rnd);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        err = fd < 0 ? errno : 0;
        if (fd < 0 && err != EEXIST)
            break;
    }
    if (fd < 0)
        return cf_err_set(e, CF_EIO, "Can't create %s in %s: %s", name, dir, strerror(err));
    const unsigned char *p = data;
    size_t left = n;
    while (left > 0 && err == 0) {
        ssize_t got = write(fd, p, left);
        if (got < 0 && errno != EINTR)
            err = errno;
        else if (got > 0) {
            p += got;
            left -= (size_t)got;
        }
    }
    /* Out of space may show only at fsync or close (delayed allocation, NFS). */
    if (err == 0 && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && err == 0 && errno != EINTR)
        err = errno;
    if (err != 0) {
        unlink(tmp);
        return cf_err_set(e, CF_EIO, "Can't create %s in %s: %s", name, dir, strerror(err));
    }
    if (rename(tmp, target) != 0) {
        err = errno;
        unlink(tmp);
        return cf_err_set(e, CF_EIO, "Can't rename %s to %s: %s", tmp, target, strerror(err));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cf_err_set(e, CF_EIO, "Can't sync directory %s: %s", dir, strerror(errno));
    int rc = fsync(dfd);
    err = errno;
    close(dfd);
    /* Some file systems refuse fsync on a directory; the rename is then as
     * durable as they make it. */
    if (rc != 0 && err != EINVAL && err != ENOTSUP)
        return cf_err_set(e, CF_EIO, "Can't sync directory %s: %s", dir, strerror(err));
    return CF_OK;
}
