/* ctrace: the smallest ptrace breakpoint counter we could write, the practical limit of ptrace with two stops
 * per hit, or with one (--emulate). argv: [--emulate] MAIN_OFFSET LIBRARY FUNC_OFFSET PROGRAM [ARGS...]; offsets are
 * nm's (the load bias is added).
 *
 * --emulate (issue 19's one-stop peer): when the function opens with endbr64 or push %rbp, a hit never takes the
 * int3 out: the tracer does what the instruction would (endbr64: nothing; push %rbp: rsp -= 8, rbp stored there)
 * and continues after it, so a hit is one stop, GETREGS, (POKEDATA,) SETREGS, CONT, and exact on any number of
 * threads. Any other opening is stepped as below.
 *
 * Plain step-over, per hit: the thread stops at int3; restore the original bytes, rewind the PC,
 * PTRACE_SINGLESTEP, wait for that thread's step trap, put the int3 back, PTRACE_CONT. Threads are followed with
 * PTRACE_O_TRACECLONE and waited for with waitpid(-1, __WALL).
 *
 * The race it accepts: while one thread is single-stepped the original instruction is in the text and the other
 * threads keep running, so a thread that enters the function in that window runs it without trapping and the
 * hit is lost. Stopping every other thread around the step would close it (ProcHex's plain path does) at the
 * cost of more stops per hit; this tracer does not, so with several threads it may count short, and the bench
 * reports that. Single-threaded it is exact.
 *
 * Prints "hits N" on stdout; exits with the program's status. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(99);
}

/* The start of the offset-0 mapping of the file whose path ends with name (the load bias of a PIE or .so). */
static unsigned long base_of(pid_t pid, const char *name)
{
    char path[64], line[PATH_MAX + 128];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (f == 0) {
        die("maps");
    }
    unsigned long found = 0;
    size_t len = strlen(name);
    while (fgets(line, sizeof line, f) != 0) {
        unsigned long start, offset;
        char file[PATH_MAX] = "";
        if (sscanf(line, "%lx-%*x %*s %lx %*s %*d %s", &start, &offset, file) == 3 && offset == 0) {
            size_t fl = strlen(file);
            if (fl >= len && strcmp(file + fl - len, name) == 0 && (fl == len || file[fl - len - 1] == '/')) {
                found = start;
                break;
            }
        }
    }
    fclose(f);
    return found;
}

static long plant(pid_t pid, unsigned long address)
{
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, pid, (void *)address, 0);
    if (errno != 0) {
        die("peek");
    }
    if (ptrace(PTRACE_POKETEXT, pid, (void *)address, (void *)((word & ~0xffL) | 0xcc)) != 0) {
        die("poke");
    }
    return word;
}

/* Runs pid until it traps at address (which must hold an int3), then rewinds the PC onto it. */
static void run_to(pid_t pid, unsigned long address)
{
    int status;
    for (;;) {
        if (ptrace(PTRACE_CONT, pid, 0, 0) != 0) {
            die("cont");
        }
        if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
            fprintf(stderr, "ctrace: the program ended before 0x%lx\n", address);
            exit(99);
        }
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, pid, 0, &regs);
        if (WSTOPSIG(status) == SIGTRAP && regs.rip - 1 == address) {
            regs.rip = address;
            ptrace(PTRACE_SETREGS, pid, 0, &regs);
            return;
        }
    }
}

/* What --emulate does in place of the function's first instruction. */
enum opening { STEP, ENDBR64, PUSH_RBP };

int main(int argc, char **argv)
{
    int emulate = argc > 1 && strcmp(argv[1], "--emulate") == 0;
    if (emulate) {
        argv++;
        argc--;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: ctrace [--emulate] MAIN_OFFSET LIBRARY FUNC_OFFSET PROGRAM [ARGS...]\n");
        return 2;
    }
    unsigned long main_off = strtoul(argv[1], 0, 16), func_off = strtoul(argv[3], 0, 16);
    const char *library = argv[2];
    char *program = argv[4];

    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(program, &argv[4]);
        _exit(127);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) {
        die("exec");
    }
    ptrace(PTRACE_SETOPTIONS, child, 0, (void *)(long)(PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL));

    char real[PATH_MAX];
    if (realpath(program, real) == 0) {
        die("realpath");
    }
    unsigned long main_at = base_of(child, real) + main_off;
    long main_word = plant(child, main_at);
    run_to(child, main_at);
    ptrace(PTRACE_POKETEXT, child, (void *)main_at, (void *)main_word);

    unsigned long lib_base = base_of(child, library);
    if (lib_base == 0) {
        fprintf(stderr, "ctrace: %s is not loaded at main\n", library);
        return 99;
    }
    unsigned long func = lib_base + func_off;
    long original = plant(child, func);
    long trapped = (original & ~0xffL) | 0xcc;
    enum opening opening = !emulate ? STEP
        : (original & 0xffffffffL) == 0xfa1e0ff3L ? ENDBR64
        : (original & 0xffL) == 0x55 ? PUSH_RBP
        : STEP;

    long hits = 0;
    int exit_code = 99;
    ptrace(PTRACE_CONT, child, 0, 0);
    for (;;) {
        pid_t tid = waitpid(-1, &status, __WALL);
        if (tid < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (tid == child) {
                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                break;
            }
            continue;
        }
        int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
        if (sig == SIGTRAP && event == 0) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, tid, 0, &regs);
            if (regs.rip - 1 == func && opening != STEP) {
                hits++;
                if (opening == PUSH_RBP) {
                    regs.rsp -= 8;
                    ptrace(PTRACE_POKEDATA, tid, (void *)regs.rsp, (void *)regs.rbp);
                    regs.rip = func + 1;
                } else {
                    regs.rip = func + 4;
                }
                ptrace(PTRACE_SETREGS, tid, 0, &regs);
            } else if (regs.rip - 1 == func) {
                hits++;
                ptrace(PTRACE_POKETEXT, tid, (void *)func, (void *)original);
                regs.rip = func;
                ptrace(PTRACE_SETREGS, tid, 0, &regs);
                ptrace(PTRACE_SINGLESTEP, tid, 0, 0);
                int st;
                while (waitpid(tid, &st, __WALL) == tid && WIFSTOPPED(st) && !(WSTOPSIG(st) == SIGTRAP && (st >> 16) == 0)) {
                    /* Only a signal can come before the step completes: step again, deliver it at the resume. */
                    deliver = WSTOPSIG(st) == SIGSTOP ? 0 : WSTOPSIG(st);
                    ptrace(PTRACE_SINGLESTEP, tid, 0, 0);
                }
                ptrace(PTRACE_POKETEXT, tid, (void *)func, (void *)trapped);
            }
        } else if (event == 0 && sig != SIGSTOP && sig != SIGTRAP) {
            deliver = sig;
        }
        ptrace(PTRACE_CONT, tid, 0, (void *)(long)deliver);
    }
    printf("hits %ld\n", hits);
    return exit_code;
}
