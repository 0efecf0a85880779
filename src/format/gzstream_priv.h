/* Shared between gzstream.c and dbscan.c. */
#ifndef CLAMFRESH_GZSTREAM_PRIV_H
#define CLAMFRESH_GZSTREAM_PRIV_H

#include <stdint.h>

#include "clamfresh/dbstream.h"

/* Offsets in messages are reported relative to the container, base bytes
 * before the gzip member (cf_cvd_read counts from the file's start). */
void cf_gzin_set_base(cf_gzin *g, uint64_t base);

#endif
