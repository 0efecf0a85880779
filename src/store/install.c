/* Crash-safe database directory (install.h). The ordering of every step is what
 * keeps a valid database in place across a kill at any instant: the new bytes
 * are durable under a private name before the rename makes them visible, and
 * stale files are only removed after the directory entry of the new file is
 * durable. */
#include "clamfresh/install.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clamfresh/fileio.h"
#include "clamfresh/image.h"

#define TEMP_RANDOM 8
#define LOCK_POLL_NS (100 * 1000 * 1000L)

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int join(char *out, size_t outsz, const char *dir, const char *name)
{
    int w = snprintf(out, outsz, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= outsz ? -1 : 0;
}

static cf_code fsync_dir(const char *dir, cf_err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_set(e, CF_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* Some file systems refuse fsync on directories; the rename is then as
     * durable as that file system makes it, which is all anyone can get. */
    if (rc != 0 && err != EINVAL && err != ENOTSUP)
        return cf_err_set(e, CF_EIO, "%s: fsync of directory failed: %s", dir, strerror(err));
    return CF_OK;
}

/* Who holds the lock on fd, or 0 when nobody does (or we cannot tell). */
static pid_t lock_holder(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
        return 0;
    return fl.l_pid;
}

cf_code cf_install_lock(const char *dbdir, unsigned timeout_s, cf_dblock *lk, pid_t *holder, cf_err *e)
{
    lk->fd = -1;
    lk->acquired = 0;
    if (holder)
        *holder = 0;
    if (join(lk->path, sizeof lk->path, dbdir, CF_LOCK_NAME) != 0)
        return cf_err_set(e, CF_EINVAL, "%s: database directory path too long", dbdir);
    int fd = open(lk->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return cf_err_set(e, CF_EIO, "Can't open lock file %s: %s", lk->path, strerror(errno));
    double start = mono_now();
    pid_t who = 0;
    for (;;) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        if (fcntl(fd, F_SETLK, &fl) == 0)
            break;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            int err = errno;
            close(fd);
            return cf_err_set(e, CF_EIO, "Can't lock %s: %s", lk->path, strerror(err));
        }
        pid_t w = lock_holder(fd);
        if (w > 0)
            who = w;
        if (mono_now() - start >= (double)timeout_s) {
            close(fd);
            if (holder)
                *holder = who;
            return cf_err_set(
                e, CF_EIO,
                "Another clamfresh or freshclam update is running in %s (lock held by PID %ld); "
                "giving up after %u seconds.",
                dbdir, (long)who, timeout_s);
        }
        struct timespec ts = {0, LOCK_POLL_NS};
        nanosleep(&ts, NULL);
    }
    /* The PID in the file is for people looking at the directory; the lock itself
     * is what counts (F_GETLK gives the live holder). */
    char pidtxt[32];
    int len = snprintf(pidtxt, sizeof pidtxt, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pidtxt, (size_t)len, 0) != len) {
        /* A lock file we cannot annotate still locks. */
    }
    lk->fd = fd;
    lk->acquired = time(NULL);
    return CF_OK;
}

void cf_install_unlock(cf_dblock *lk)
{
    if (lk->fd >= 0) {
        struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        (void)fcntl(lk->fd, F_SETLK, &fl);
        close(lk->fd);
    }
    lk->fd = -1;
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int cf_install_is_temp(const char *name)
{
    size_t n = strlen(name);
    /* ".<name>.<8 random>.tmp" */
    if (n < 1 + 1 + 1 + TEMP_RANDOM + 4 || name[0] != '.' || strcmp(name + n - 4, ".tmp") != 0)
        return 0;
    const char *r = name + n - 4 - TEMP_RANDOM;
    if (r[-1] != '.')
        return 0;
    for (int i = 0; i < TEMP_RANDOM; i++)
        if (!is_alnum(r[i]))
            return 0;
    return 1;
}

static void random_suffix(char out[TEMP_RANDOM + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[TEMP_RANDOM];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* O_EXCL still guarantees we never write into someone else's file. */
        unsigned long x = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
        for (int i = 0; i < TEMP_RANDOM; i++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            raw[i] = (unsigned char)(x >> 33);
        }
    }
    for (int i = 0; i < TEMP_RANDOM; i++)
        out[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
    out[TEMP_RANDOM] = '\0';
}

cf_code cf_install_file(const char *dbdir, const char *name, const void *data, size_t n, cf_err *e)
{
    if (!cf_name_ok(name))
        return cf_err_set(e, CF_EINVAL, "refusing to install a file named '%s'", name);
    char target[4096], tmp[4096];
    if (join(target, sizeof target, dbdir, name) != 0)
        return cf_err_set(e, CF_EINVAL, "%s: path too long", dbdir);
    int fd = -1;
    for (int tries = 0; tries < 16 && fd < 0; tries++) {
        char rnd[TEMP_RANDOM + 1];
        random_suffix(rnd);
        int w = snprintf(tmp, sizeof tmp, "%s/.%s.%s.tmp", dbdir, name, rnd);
        if (w < 0 || (size_t)w >= sizeof tmp)
            return cf_err_set(e, CF_EINVAL, "%s: path too long", dbdir);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno != EEXIST)
            return cf_err_set(e, CF_EIO, "Can't create %s: %s", tmp, strerror(errno));
    }
    if (fd < 0)
        return cf_err_set(e, CF_EIO, "Can't create a temporary file in %s", dbdir);
    cf_code rc = cf_fd_write_all(fd, data, n, e);
    if (rc != CF_OK)
        cf_err_prefix(e, "%s: ", tmp);
    if (rc == CF_OK && fsync(fd) != 0)
        rc = cf_err_set(e, CF_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == CF_OK)
        rc = cf_err_set(e, CF_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (rc == CF_OK && rename(tmp, target) != 0)
        rc = cf_err_set(e, CF_EIO, "Can't rename %s to %s: %s", tmp, target, strerror(errno));
    if (rc != CF_OK) {
        unlink(tmp);
        return rc;
    }
    return fsync_dir(dbdir, e);
}

/* "<db>-" prefix and ".sign" suffix. */
static int is_db_sign(const char *name, const char *db)
{
    size_t dl = strlen(db), n = strlen(name);
    return n > dl + 1 + 5 && strncmp(name, db, dl) == 0 && name[dl] == '-' &&
           strcmp(name + n - 5, ".sign") == 0;
}

/* The name checks shared by both ways of installing a database. */
static cf_code db_names(const char *db, const char *ext, char name[256], char other[256], cf_err *e)
{
    int cvd = strcmp(ext, "cvd") == 0;
    if ((!cvd && strcmp(ext, "cld") != 0) || !cf_name_ok(db) || strchr(db, '.') || strchr(db, '-'))
        return cf_err_set(e, CF_EINVAL, "refusing to install database '%s' as .%s", db, ext);
    snprintf(name, 256, "%s.%s", db, ext);
    snprintf(other, 256, "%s.%s", db, cvd ? "cld" : "cvd");
    return CF_OK;
}

/* The signature goes first: beside the old CVD it names another version and is
 * ignored, so a crash right after leaves a consistent directory. */
static cf_code put_sign(const char *dbdir, const char *db, const char *ext, const void *sign, size_t sign_len,
                        uint32_t version, char keep[256], cf_err *e)
{
    keep[0] = '\0';
    if (!sign || strcmp(ext, "cvd") != 0)
        return CF_OK;
    snprintf(keep, 256, "%s-%u.cvd.sign", db, (unsigned)version);
    return cf_install_file(dbdir, keep, sign, sign_len, e);
}

/* After the new file is in place: the other container and every other
 * <db>-*.sign are stale. Failing to remove one does not undo the install. */
static cf_code drop_stale(const char *dbdir, const char *db, const char *other, const char *keep,
                          int *stale_err, cf_err *e)
{
    int failed = 0, removed = 0;
    char path[4096];
    if (join(path, sizeof path, dbdir, other) == 0) {
        if (unlink(path) == 0)
            removed = 1;
        else if (errno != ENOENT)
            failed = 1, cf_err_set(e, CF_EIO, "Can't remove stale %s: %s", path, strerror(errno));
    }
    DIR *d = opendir(dbdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!is_db_sign(de->d_name, db) || strcmp(de->d_name, keep) == 0 ||
                join(path, sizeof path, dbdir, de->d_name) != 0)
                continue;
            if (unlink(path) == 0)
                removed = 1;
            else if (errno != ENOENT)
                failed = 1, cf_err_set(e, CF_EIO, "Can't remove stale %s: %s", path, strerror(errno));
        }
        closedir(d);
    }
    /* The install itself is synced already; only removals need another sync. */
    cf_err dir_err = {0};
    if (removed && fsync_dir(dbdir, &dir_err) != CF_OK && !failed) {
        failed = 1;
        *e = dir_err;
    }
    if (failed && stale_err)
        *stale_err = 1;
    if (!failed)
        cf_err_clear(e);
    return CF_OK;
}

cf_code cf_install_db(const char *dbdir, const char *db, const char *ext, const void *data, size_t n,
                      const void *sign, size_t sign_len, uint32_t version, int *stale_err, cf_err *e)
{
    if (stale_err)
        *stale_err = 0;
    char name[256], other[256], keep[256];
    cf_code rc = db_names(db, ext, name, other, e);
    if (rc == CF_OK)
        rc = put_sign(dbdir, db, ext, sign, sign_len, version, keep, e);
    if (rc == CF_OK)
        rc = cf_install_file(dbdir, name, data, n, e);
    if (rc != CF_OK)
        return rc;
    return drop_stale(dbdir, db, other, keep, stale_err, e);
}

cf_code cf_install_file_commit(const char *dbdir, const char *name, const char *staged, cf_err *e)
{
    char target[4096];
    if (!cf_name_ok(name))
        return cf_err_set(e, CF_EINVAL, "refusing to install a file named '%s'", name);
    if (join(target, sizeof target, dbdir, name) != 0)
        return cf_err_set(e, CF_EINVAL, "%s: path too long", dbdir);
    if (rename(staged, target) != 0)
        return cf_err_set(e, CF_EIO, "Can't rename %s to %s: %s", staged, target, strerror(errno));
    return fsync_dir(dbdir, e);
}

cf_code cf_install_db_commit(const char *dbdir, const char *db, const char *ext, const char *staged,
                             const void *sign, size_t sign_len, uint32_t version, int *stale_err, cf_err *e)
{
    if (stale_err)
        *stale_err = 0;
    char name[256], other[256], keep[256], target[4096];
    cf_code rc = db_names(db, ext, name, other, e);
    if (rc != CF_OK)
        return rc;
    if (join(target, sizeof target, dbdir, name) != 0)
        return cf_err_set(e, CF_EINVAL, "%s: path too long", dbdir);
    /* The staged file is already fsynced by whoever wrote it; a rename makes it
     * the database in one step, and only the directory entry needs syncing. */
    rc = put_sign(dbdir, db, ext, sign, sign_len, version, keep, e);
    if (rc != CF_OK)
        return rc;
    if (rename(staged, target) != 0)
        return cf_err_set(e, CF_EIO, "Can't rename %s to %s: %s", staged, target, strerror(errno));
    rc = fsync_dir(dbdir, e);
    if (rc != CF_OK)
        return rc;
    return drop_stale(dbdir, db, other, keep, stale_err, e);
}

static int is_freshclam_tmpdir(const char *name)
{
    if (strncmp(name, "tmp.", 4) != 0 || name[4] == '\0')
        return 0;
    for (const char *p = name + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return 0;
    return 1;
}

/* Removes a directory tree without following symlinks out of it. */
static int rmtree_at(int parent, const char *name, int depth)
{
    if (depth > 16)
        return -1;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return unlinkat(parent, name, 0);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            rmtree_at(fd, de->d_name, depth + 1);
        else
            unlinkat(fd, de->d_name, 0);
    }
    closedir(d);
    return unlinkat(parent, name, AT_REMOVEDIR);
}

cf_code cf_install_cleanup(const char *dbdir, time_t older_than, void (*report)(void *arg, const char *name),
                           void *arg, cf_err *e)
{
    int dfd = open(dbdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return cf_err_set(e, CF_EIO, "%s: cannot open directory: %s", dbdir, strerror(errno));
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return cf_err_set(e, CF_EIO, "%s: cannot read directory: %s", dbdir, strerror(errno));
    }
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (cf_install_is_temp(de->d_name) && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            int gone = S_ISDIR(st.st_mode) ? rmtree_at(dfd, de->d_name, 0) : unlinkat(dfd, de->d_name, 0);
            if (gone == 0) {
                removed++;
                if (report)
                    report(arg, de->d_name);
            }
        } else if (is_freshclam_tmpdir(de->d_name) && S_ISDIR(st.st_mode) && st.st_mtime < older_than) {
            if (rmtree_at(dfd, de->d_name, 0) == 0) {
                removed++;
                if (report)
                    report(arg, de->d_name);
            }
        }
    }
    closedir(d);
    if (removed)
        return fsync_dir(dbdir, e);
    return CF_OK;
}

cf_code cf_install_prune(const char *dbdir, const char *const *keep, size_t nkeep,
                         void (*report)(void *arg, const char *name), void *arg, cf_err *e)
{
    DIR *d = opendir(dbdir);
    if (!d)
        return cf_err_set(e, CF_EIO, "%s: cannot read directory: %s", dbdir, strerror(errno));
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        const char *ext = strstr(nm, ".cvd");
        const char *ext2 = strstr(nm, ".cld");
        if (!ext || (ext2 && ext2 < ext))
            ext = ext2;
        if (!ext || cf_install_is_temp(nm))
            continue;
        const char *dash = strchr(nm, '-');
        size_t blen = dash ? (size_t)(dash - nm) : (size_t)(ext - nm);
        int wanted = 0;
        for (size_t i = 0; i < nkeep && !wanted; i++)
            wanted = strlen(keep[i]) >= blen && strncmp(keep[i], nm, blen) == 0;
        if (wanted)
            continue;
        if (report)
            report(arg, nm);
        char path[4096];
        if (join(path, sizeof path, dbdir, nm) == 0 && unlink(path) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        return fsync_dir(dbdir, e);
    return CF_OK;
}
