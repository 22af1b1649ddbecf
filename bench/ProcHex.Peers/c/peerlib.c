/* libpeer.so: the one function every peer counts. The executable calls it through its PLT, so ltrace -c sees
 * exactly the calls the other peers see at the function itself. The bench builds it several ways (Fixture.cs) so
 * that peer_tick opens with endbr64 (-fcf-protection=branch), with push %rbp (PEER_FRAME: gcc omits the frame of a
 * leaf function even with -fno-omit-frame-pointer unless it asks for its frame address), or with whatever the
 * distribution's gcc makes of -O2 alone; it checks the first instruction with objdump. */
long peer_calls;

__attribute__((noinline)) void peer_tick(void)
{
#ifdef PEER_FRAME
    __asm__ volatile("" : : "r"(__builtin_frame_address(0)));
#endif
    __atomic_fetch_add(&peer_calls, 1, __ATOMIC_RELAXED);
}

long peer_total(void) { return __atomic_load_n(&peer_calls, __ATOMIC_RELAXED); }
