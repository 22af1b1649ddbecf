using System.Buffers.Binary;
using ProcHex.Backends.Linux.Tests.Support;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>
/// Issue 17, item 2 (S18) on real processes: the main rendezvous is main's first instruction in executables
/// without a <c>main</c> symbol (stripped PIE, non-PIE and static ones, main in a shared library, the machine's own
/// /bin/ls), and where main cannot be found the rendezvous reached is the one reported, with no Main milestone.
/// Each stripped program is a <c>strip</c>ped copy of a fixture: the same bytes at the same addresses, so the
/// unstripped original's <c>main</c> symbol says where the victim must stand.
/// </summary>
[Trait("Backend", "Linux")]
public sealed class StrippedMainTests : LinuxTestBase, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("prochex-stripped-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ProcHexSession NewSession() => new(new LinuxTracer(TestLog.Factory), new ProcHexOptions(), TestLog.Factory);

    private async Task<(ProcessHandle Handle, List<MilestoneKind> Milestones)> CreateAt(ProcHexSession session, string path, Rendezvous stopAt, params string[] args)
    {
        var milestones = new List<MilestoneKind>();
        session.MilestoneReached = m => milestones.Add(m.Kind);
        var handle = await session.CreateAsync(path, [path, .. args], new CreateOptions { StopAt = stopAt });
        TrackPid(handle.Pid);
        return (handle, milestones);
    }

    /// <summary>
    /// The fixture, or for "loop-static-pie" the loop program built as a static PIE here (a Linux toolchain's option,
    /// not every C compiler's, so not among the shared fixtures).
    /// </summary>
    private string Unstripped(string fixture)
    {
        if (fixture != "loop-static-pie")
        {
            return FixturePrograms.PathOf(fixture);
        }

        var source = Path.Combine(_dir, fixture + ".c");
        var path = Path.Combine(_dir, fixture);
        File.WriteAllText(source, """
            #include <stdlib.h>
            long calls;
            __attribute__((noinline)) void work(void) { __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED); }
            int main(int argc, char **argv) { long n = argc > 1 ? atol(argv[1]) : 0; for (long i = 0; i < n; i++) work(); return 0; }
            """);
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-static-pie", "-o", path, source);
        return path;
    }

    private string Stripped(string unstripped)
    {
        var path = Path.Combine(_dir, Path.GetFileName(unstripped) + "-stripped");
        FixturePrograms.Run("strip", "--strip-all", "-o", path, unstripped);
        Assert.DoesNotContain(" main", FixturePrograms.Run("readelf", "-W", "-s", path), StringComparison.Ordinal);
        return path;
    }

    private static async Task RunsToTheEnd(ProcHexSession session, ProcessHandle handle)
    {
        session.Continue(handle);
        var note = await session.WaitForNotificationAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((NotificationKind.Exited, 0), (note!.Kind, note.Exit!.Value.Code));
    }

    [Theory]
    [InlineData("loop", true)]
    [InlineData("loop-nopie", false)]
    [InlineData("loop-static", false)]
    [InlineData("loop-static-pie", true)]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task A_stripped_executable_stops_at_the_first_instruction_of_main(string fixture, bool pie)
    {
        var unstripped = Unstripped(fixture);
        var path = Stripped(unstripped);
        await using var session = NewSession();
        var (handle, milestones) = await CreateAt(session, path, Rendezvous.Main, "6");

        var bias = pie ? Observe.LoadBias(handle.Pid, path) : 0;
        Assert.Equal(Rendezvous.Main, handle.Rendezvous);
        Assert.Equal(bias + FixturePrograms.Symbol(unstripped, "main"), Observe.ProgramCounter(handle.Pid));
        Assert.Equal(MilestoneKind.Main, milestones[^1]);
        Assert.Throws<SymbolNotFoundException>(() => handle.LookupSymbol("a.out`main"));
        Assert.Equal(0, Observe.ReadLong(handle.Pid, bias + FixturePrograms.Symbol(unstripped, "calls")));

        var hits = 0;
        await session.SetBreakpointAsync(handle, bias + FixturePrograms.Symbol(unstripped, "work"), _ => hits++);
        await RunsToTheEnd(session, handle);
        Assert.Equal(6, hits);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task Main_defined_in_a_shared_library_is_found_through_libc_start_main()
    {
        await using var session = NewSession();
        var path = FixturePrograms.PathOf("main-in-lib");
        var (handle, milestones) = await CreateAt(session, path, Rendezvous.Main, "4");

        Assert.Equal(Rendezvous.Main, handle.Rendezvous);
        Assert.Equal(handle.LookupSymbol("libmainhere.so`main"), Observe.ProgramCounter(handle.Pid));
        Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit, MilestoneKind.Main], milestones);
        Assert.Equal(0, Observe.ReadLong(handle.Pid, handle.LookupSymbol("libmainhere.so`main_ran")));

        var hits = 0;
        await session.SetBreakpointAsync(handle, "libmainhere.so`libmainhere_work", _ => hits++);
        await RunsToTheEnd(session, handle);
        Assert.Equal(4, hits);
    }

    /// <summary>
    /// /bin/ls (stripped on Debian): where it stops is checked against the <c>lea rdi,[rip+main]</c> of its own
    /// <c>_start</c>, read here byte by byte: the route ProcHex takes (__libc_start_main's first argument) is
    /// another.
    /// </summary>
    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task The_machines_own_ls_stops_at_main()
    {
        await using var session = NewSession();
        var (handle, milestones) = await CreateAt(session, "/bin/ls", Rendezvous.Main, "/");

        Assert.Equal(Rendezvous.Main, handle.Rendezvous);
        Assert.Equal(MainFromStartCode(handle.Pid), Observe.ProgramCounter(handle.Pid));
        Assert.Equal(MilestoneKind.Main, milestones[^1]);
        await RunsToTheEnd(session, handle);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task A_static_program_whose_main_cannot_be_found_reports_the_create_rendezvous()
    {
        var source = Path.Combine(_dir, "bare-static.c");
        var path = Path.Combine(_dir, "bare-static");
        File.WriteAllText(source, "void _start(void) { __asm__ volatile(\"mov $60, %eax; xor %edi, %edi; syscall\"); }\n");
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-static", "-nostdlib", "-s", "-o", path, source);
        await using var session = NewSession();
        var (handle, milestones) = await CreateAt(session, path, Rendezvous.Main);

        Assert.Equal(Rendezvous.Create, handle.Rendezvous);
        Assert.Equal(Observe.AuxvEntry(handle.Pid), Observe.ProgramCounter(handle.Pid));
        Assert.Empty(milestones);
        await RunsToTheEnd(session, handle);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task A_string_passed_by_a_hand_written_start_is_not_taken_for_main()
    {
        // At -O2 _start is mov edi,"not main"; call say: a constant in rdi at the first call, but data, not code.
        var source = Path.Combine(_dir, "says.c");
        var path = Path.Combine(_dir, "says");
        File.WriteAllText(source, """
            __attribute__((noinline)) void say(const char *s) { __asm__ volatile("" : : "r"(s)); }
            void _start(void) { say("not main"); __asm__ volatile("mov $60, %eax; xor %edi, %edi; syscall"); }
            """);
        FixturePrograms.Run(FixturePrograms.Compiler, "-O2", "-fno-pie", "-no-pie", "-static", "-nostdlib", "-s", "-o", path, source);
        Assert.Matches(@"mov\s+\$0x[0-9a-f]+,%[er]di", FixturePrograms.Run("objdump", "-d", path));
        await using var session = NewSession();
        var (handle, milestones) = await CreateAt(session, path, Rendezvous.Main);

        Assert.Equal(Rendezvous.Create, handle.Rendezvous);
        Assert.Equal(Observe.AuxvEntry(handle.Pid), Observe.ProgramCounter(handle.Pid));
        Assert.Empty(milestones);
        await RunsToTheEnd(session, handle);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task A_dynamic_program_whose_main_cannot_be_found_reports_the_postinit_rendezvous()
    {
        // No libc anywhere (so no __libc_start_main) and an entry point that passes nothing to anyone.
        File.WriteAllText(Path.Combine(_dir, "libbare.c"), "long bare_calls;\nvoid bare(void) { bare_calls++; }\n");
        File.WriteAllText(Path.Combine(_dir, "nolibc.c"), "extern void bare(void);\nvoid _start(void) { bare(); __asm__ volatile(\"mov $60, %eax; xor %edi, %edi; syscall\"); }\n");
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-shared", "-fPIC", "-nostdlib", "-o", Path.Combine(_dir, "libbare.so"), Path.Combine(_dir, "libbare.c"));
        var path = Path.Combine(_dir, "nolibc");
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-nostdlib", "-s", "-o", path, Path.Combine(_dir, "nolibc.c"), "-L" + _dir, "-Wl,--no-as-needed", "-lbare", "-Wl,-rpath," + _dir);
        await using var session = NewSession();
        var (handle, milestones) = await CreateAt(session, path, Rendezvous.Main);

        Assert.Equal(Rendezvous.Postinit, handle.Rendezvous);
        Assert.Equal(Observe.AuxvEntry(handle.Pid), Observe.ProgramCounter(handle.Pid));
        Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit], milestones);
        Assert.Equal(0, Observe.ReadLong(handle.Pid, handle.LookupSymbol("libbare.so`bare_calls")));
        await RunsToTheEnd(session, handle);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public async Task A_program_linked_with_libc_but_entered_by_its_own_start_reports_postinit_instead_of_running_away()
    {
        // libc is loaded (so __libc_start_main exists), but the executable's own _start never calls it: waiting for
        // it would let the program run to its end unparked. No relocation of the executable names it, so main is not
        // looked for there, and the victim parks at postinit with its calls still ahead.
        File.WriteAllText(Path.Combine(_dir, "ownstart.c"),
            "#include <stdlib.h>\n#include <unistd.h>\nlong calls;\nvoid work(void) { calls++; write(1, \"w\\n\", 2); }\n" +
            "void _start(void) { work(); work(); exit(0); }\n");
        var path = Path.Combine(_dir, "ownstart");
        FixturePrograms.Run(FixturePrograms.Compiler, "-O0", "-nostartfiles", "-o", path, Path.Combine(_dir, "ownstart.c"));
        await using var session = NewSession();
        var (handle, milestones) = await CreateAt(session, path, Rendezvous.Main);

        Assert.Equal(Rendezvous.Postinit, handle.Rendezvous);
        Assert.DoesNotContain(MilestoneKind.Main, milestones);
        Assert.Equal(0, Observe.ReadLong(handle.Pid, handle.LookupSymbol("ownstart`calls")));
        var work = await session.SetBreakpointAsync(handle, "work", static _ => { });
        await RunsToTheEnd(session, handle);
        Assert.Equal(2, work.Hits);
    }

    /// <summary>glibc 2.34+ PIE start code (sysdeps/x86_64/start.S): the first <c>lea rdi,[rip+disp32]</c> after AT_ENTRY.</summary>
    private static ulong MainFromStartCode(int pid)
    {
        var entry = Observe.AuxvEntry(pid);
        var code = Observe.Memory(pid, entry, 64);
        for (var i = 0; i + 7 <= code.Length; i++)
        {
            if (code[i] == 0x48 && code[i + 1] == 0x8d && code[i + 2] == 0x3d)
            {
                return entry + (ulong)(i + 7) + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(code.AsSpan(i + 3));
            }
        }

        throw new InvalidOperationException($"no lea rdi,[rip+X] in /bin/ls's _start: {Convert.ToHexString(code)}");
    }
}
