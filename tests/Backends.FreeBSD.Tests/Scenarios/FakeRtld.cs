namespace ProcHex.Backends.FreeBSD.Tests.Scenarios;

/// <summary>The stub of FreeBSD's dynamic linker the kernel fake maps (a real FreeBSD has /libexec/ld-elf.so.1).</summary>
internal static class FakeRtld
{
    /// <summary>
    /// What the fake maps as ld-elf.so.1: the three symbols lib/librtld_db and our agent look for, with rtld's
    /// shapes (libexec/rtld-elf/rtld.c, sys/sys/link_elf.h). The fake's scripts "call" them as rtld would.
    /// </summary>
    private const string Source = """
        struct r_debug { int r_version; void *r_map; void (*r_brk)(void); int r_state; void *r_ldbase; };
        struct r_debug r_debug = { 1 };
        __attribute__((noinline)) void r_debug_state(struct r_debug *r, void *m) { __asm__ volatile("" ::: "memory"); }
        __attribute__((noinline)) void _r_debug_postinit(void *m) { __asm__ volatile("" ::: "memory"); }
        """;

    private static readonly Lazy<string> Compiled = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The compiled stub, beside the compiled fixtures.</summary>
    public static string StubPath => Compiled.Value;

    private static string Compile()
    {
        var stub = FixturePrograms.PathOf("rtld-stub.c");
        File.WriteAllText(stub, Source);
        var library = FixturePrograms.PathOf("ld-elf.so.1");
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-shared", "-fPIC", "-o", library, stub);
        return library;
    }
}
