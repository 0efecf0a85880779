/* cvdtool: make, sign, inspect, verify and patch ClamAV databases. */
#include <stdio.h>
#include <string.h>

#include "clamfresh/version.h"
#include "tool.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"info", cmd_info, "show the header, members and manifest of a CVD, CLD or cdiff"},
    {"verify", cmd_verify, "check every signature and manifest entry (exit 0 valid, 1 invalid)"},
    {"unpack", cmd_unpack, "verify a CVD or CLD and write its files into a directory"},
    {"build", cmd_build, "build a signed CVD from a directory of signature files"},
    {"diff", cmd_diff, "make a signed cdiff that turns one database version into the next"},
    {"apply", cmd_apply, "apply cdiffs to a database and write the result as a CLD"},
    {"sign", cmd_sign, "make a detached .sign file (PKCS#7) with a certificate and key"},
    {"keygen", cmd_keygen, "generate an RSA key pair for signing databases"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: cvdtool COMMAND [OPTIONS] ARGS...\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cvdtool COMMAND --help' describes each command.\n"
                 "Exit status: 0 success, 1 verification failed, 2 usage error, 3 other error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return TOOL_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("cvdtool (clamfresh) %s\n", CF_VERSION);
        return TOOL_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cvdtool: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return TOOL_USAGE;
}
