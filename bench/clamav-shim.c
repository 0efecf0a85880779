/* LD_PRELOAD shim for ClamAV's own tools in bench/run.sh. libclamav (and so
 * sigtool --unpack, sigtool --run-cdiff and cl_load) accepts only databases
 * and cdiffs signed with ClamAV's keys and has no option to trust another,
 * while the benchmark's data is signed with a key made on the spot. These
 * two exported functions are libclamav's RSA checks (the CVD header's MD5
 * signature, the .info and cdiff SHA-256 signatures); answering "valid"
 * skips one RSA verification per file and leaves every other step - inflate,
 * untar, MD5/SHA-256 of the members, the cdiff edits, the signature parsing
 * of the test load - exactly as ClamAV runs it. */
int cli_versig(const char *md5, const char *dsig);
int cli_versig2(const unsigned char *sha256, const char *dsig_str, const char *n_str, const char *e_str);

int cli_versig(const char *md5, const char *dsig)
{
    (void)md5;
    (void)dsig;
    return 0; /* CL_SUCCESS */
}

int cli_versig2(const unsigned char *sha256, const char *dsig_str, const char *n_str, const char *e_str)
{
    (void)sha256;
    (void)dsig_str;
    (void)n_str;
    (void)e_str;
    return 0; /* CL_SUCCESS */
}
