#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "usage: %s [OPTION]...\n", argv[0]);
    return 2;
}
