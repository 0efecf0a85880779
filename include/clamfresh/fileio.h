/* Small file helpers for the edges of the program (the pure modules never
 * touch files). */
#ifndef CLAMFRESH_FILEIO_H
#define CLAMFRESH_FILEIO_H

#include <stddef.h>

#include "clamfresh/buf.h"
#include "clamfresh/err.h"

/* Reads a whole regular file; fails with CF_ETOOBIG when it exceeds max bytes. */
cf_code cf_file_read(const char *path, size_t max, cf_buf *out, cf_err *e);

/* Creates path exclusively (O_EXCL) with mode, writes data, fsyncs and closes. */
cf_code cf_file_write_new(const char *path, const void *data, size_t n, unsigned mode, cf_err *e);

/* Writes all of data to fd, retrying short writes and EINTR. */
cf_code cf_fd_write_all(int fd, const void *data, size_t n, cf_err *e);

#endif
