using static Interop;

namespace ProcHex.Backends.FreeBSD.Tests.FakeKernel;

/// <summary>The scenario catalogue as fake images: real x86-64 bytes at main, work and an endbr64-opened function.</summary>
public static class FakePrograms
{
    public const ulong Main = 0x400000;

    /// <summary>
    /// Opens with <c>mov %edi,-0x4(%rsp)</c> (gcc -O2's usual first instruction). Stepped: the emulator models it, but its
    /// store lands below rsp where these images map no stack (<see cref="FakeImage.StackBelowTop"/>), so the tracer
    /// falls back to PT_STEP, which the step tests need.
    /// </summary>
    public const ulong Work = 0x400100;

    /// <summary>Opens with endbr64: emulated, one stop per hit.</summary>
    public const ulong Guarded = 0x400200;

    /// <summary>An int3 the program itself contains.</summary>
    public const ulong OwnTrap = 0x400300;

    public const string Loop = "/usr/local/bin/loop";
    public const string Threads = "/usr/local/bin/threads";
    public const string Sleeper = "/usr/local/bin/sleeper";
    public const string Forker = "/usr/local/bin/fork";
    public const string Vforker = "/usr/local/bin/vfork";
    public const string Execer = "/usr/local/bin/exec";
    public const string SelfStop = "/usr/local/bin/selfstop";
    public const string Crash = "/usr/local/bin/crash";
    public const string NotExecutable = "/usr/local/bin/readme";
    public const string Libc = "/lib/libc.so.7";

    public static byte[] Text()
    {
        var text = Enumerable.Repeat((byte)0xC3, 0x400).ToArray();
        byte[] main = [0x55, 0x48, 0x89, 0xe5];
        byte[] work = [0x89, 0x7c, 0x24, 0xfc];
        byte[] guarded = [0xf3, 0x0f, 0x1e, 0xfa];
        main.CopyTo(text, 0);
        work.CopyTo(text, 0x100);
        guarded.CopyTo(text, 0x200);
        text[0x300] = 0xCC;
        return text;
    }

    public static IEnumerable<FakeStep> Calls(ulong address, int count, int thread = 0) =>
        Enumerable.Repeat<FakeStep>(new Call(address, thread), count);

    public static FakeImage Image(string path, params FakeStep[] steps) => new()
    {
        Path = path,
        Text = Text(),
        TextBase = Main,
        Entry = Main,
        Steps = steps,
        Libraries = [new FakeLibrary(Libc, [new FakeSegment(0x800200000, new byte[0x1000], 0, Kvme.KVME_PROT_READ | Kvme.KVME_PROT_EXEC)])],
    };

    /// <summary>A kernel with the whole catalogue installed; N = <paramref name="n"/>.</summary>
    public static FakeFreeBsdKernel Kernel(FakeAttach attach, int n = 5)
    {
        var kernel = new FakeFreeBsdKernel(attach);
        kernel.AddFile(Image(Loop, [new Call(Main), .. Calls(Work, n), new Exit(3)]));
        kernel.AddFile(Image(Threads,
        [
            new Call(Main), new SpawnThread(1), new SpawnThread(2),
            .. Enumerable.Range(0, n).SelectMany(i => new FakeStep[] { new Call(Work, 1), new Call(Work, 2) }),
            new EndThread(1), new EndThread(2), new Exit(0),
        ]));
        kernel.AddFile(Image(Sleeper, new Call(Main), new Block()));
        kernel.AddFile(Image(Forker, [new Call(Main), new Fork([.. Calls(Work, n), new Exit(7)]), .. Calls(Work, n), new Exit(0)]));
        kernel.AddFile(Image(Vforker, [new Call(Main), new Fork([new Exec(Loop, ["loop"])], Vfork: true), .. Calls(Work, n), new Exit(0)]));
        kernel.AddFile(Image(Execer, new Call(Main), new Call(Work), new Exec(Loop, ["loop", "5"])));
        kernel.AddFile(Image(SelfStop, new Call(Main), new Raise(Signals.SIGSTOP), new Call(Work), new Exit(0)));
        kernel.AddFile(Image(Crash, new Call(Main), new Call(Work), new Raise(Signals.SIGSEGV), new Block()));
        kernel.AddFile(new FakeImage { Path = NotExecutable, Executable = false });
        return kernel;
    }
}
