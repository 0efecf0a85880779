/* The option table shared by the command-line parser, the config parser and the
 * help text (private to settings.c, cli.c and config.c). */
#ifndef CLAMFRESH_SETTINGS_TABLE_H
#define CLAMFRESH_SETTINGS_TABLE_H

#include <stddef.h>

#include "clamfresh/settings.h"

typedef enum cf_opt_type {
    CF_T_BOOL,   /* yes|no|true|false|1|0, case-insensitive */
    CF_T_NUMBER, /* ^[0-9]+$ into a long */
    CF_T_SIZE,   /* digits with an optional k/M/G suffix into a uint64_t; 0 = unlimited */
    CF_T_STRING, /* char * */
    CF_T_LIST,   /* cf_strlist, accumulates */
} cf_opt_type;

enum {
    CF_F_ARG_OPTIONAL = 1, /* command line: value only as --name=value */
    CF_F_DEPRECATED = 2,   /* accepted, warned about and ignored */
    CF_F_OR = 4,           /* bool that only ever turns the field on (-v / LogVerbose) */
    CF_F_OURS = 8,         /* clamfresh addition */
    CF_F_EXACT = 16,       /* command line: full name only, never an abbreviation, so that
                            * freshclam's abbreviations (--check for --checks) keep meaning
                            * what they mean in freshclam */
};

typedef struct cf_optdef {
    int id;           /* cf_opt_id, or -1 for deprecated entries */
    const char *conf; /* freshclam.conf name, or NULL */
    const char *lng;  /* long option name, or NULL */
    char shrt;        /* short option letter, or 0 */
    cf_opt_type type;
    unsigned flags;
    size_t off;       /* field in cf_settings */
    const char *dflt; /* value of an optional-argument string option given without one */
} cf_optdef;

extern const cf_optdef cf_optdefs[];
extern const size_t cf_noptdefs;

/* Looks an option up by config name or long name (both case-sensitive). */
const cf_optdef *cf_optdef_by_name(const char *name);
const cf_optdef *cf_optdef_by_short(char c);

/* Checks arg against the option's type; 1 when acceptable. */
int cf_optdef_value_ok(const cf_optdef *d, const char *arg);

/* Stores arg (already checked with cf_optdef_value_ok) unless the option was set before
 * (first setting wins; lists accumulate). from_cli marks command-line settings. */
cf_code cf_optdef_apply(cf_settings *s, const cf_optdef *d, const char *arg, int from_cli);

#endif
