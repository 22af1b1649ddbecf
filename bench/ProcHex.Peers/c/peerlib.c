/* libpeer.so: the one function every peer counts. The executable calls it through its PLT, so ltrace -c sees
 * exactly the calls the other peers see at the function itself. Built with -fcf-protection=branch so its first
 * instruction is endbr64, which ProcHex emulates (the bench checks that with objdump). */
long peer_calls;

__attribute__((noinline)) void peer_tick(void)
{
    __atomic_fetch_add(&peer_calls, 1, __ATOMIC_RELAXED);
}

long peer_total(void) { return __atomic_load_n(&peer_calls, __ATOMIC_RELAXED); }
