/*
 * The victim of the ProcHex scale benchmark (bench/ProcHex.Scale). Two modes, one binary:
 *
 *   scale-victim launch N   The launcher: forks N sleepers (each execs "scale-victim sleep"), reads its stdin,
 *                           and when stdin ends (or says "kill") SIGKILLs every sleeper still alive, reaps them
 *                           all, prints "reaped K" and exits. The benchmark starts the launcher with
 *                           Process.Start, so the sleepers are its grandchildren: the .NET runtime reaps the
 *                           children Process.Start made and would steal the ptrace stops of a traced child of the
 *                           tracer itself (the backend refuses to grab one). If the benchmark dies, stdin ends and
 *                           nothing is left behind; each sleeper also dies with the launcher (PR_SET_PDEATHSIG).
 *
 *   scale-victim sleep      A sleeper: prints its pid once on stdout, then once a second records CLOCK_MONOTONIC
 *                           in nanoseconds into last_tick_ns and calls tick(). The benchmark plants a breakpoint
 *                           on a.out`tick and its handler compares last_tick_ns with its own CLOCK_MONOTONIC:
 *                           hit-to-handler latency. Each sleeper's phase within the second is spread by its pid
 *                           so 1,000 sleepers do not all hit at the same instant (pass "aligned" to make them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000LL

volatile uint64_t last_tick_ns;
volatile uint64_t ticks;

__attribute__((noinline)) void tick(void)
{
    ticks++;
    __asm__ volatile("" ::: "memory");
}

static uint64_t to_ns(const struct timespec *t) { return (uint64_t)t->tv_sec * NS_PER_SEC + (uint64_t)t->tv_nsec; }

static void from_ns(uint64_t ns, struct timespec *t)
{
    t->tv_sec = (time_t)(ns / NS_PER_SEC);
    t->tv_nsec = (long)(ns % NS_PER_SEC);
}

static int sleeper(int aligned)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (write(STDOUT_FILENO, line, (size_t)n) != n) {
        return 1;
    }
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t next = to_ns(&now);
    next = aligned ? (next / NS_PER_SEC + 1) * NS_PER_SEC
                   : next + (uint64_t)(((unsigned)getpid() * 7919u) % 1000u) * 1000000u;
    for (;;) {
        struct timespec deadline;
        from_ns(next, &deadline);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR) {
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        last_tick_ns = to_ns(&now);
        tick();
        /* Keep the phase; after a long stop (grab, release) skip the missed seconds rather than burst. */
        do {
            next += NS_PER_SEC;
        } while (next <= last_tick_ns);
    }
}

static int launcher(int count, const char *mode)
{
    pid_t *pids = calloc((size_t)count, sizeof *pids);
    if (pids == NULL) {
        return 1;
    }
    pid_t parent = getpid();
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            count = i;
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) {
                _exit(1);
            }
            int in = open("/dev/null", O_RDONLY);
            if (in >= 0) {
                dup2(in, STDIN_FILENO);
                close(in);
            }
            execl("/proc/self/exe", "scale-victim", "sleep", mode, (char *)NULL);
            _exit(127);
        }
        pids[i] = pid;
    }

    /* Wait for the benchmark to let us go: end of stdin or a "kill" line. */
    char buffer[64];
    while (fgets(buffer, sizeof buffer, stdin) != NULL && strncmp(buffer, "kill", 4) != 0) {
    }

    for (int i = 0; i < count; i++) {
        kill(pids[i], SIGKILL);
    }
    int reaped = 0;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, __WALL);
        if (pid > 0) {
            reaped++;
        } else if (errno != EINTR) {
            break;
        }
    }
    printf("reaped %d\n", reaped);
    fflush(stdout);
    free(pids);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "launch") == 0) {
        return launcher(atoi(argv[2]), argc >= 4 ? argv[3] : "spread");
    }
    if (argc >= 2 && strcmp(argv[1], "sleep") == 0) {
        return sleeper(argc >= 3 && strcmp(argv[2], "aligned") == 0);
    }
    fprintf(stderr, "usage: %s launch N [spread|aligned] | sleep [spread|aligned]\n", argv[0]);
    return 2;
}
