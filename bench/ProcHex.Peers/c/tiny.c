/* /bin/true as small as gcc makes it: the create-to-main latency fixture. */
int main(void) { return 0; }
