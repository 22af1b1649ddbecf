using ProcHex.Ports;

namespace ProcHex.Backends.Fake.Tests;

/// <summary>
/// Issue 17, item 2 on the fake, for what only a fake can force: main found from <c>__libc_start_main</c>'s first
/// argument in an image whose main has no symbol, and each way of not finding it (a first argument in no object,
/// no <c>__libc_start_main</c> at all, static or dynamic), with the rendezvous reached reported, never the one asked.
/// </summary>
public sealed class MainWithoutSymbolTests
{
    private static readonly FakeLibrary Libc = new FakeLibraryBuilder("/lib/libc.so.6").Function("__libc_start_main").Build();

    /// <summary>
    /// A program whose main has no symbol (its code is <c>entry_point_of_main</c>, a name nothing looks up) and whose
    /// start code passes <paramref name="passed"/> (main's address when null) to <c>__libc_start_main</c>.
    /// </summary>
    private static FakeImage Stripped(string path, bool withLibc, bool isStatic = false, ulong? passed = null)
    {
        FakeImage? image = null;
        var builder = new FakeImageBuilder(path).Function("entry_point_of_main").Function("work", counts: "calls").Global("calls");
        builder = isStatic ? builder.Static() : builder;
        builder = withLibc ? builder.Needs(Libc) : builder;
        return image = builder.Program(_ =>
        [
            .. withLibc ? [Steps.CallWith("__libc_start_main", passed ?? image!.AddressOf("entry_point_of_main"), "libc.so.6")] : Array.Empty<FakeStep>(),
            Steps.Call("entry_point_of_main", "a.out"),
            Steps.Loop(3, Steps.Call("work", "a.out")),
            Steps.Exit(0),
        ]).Build();
    }

    private static (Rendezvous? Reached, ulong Pc, List<MilestoneKind> Milestones, int Hits, ExitStatus? Exit, ulong LibcStartMain) CreateAtMain(FakeImage image)
    {
        var kernel = new FakeKernel();
        kernel.Register(image);
        return DeterministicScheduler.Run(
            async () =>
            {
                await using var session = new ProcHexSession(new FakeTracer(kernel));
                var milestones = new List<MilestoneKind>();
                session.MilestoneReached = m => milestones.Add(m.Kind);
                var handle = await session.CreateAsync(image.Path, [image.Path], new CreateOptions { StopAt = Rendezvous.Main });
                var pc = handle.Threads[0].ProgramCounter ?? 0;
                var parkedMilestones = milestones.ToList();
                var libcStartMain = handle.Objects.Any(o => o.Name == "libc.so.6") ? handle.LookupSymbol("libc.so.6`__libc_start_main") : 0;
                var hits = 0;
                await session.SetBreakpointAsync(handle, "a.out`work", _ => hits++);
                session.Continue(handle);
                var note = await session.WaitForNotificationAsync(Timeout.InfiniteTimeSpan);
                return (handle.Rendezvous, pc, parkedMilestones, hits, note?.Exit, libcStartMain);
            },
            kernel,
            seed: 1);
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public void Main_without_a_symbol_is_found_from_libc_start_mains_first_argument()
    {
        var image = Stripped("/bin/stripped", withLibc: true);

        var (reached, pc, milestones, hits, exit, _) = CreateAtMain(image);

        Assert.Equal(Rendezvous.Main, reached);
        Assert.Equal(image.AddressOf("entry_point_of_main"), pc);
        Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit, MilestoneKind.Main], milestones);
        Assert.Equal((3, ExitStatus.FromCode(0)), (hits, exit));
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public void A_first_argument_in_no_object_parks_at_libc_start_main_reported_as_postinit_with_no_main_milestone()
    {
        var image = Stripped("/bin/garbled", withLibc: true, passed: 0xdead_0000);

        var (reached, pc, milestones, hits, exit, libcStartMain) = CreateAtMain(image);

        Assert.Equal(Rendezvous.Postinit, reached);
        Assert.Equal(libcStartMain, pc);
        Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit], milestones);
        Assert.Equal((3, ExitStatus.FromCode(0)), (hits, exit));
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public void A_dynamic_image_without_main_or_libc_start_main_stops_at_postinit()
    {
        var image = Stripped("/bin/nolibc", withLibc: false);

        var (reached, pc, milestones, hits, exit, _) = CreateAtMain(image);

        Assert.Equal(Rendezvous.Postinit, reached);
        Assert.Equal(FakeDynamicLinker.Default.EventAddress(RtldEventKind.Postinit), pc);
        Assert.Equal([MilestoneKind.Preinit, MilestoneKind.Postinit], milestones);
        Assert.Equal((3, ExitStatus.FromCode(0)), (hits, exit));
    }

    [Fact]
    [Trait("Spec", "S18")]
    [Trait("Issue", "17")]
    public void A_static_image_without_main_or_libc_start_main_stops_at_create()
    {
        var image = Stripped("/bin/static-nolibc", withLibc: false, isStatic: true);

        var (reached, pc, milestones, hits, exit, _) = CreateAtMain(image);

        Assert.Equal(Rendezvous.Create, reached);
        Assert.Equal(image.Entry, pc);
        Assert.Empty(milestones);
        Assert.Equal((3, ExitStatus.FromCode(0)), (hits, exit));
    }
}
