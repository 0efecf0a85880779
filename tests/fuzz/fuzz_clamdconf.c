/* clamd.conf as NotifyClamd reads it (cf_clamd_conf_parse). */
#include "fuzz.h"

#include "clamfresh/clamd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    cf_clamd_conf c;
    cf_err e = {0};
    memset(&c, 0, sizeof c);
    if (cf_clamd_conf_parse((const char *)data, size, "clamd.conf", &c, &e) == CF_OK) {
        CF_FUZZ_ASSERT(memchr(c.local_socket, '\0', sizeof c.local_socket) != NULL);
        CF_FUZZ_ASSERT(memchr(c.tcp_port, '\0', sizeof c.tcp_port) != NULL);
        CF_FUZZ_ASSERT(c.n_tcpaddr <= CF_CLAMD_MAX_TCPADDR);
        for (size_t i = 0; i < c.n_tcpaddr; i++)
            CF_FUZZ_ASSERT(memchr(c.tcpaddr[i], '\0', sizeof c.tcpaddr[i]) != NULL);
    } else {
        CF_FUZZ_ASSERT(e.msg[0] != '\0');
    }
    return 0;
}
