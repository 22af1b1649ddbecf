using ProcHex.Ports;

namespace ProcHex.Backends.Fake;

/// <summary>
/// The dynamic linker of dynamic images: mapped at a fixed base, it maps the needed libraries, reports
/// preinit and postinit, then jumps to the executable's entry; dlopen/dlclose report library-list activity.
/// Each event executes the instruction at its event address, so a breakpoint planted there stops the victim.
/// </summary>
public sealed class FakeDynamicLinker
{
    private const string SharedEvent = "_dl_debug_state";

    /// <summary>A dynamic linker image for fake programs.</summary>
    /// <param name="path">Its path (PT_INTERP of the programs that use it).</param>
    /// <param name="baseAddress">Where it is mapped.</param>
    /// <param name="sharedEventAddress">True: all three rtld events share one address, as glibc's _dl_debug_state does.</param>
    /// <param name="reportsEvents">What its rtld agent answers to enabling events.</param>
    public FakeDynamicLinker(string path = "/lib/ld-fake.so.1", ulong baseAddress = 0x7ff0_0000_0000, bool sharedEventAddress = false, bool reportsEvents = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var layout = new FakeObjectLayout();
        layout.Function("_dl_preinit", null);
        layout.Function("_dl_postinit", null);
        layout.Function(SharedEvent, null);
        File = layout.Build(path, 0, "_dl_start", StableHash.Of(path));
        BaseAddress = baseAddress;
        SharedEventAddress = sharedEventAddress;
        ReportsEvents = reportsEvents;
    }

    /// <summary>Distinct addresses per event, like illumos rtld_db.</summary>
    public static FakeDynamicLinker Default { get; } = new();

    /// <summary>The linker's path.</summary>
    public string Path => File.Path;

    /// <summary>Where the linker is mapped in every process that uses it.</summary>
    public ulong BaseAddress { get; }

    /// <summary>All events on one address (glibc's r_brk): the core must ask which event it was.</summary>
    public bool SharedEventAddress { get; }

    /// <summary>What <see cref="IRtldAgent.EnableEvents"/> answers.</summary>
    public bool ReportsEvents { get; }

    /// <summary>The linker's entry point, where a dynamic program starts.</summary>
    public ulong Entry => BaseAddress + File.TextStart;

    internal FakeObjectFile File { get; }

    /// <summary>The address of the breakpoint for rtld event <paramref name="kind"/>.</summary>
    /// <param name="kind">Preinit, postinit or a dlopen/dlclose change.</param>
    public ulong EventAddress(RtldEventKind kind) => BaseAddress + File.Symbols[SharedEventAddress ? SharedEvent : kind switch
    {
        RtldEventKind.Preinit => "_dl_preinit",
        RtldEventKind.Postinit => "_dl_postinit",
        _ => SharedEvent,
    }];
}
