/* Size bounds applied to untrusted input (formats.md §1.4, §5.1, §6.3). Every
 * parser checks against one of these before it allocates or loops. */
#ifndef CLAMFRESH_LIMITS_H
#define CLAMFRESH_LIMITS_H

#define CF_HDR_SIZE 512                           /* CVD/CLD header */
#define CF_MAX_DB_BYTES (1024UL * 1024 * 1024)    /* a whole CVD/CLD file, or its unpacked tar */
#define CF_MAX_MEMBERS 4096                       /* tar members in one database */
#define CF_MAX_NAME 99                            /* tar member name (ClamAV writes <= 99) */
#define CF_MAX_CDIFF_BYTES (64UL * 1024 * 1024)   /* a .cdiff file */
#define CF_MAX_SCRIPT_BYTES (512UL * 1024 * 1024) /* a decompressed cdiff script */
#define CF_MAX_MOVE_BYTES (64UL * 1024 * 1024)    /* MOVEd lines held at once (patch.h) */
#define CF_MAX_INFO_BYTES (4UL * 1024 * 1024)     /* a .info manifest */
#define CF_MAX_INFO_LINE 8192                     /* FILEBUFF */
#define CF_MAX_SIGN_BYTES (1024UL * 1024)         /* a .sign file */
#define CF_MAX_CONF_LINE 1024

#endif
