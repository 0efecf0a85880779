/* Messages that a module produces for the person running clamfresh, returned to
 * the caller instead of printed. The modules that talk to the outside world on
 * the caller's behalf (clamd, hooks) do not log themselves: the caller decides
 * where a message goes (terminal, log file, syslog) and with which prefix, and
 * tests can assert the exact texts without capturing output. */
#ifndef CLAMFRESH_NOTES_H
#define CLAMFRESH_NOTES_H

#include <stddef.h>

#include "clamfresh/err.h"

typedef enum cf_note_level {
    CF_NOTE_DEBUG,
    CF_NOTE_INFO,
    CF_NOTE_WARN,  /* printed by the caller with "WARNING: " */
    CF_NOTE_ERROR, /* printed by the caller with "ERROR: " */
} cf_note_level;

#define CF_NOTES_MAX 8

typedef struct cf_note {
    cf_note_level level;
    char text[CF_ERR_MSG]; /* without level prefix and without newline */
} cf_note;

typedef struct cf_notes {
    size_t n;       /* entries used in item[] */
    size_t dropped; /* notes that did not fit */
    cf_note item[CF_NOTES_MAX];
} cf_notes;

void cf_notes_clear(cf_notes *notes);

/* Appends a note (notes may be NULL: the note is discarded). */
void cf_notes_add(cf_notes *notes, cf_note_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* First note of at least the given level whose text contains needle, or NULL. */
const cf_note *cf_notes_find(const cf_notes *notes, cf_note_level min_level, const char *needle);

#endif
