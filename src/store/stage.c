/* Staged files and the installed databases' headers (stage.h). */
#include "clamfresh/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clamfresh/fileio.h"

cf_code cf_stage_dir(const char *path, cf_err *e)
{
    if (mkdir(path, 0700) == 0)
        return CF_OK;
    int err = errno;
    struct stat st;
    if (err == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
        return CF_OK;
    return cf_err_set(e, CF_EIO, "Can't create temporary directory %s: %s", path, strerror(err));
}

int cf_stage_create(const char *path, cf_err *e)
{
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        cf_err_set(e, CF_EIO, "Can't create %s: %s", path, strerror(errno));
    return fd;
}

int cf_stage_open(const char *path, cf_err *e)
{
    return cf_file_open_db(path, O_RDONLY, 0, e);
}

cf_code cf_stage_sync(int fd, const char *path, cf_err *e)
{
    if (fsync(fd) != 0)
        return cf_err_set(e, CF_EIO, "Can't write %s: fsync failed: %s", path, strerror(errno));
    return CF_OK;
}

cf_code cf_stage_rename(const char *from, const char *to, cf_err *e)
{
    if (rename(from, to) != 0)
        return cf_err_set(e, CF_EIO, "Can't rename %s to %s: %s", from, to, strerror(errno));
    return CF_OK;
}

void cf_stage_discard(const char *path)
{
    if (path != NULL && path[0])
        (void)unlink(path);
}

void cf_stage_close(int fd)
{
    if (fd >= 0)
        (void)close(fd);
}

int cf_stage_read_header(const char *dir, const char *name, cf_cvdhdr *h)
{
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof path)
        return 0;
    cf_err e = {0};
    /* Never through a link, never blocking on a FIFO (Hardening: local files). */
    int fd = cf_file_open_db(path, O_RDONLY, 0, &e);
    if (fd < 0)
        return 0;
    uint8_t raw[CF_HDR_SIZE];
    ssize_t got = pread(fd, raw, sizeof raw, 0);
    close(fd);
    return got == CF_HDR_SIZE && cf_cvdhdr_parse(raw, (size_t)got, h, &e) == CF_OK;
}

int cf_stage_local_header(const char *dbdir, const char *db, cf_cvdhdr *hdr, char *file)
{
    static const char *const ext[] = {"cvd", "cld"};
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s", db, ext[i]);
        if (cf_stage_read_header(dbdir, name, hdr)) {
            snprintf(file, 64, "%s", name);
            return 1;
        }
    }
    return 0;
}

int cf_stage_exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    return w > 0 && (size_t)w < sizeof path && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}
