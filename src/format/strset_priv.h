/* A set of short strings with O(1) expected lookup, for the duplicate and
 * membership checks of the streaming readers (at most CF_MAX_MEMBERS names). */
#ifndef CLAMFRESH_STRSET_PRIV_H
#define CLAMFRESH_STRSET_PRIV_H

#include <stddef.h>

typedef struct cf_strset {
    char **slot; /* open addressing, linear probing; NULL = free */
    size_t cap;  /* a power of two, or 0 */
    size_t n;
} cf_strset;

void cf_strset_init(cf_strset *s);
/* 1 when added (the set keeps a copy), 0 when already present, -1 out of memory. */
int cf_strset_add(cf_strset *s, const char *name);
int cf_strset_has(const cf_strset *s, const char *name);
void cf_strset_free(cf_strset *s);

#endif
