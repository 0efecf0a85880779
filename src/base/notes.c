#include "clamfresh/notes.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cf_notes_clear(cf_notes *notes)
{
    if (notes != NULL)
        memset(notes, 0, sizeof(*notes));
}

void cf_notes_add(cf_notes *notes, cf_note_level level, const char *fmt, ...)
{
    if (notes == NULL)
        return;
    if (notes->n >= CF_NOTES_MAX) {
        notes->dropped++;
        return;
    }
    cf_note *note = &notes->item[notes->n++];
    note->level = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note->text, sizeof(note->text), fmt, ap);
    va_end(ap);
}

const cf_note *cf_notes_find(const cf_notes *notes, cf_note_level min_level, const char *needle)
{
    if (notes == NULL || needle == NULL)
        return NULL;
    for (size_t i = 0; i < notes->n; i++) {
        if (notes->item[i].level >= min_level && strstr(notes->item[i].text, needle) != NULL)
            return &notes->item[i];
    }
    return NULL;
}
