/* freshclam's exit statuses and the texts it prints for them
 * (freshclam-behavior.md §2), shared by the updater, the engine load test, mirror
 * mode and the program. */
#ifndef CLAMFRESH_FCERR_H
#define CLAMFRESH_FCERR_H

/* freshclam's exit statuses (behavior §2). */
typedef enum cf_fc {
    CF_FC_SUCCESS = 0,
    CF_FC_UPTODATE = 1,
    CF_FC_EINIT = 2,
    CF_FC_EDIRECTORY = 3,
    CF_FC_EFILE = 4,
    CF_FC_ECONNECTION = 5,
    CF_FC_EEMPTYFILE = 6,
    CF_FC_EBADCVD = 7,
    CF_FC_ETESTFAIL = 8,
    CF_FC_ECONFIG = 9,
    CF_FC_EDBDIRACCESS = 10,
    CF_FC_EFAILEDGET = 11,
    CF_FC_EMIRRORNOTSYNC = 12,
    CF_FC_ELOGGING = 13,
    CF_FC_EFAILEDUPDATE = 14,
    CF_FC_EMEM = 15,
    CF_FC_EARG = 16,
    CF_FC_EFORBIDDEN = 17,
    CF_FC_ERETRYLATER = 18,
    CF_FC_ERROR = 19,
} cf_fc;

/* The text freshclam prints in "Database update process failed: <text>". */
const char *cf_fc_str(int code);

#endif
