/* The fixture. argv: N THREADS TIMEFILE. Calls peer_tick() N times in all, on THREADS threads (1 = the main
 * thread alone; otherwise N is split over the threads, the first taking the remainder). It times its own calling
 * loop (CLOCK_MONOTONIC, from before the first call or thread start to after the last join) and writes
 * "<calls> <nanoseconds>" to TIMEFILE, so every peer is measured on the same interval whatever its start-up costs.
 * Exits 0 when libpeer counted exactly N calls, 1 otherwise. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void peer_tick(void);
long peer_total(void);

static void *run(void *p)
{
    long n = *(long *)p;
    for (long i = 0; i < n; i++) {
        peer_tick();
    }
    return 0;
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: peerfix N THREADS TIMEFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 64) {
        return 2;
    }
    long per[64];
    pthread_t t[64];
    for (int i = 0; i < threads; i++) {
        per[i] = n / threads + (i == 0 ? n % threads : 0);
    }
    long long start = now_ns();
    if (threads == 1) {
        run(&per[0]);
    } else {
        for (int i = 0; i < threads; i++) {
            pthread_create(&t[i], 0, run, &per[i]);
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i], 0);
        }
    }
    long long elapsed = now_ns() - start;
    FILE *f = fopen(argv[3], "w");
    if (f == 0) {
        return 3;
    }
    fprintf(f, "%ld %lld\n", peer_total(), elapsed);
    fclose(f);
    return peer_total() == n ? 0 : 1;
}
