/* A library the fixture loads twice, from two directories: two objects with one basename. */
int twice_state;

int twice_function(int x)
{
    return x * 2 + twice_state++;
}
