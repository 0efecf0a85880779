#include "clamfresh/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    if ((unsigned long long)st.st_size > max) {
        close(fd);
        return cf_err_set(e, CF_ETOOBIG, "%s: %lld bytes exceeds the limit of %zu", path,
                          (long long)st.st_size, max);
    }
    out->n = 0;
    if (cf_buf_reserve(out, (size_t)st.st_size + 1) != CF_OK) {
        close(fd);
        return cf_err_set(e, CF_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (out->n > max) {
            close(fd);
            return cf_err_set(e, CF_ETOOBIG, "%s: grew beyond the limit of %zu bytes", path, max);
        }
        if (cf_buf_reserve(out, 65536) != CF_OK) {
            close(fd);
            return cf_err_set(e, CF_ENOMEM, "%s: out of memory", path);
        }
        ssize_t r = read(fd, out->p + out->n, out->cap - out->n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            close(fd);
            return cf_err_set(e, CF_EIO, "%s: read failed: %s", path, strerror(err));
        }
        if (r == 0)
            break;
        out->n += (size_t)r;
    }
    close(fd);
    if (out->n > max)
        return cf_err_set(e, CF_ETOOBIG, "%s: exceeds the limit of %zu bytes", path, max);
    return CF_OK;
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
