#!/bin/sh
# ProcHex FreeBSD smoke test: checks, on a real FreeBSD 14 amd64 machine, the kernel behaviours the FreeBSD backend
# depends on (src/Backends.FreeBSD/README.md, "Kernel behaviour relied on"), then runs the backend end to end.
# Nothing in this repository has run on FreeBSD hardware; this script is how to find out.
#
# Needs: cc, root (or security.bsd.unprivileged_proc_debug=1), and for part 2 a .NET 10 SDK (lang/dotnet) and
# procfs mounted (mount -t procfs proc /proc). Run from the repository root:  sh tools/freebsd-smoke.sh
#
# Expected output of part 1, exactly (the transparent line reads "attach: transparent" with
# debug.ptrace_attach_transparent=1, and then the attach-siginfo line reads "ok attach-stop-has-no-siginfo"):
#   attach: classic
#   ok attach-stop-siginfo-has-no-sender
#   ok sigstop-from-kill-has-no-sender
#   ok pending-sigstops-coalesce
#   ok sigcont-to-trace-stopped-gives-no-wcontinued
#   ok sigcont-shows-in-ki_siglist
#   ok sigcont-reported-as-signal-stop-after-resume
#   ok sigcont-deletes-pending-sigstop
#   ok sigkill-to-trace-stopped-is-deferred
#   ok sigkill-kills-on-resume
#   ok partial-pt_io-fails-with-length-unchanged
#   ok kill-0-on-zombie-succeeds
#   ok sigurg-is-discarded
# Part 2 ends with a dotnet test summary line "Passed!  - Failed:     0" for the FreeBSD scenario suite (create,
# grab, breakpoints, fork/vfork, exec, release in all modes, S20).
set -eu
[ "$(uname -s)" = FreeBSD ] || { echo "run this on FreeBSD" >&2; exit 2; }
work=$(mktemp -d /tmp/prochex-smoke.XXXXXX)
cat > "$work/smoke.c" <<'C'
#include <sys/types.h>
#include <sys/ptrace.h>
#include <sys/sysctl.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
static void check(int ok, const char *name) { printf("%s %s\n", ok ? "ok" : "FAIL", name); if (!ok) failures++; }
static pid_t sleeper(void) { pid_t p = fork(); if (p == 0) { for (;;) pause(); } return p; }
static int wait_stop(pid_t p) { int st; if (waitpid(p, &st, 0) != p || !WIFSTOPPED(st)) return -1; return WSTOPSIG(st); }
static struct ptrace_lwpinfo info(pid_t p) { struct ptrace_lwpinfo pl; memset(&pl, 0, sizeof pl); ptrace(PT_LWPINFO, p, (caddr_t)&pl, sizeof pl); return pl; }
static int pending(pid_t p, int sig) {
	int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, p }; struct kinfo_proc kp; size_t len = sizeof kp;
	if (sysctl(mib, 4, &kp, &len, NULL, 0) == -1) return -1;
	return SIGISMEMBER(kp.ki_siglist, sig);
}
static pid_t attached(void) { pid_t p = sleeper(); usleep(100000); ptrace(PT_ATTACH, p, 0, 0); wait_stop(p); return p; }
static void cont(pid_t p, int sig) { ptrace(PT_CONTINUE, p, (caddr_t)1, sig); }

int main(void) {
	pid_t p = sleeper(); usleep(100000);
	ptrace(PT_ATTACH, p, 0, 0);
	int s = wait_stop(p); struct ptrace_lwpinfo pl = info(p);
	if (pl.pl_flags & PL_FLAG_SI) {
		printf("attach: classic\n");
		check(s == SIGSTOP && pl.pl_siginfo.si_code == 0 && pl.pl_siginfo.si_pid == 0, "attach-stop-siginfo-has-no-sender");
	} else {
		printf("attach: transparent\n");
		check(s == SIGSTOP, "attach-stop-has-no-siginfo");
	}
	cont(p, 0); usleep(100000);
	kill(p, SIGSTOP); kill(p, SIGSTOP);
	s = wait_stop(p); pl = info(p);
	check(s == SIGSTOP && pl.pl_siginfo.si_pid == 0, "sigstop-from-kill-has-no-sender");
	cont(p, 0); usleep(200000);
	int st; check(waitpid(p, &st, WNOHANG) == 0, "pending-sigstops-coalesce");
	kill(p, SIGSTOP); wait_stop(p);
	kill(p, SIGCONT); usleep(100000);
	check(waitpid(p, &st, WNOHANG | WCONTINUED) == 0, "sigcont-to-trace-stopped-gives-no-wcontinued");
	check(pending(p, SIGCONT) == 1, "sigcont-shows-in-ki_siglist");
	cont(p, 0); s = wait_stop(p); pl = info(p);
	check(s == SIGCONT && pl.pl_siginfo.si_pid == getpid(), "sigcont-reported-as-signal-stop-after-resume");
	cont(p, SIGCONT); usleep(100000);
	kill(p, SIGSTOP); kill(p, SIGCONT);
	s = wait_stop(p); check(s == SIGCONT, "sigcont-deletes-pending-sigstop");
	kill(p, SIGKILL); usleep(200000);
	check(waitpid(p, &st, WNOHANG) == 0, "sigkill-to-trace-stopped-is-deferred");
	cont(p, 0); check(waitpid(p, &st, 0) == p && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "sigkill-kills-on-resume");

	p = attached();
	long pagesz = sysconf(_SC_PAGESIZE); char buf[64];
	char *page = (char *)((((unsigned long)&main) | (pagesz - 1)) + 1);
	struct ptrace_io_desc io = { PIOD_READ_D, 0, buf, sizeof buf };
	/* The end of a mapping: find an address whose next page is unmapped by probing upward from our text. */
	for (char *a = page; a < page + 4096 * pagesz; a += pagesz) {
		io.piod_offs = a - 8; io.piod_len = sizeof buf;
		if (ptrace(PT_IO, p, (caddr_t)&io, 0) == -1 && errno == EFAULT) break;
	}
	check(io.piod_len == sizeof buf && errno == EFAULT, "partial-pt_io-fails-with-length-unchanged");
	ptrace(PT_KILL, p, 0, 0); waitpid(p, &st, 0);

	p = fork(); if (p == 0) _exit(0); usleep(200000);
	check(kill(p, 0) == 0, "kill-0-on-zombie-succeeds"); waitpid(p, &st, 0);

	p = attached(); cont(p, 0); usleep(100000); kill(p, SIGURG); usleep(100000);
	check(waitpid(p, &st, WNOHANG) == 0, "sigurg-is-discarded");
	kill(p, SIGKILL); while (waitpid(p, &st, 0) == p && WIFSTOPPED(st)) ptrace(PT_KILL, p, 0, 0);
	return failures != 0;
}
C
cc -O0 -o "$work/smoke" "$work/smoke.c"
echo "== part 1: kernel behaviour"
"$work/smoke" || { echo "kernel behaviour differs from the model: fix tests/Backends.FreeBSD.Tests/FakeKernel first"; exit 1; }
echo "== part 2: the backend end to end (scenario suite on the real kernel)"
dotnet test tests/Backends.FreeBSD.Tests --artifacts-path /tmp/art-bsd --filter "FullyQualifiedName~FreeBsdScenarios" --blame-hang-timeout 120s
