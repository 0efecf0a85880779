/* String set for the streaming readers (strset_priv.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strset_priv.h"

/* FNV-1a: names are short and not chosen to collide by anyone who gains from it
 * more than a slower lookup, which the member bound keeps cheap anyway. */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

void cf_strset_init(cf_strset *s)
{
    memset(s, 0, sizeof(*s));
}

static size_t find(char **slot, size_t cap, const char *name)
{
    size_t i = hash(name) & (cap - 1);
    while (slot[i] != NULL && strcmp(slot[i], name) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

int cf_strset_has(const cf_strset *s, const char *name)
{
    if (s->cap == 0)
        return 0;
    return s->slot[find(s->slot, s->cap, name)] != NULL;
}

int cf_strset_add(cf_strset *s, const char *name)
{
    if (s->cap == 0 || (s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        char **ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i] != NULL)
                ns[find(ns, ncap, s->slot[i])] = s->slot[i];
        free(s->slot);
        s->slot = ns;
        s->cap = ncap;
    }
    size_t i = find(s->slot, s->cap, name);
    if (s->slot[i] != NULL)
        return 0;
    s->slot[i] = strdup(name);
    if (s->slot[i] == NULL)
        return -1;
    s->n++;
    return 1;
}

void cf_strset_free(cf_strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    memset(s, 0, sizeof(*s));
}
