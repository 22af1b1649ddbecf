/* A victim for the symbol tests: prints where its code really is, loads the libraries named on its command
 * line, then waits to be read and killed. The printed addresses are the truth the tables are checked against. */
#include <stdio.h>
#include <unistd.h>
#ifndef NO_DLOPEN
#include <dlfcn.h>
#endif

int probe_counter;

__attribute__((noinline)) int probe_target(int x)
{
    return x + probe_counter++;
}

int main(int argc, char **argv)
{
    printf("main %p\n", (void *)main);
    printf("probe_target %p\n", (void *)probe_target);
#ifndef NO_DLOPEN
    for (int i = 1; i < argc; i++) {
        void *handle = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
            printf("error %s\n", dlerror());
            continue;
        }
        printf("lib %s %p\n", argv[i], dlsym(handle, "twice_function"));
    }
#endif
    printf("ready\n");
    fflush(stdout);
    sleep(600);
    return probe_target(argc);
}
