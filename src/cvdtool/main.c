#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "usage: %s COMMAND ...\n", argv[0]);
    return 2;
}
