/* freshclam's test load of a new database, alone: cl_init, cl_engine_new,
 * cl_load with the options freshclam passes (phishing signatures and URLs,
 * PUA, enhanced, bytecode) and cl_engine_free. freshclam compiles nothing
 * but bytecode; with --compile the whole engine is compiled too, as
 * clamfresh's load test does. Exit 0 with the signature count on stdout
 * when the database loads. */
#include <clamav.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int compile = argc == 3 && strcmp(argv[1], "--compile") == 0;
    if (argc != 2 + compile) {
        fprintf(stderr, "usage: loadtest [--compile] DATABASE\n");
        return 2;
    }
    const char *db = argv[1 + compile];
    cl_error_t r = cl_init(CL_INIT_DEFAULT);
    if (r != CL_SUCCESS) {
        fprintf(stderr, "cl_init: %s\n", cl_strerror(r));
        return 1;
    }
    struct cl_engine *engine = cl_engine_new();
    if (!engine) {
        fprintf(stderr, "cl_engine_new failed\n");
        return 1;
    }
    unsigned int sigs = 0;
    r = cl_load(db, engine, &sigs,
                CL_DB_PHISHING | CL_DB_PHISHING_URLS | CL_DB_PUA | CL_DB_ENHANCED | CL_DB_BYTECODE);
    if (r == CL_SUCCESS && compile)
        r = cl_engine_compile(engine);
    cl_engine_free(engine);
    if (r != CL_SUCCESS) {
        fprintf(stderr, "%s: %s\n", db, cl_strerror(r));
        return 1;
    }
    printf("%u\n", sigs);
    return 0;
}
