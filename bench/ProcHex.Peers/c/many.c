/* 100 small functions and 4 threads calling all of them without a pause, until killed: the fixture for the install
   and removal time of 100 in-victim counters at once (issue 18: target 5 ms or less). */
#include <pthread.h>
#define F(n) __attribute__((noinline)) long many_##n(long x) { __asm__ volatile(""); return x + 1; }
#define F10(d) F(d##0) F(d##1) F(d##2) F(d##3) F(d##4) F(d##5) F(d##6) F(d##7) F(d##8) F(d##9)
F10(0) F10(1) F10(2) F10(3) F10(4) F10(5) F10(6) F10(7) F10(8) F10(9)
#define P(n) many_##n,
#define P10(d) P(d##0) P(d##1) P(d##2) P(d##3) P(d##4) P(d##5) P(d##6) P(d##7) P(d##8) P(d##9)
static long (*const all[])(long) = { P10(0) P10(1) P10(2) P10(3) P10(4) P10(5) P10(6) P10(7) P10(8) P10(9) };
static void *run(void *unused) {
    (void)unused;
    for (long i = 0;; i++)
        for (unsigned f = 0; f < sizeof all / sizeof all[0]; f++)
            if (all[f](i) != i + 1) return 0;
}
int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, run, 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    return 1;
}
