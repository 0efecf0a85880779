/* Small file helpers for the edges of the program (the pure modules never
 * touch files). */
#ifndef CLAMFRESH_FILEIO_H
#define CLAMFRESH_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

/* Reads a whole regular file; fails with CF_ETOOBIG when it exceeds max bytes.
 * Follows symbolic links: for configuration files, where a link is normal. */
cf_code cf_file_read(const char *path, size_t max, cf_buf *out, cf_err *e);

/* Creates path exclusively (O_EXCL) with mode, writes data, fsyncs and closes. */
cf_code cf_file_write_new(const char *path, const void *data, size_t n, unsigned mode, cf_err *e);

/* Writes all of data to fd, retrying short writes and EINTR. */
cf_code cf_fd_write_all(int fd, const void *data, size_t n, cf_err *e);

/* Files in DatabaseDirectory. Anyone who can write there could plant a FIFO
 * (an open or read that never returns while we hold the directory lock) or a
 * symbolic link (we would read, and copy out, a file from elsewhere), so:
 *
 * cf_file_open_db opens path with flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
 * (mode is used with O_CREAT), requires a regular file (fstat), then clears
 * O_NONBLOCK. Returns the descriptor, or -1 with e set:
 *   CF_ENOTFOUND  path does not exist;
 *   CF_EUNSUPP    path is not a regular file: "<path> is a FIFO, not a regular
 *                 file" (a symbolic link, a directory, a socket, a character
 *                 device, a block device);
 *   CF_EIO        anything else: "Can't open <path>: <reason>". */
int cf_file_open_db(const char *path, int flags, mode_t mode, cf_err *e);

/* cf_file_read with the rules of cf_file_open_db (same codes), plus
 * CF_ETOOBIG when the file exceeds max bytes. out is replaced. */
cf_code cf_file_read_db(const char *path, size_t max, cf_buf *out, cf_err *e);

/* Replaces <dir>/<name> by data atomically and durably: writes a private
 * temporary "<dir>/.<name>.<8 letters or digits>.tmp" (O_EXCL|O_NOFOLLOW, mode
 * 0644 minus umask), fsyncs it, renames it over the target (replacing a link or
 * FIFO there, never writing through it) and fsyncs dir. The temporary has the
 * shape cf_install_is_temp recognises, so a run killed half-way leaves nothing
 * that cf_install_cleanup does not remove. On failure the old file is untouched,
 * the temporary is removed and the message says what could not be done and why:
 * "Can't create <name> in <dir>: No space left on device". */
cf_code cf_file_replace_db(const char *dir, const char *name, const void *data, size_t n, cf_err *e);

/* Nonzero when entry is a temporary cf_file_replace_db makes for name. */
int cf_file_is_replace_temp(const char *entry, const char *name);

#endif
