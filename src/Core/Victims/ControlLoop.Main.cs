using ProcHex.Breakpoints;
using ProcHex.Ports;

namespace ProcHex.Victims;

/// <summary>
/// S18: where main is, for the main rendezvous and milestone, with or without a <c>main</c> symbol.
/// </summary>
/// <remarks>
/// <para>In order, as dtrace-utils does it (<c>dt_proc.c</c>, <c>dt_break_libc_start_main</c>), cheapest and surest
/// first: the executable's own <c>main</c> symbol; else, once the initial libraries are mapped (preinit), a
/// breakpoint on <c>__libc_start_main</c>, whose first argument is main whatever the executable is (stripped, PIE or
/// not, main in a shared library: the C runtime passes it, glibc and musl alike); else, and for a static executable
/// straight away, main as the entry code passes it (<see cref="ITracedProcess.TryFindMainFromEntryCode"/>).</para>
/// <para>When none of these finds it, the main request becomes the closest rendezvous before main that is still
/// ahead: create for a static executable (nothing else comes), postinit for a dynamic one. The victim records
/// where it actually parked (<see cref="Victim.RendezvousReached"/>) and no Main milestone is reported: nothing
/// claims main was reached when it was not.</para>
/// </remarks>
internal sealed partial class ControlLoop
{
    private const string LibcStartMain = "__libc_start_main";

    private MainSearch _mainSearch;

    private enum MainSearch
    {
        /// <summary>Main is planted, was not found, or is not looked for (a grab: main ran long ago).</summary>
        Settled,

        /// <summary>A dynamic executable without a main symbol: <c>__libc_start_main</c> is looked up at preinit.</summary>
        AwaitingLibraries,

        /// <summary>A breakpoint at <c>__libc_start_main</c> waits for its first argument.</summary>
        AwaitingLibcStartMain,
    }

    /// <summary>At attach and after an exec: plants main by its symbol, or starts the search without one.</summary>
    private void FindMain(bool afterExec)
    {
        _mainSearch = MainSearch.Settled;
        bool hasMain;
        ulong main;
        try
        {
            hasMain = Process.Symbols.TryLookup("a.out", "main", out main);
        }
        catch (TracerException ex)
        {
            // The image cannot be read: a victim that exec'd a program its (unprivileged) tracer may not read, whose
            // /proc files the kernel then gives to root, or one that died. Like any failed port call: log it and
            // carry on, the next wait says why (lost, S2, or exited); no fallback stop is made up meanwhile.
            Log.OperationFailed(_victim.Logger, _victim.Pid, "look up main", ex.Message);
            return;
        }

        if (hasMain)
        {
            PlantMain(main, "the a.out`main symbol");
            return;
        }

        if (!_victim.IsCreated && !afterExec)
        {
            return;
        }

        if (_rtld is not null)
        {
            _mainSearch = MainSearch.AwaitingLibraries;
            return;
        }

        FindMainWithoutSymbol(StopEvents.Create | StopEvents.Grab, "create");
    }

    /// <summary>Preinit: the libraries that define <c>__libc_start_main</c> are mapped now.</summary>
    private void OnInitialLibraries()
    {
        if (_mainSearch != MainSearch.AwaitingLibraries)
        {
            return;
        }

        _mainSearch = MainSearch.Settled;
        // Postinit is the last rendezvous before main; without an event for it, this stop (preinit) is.
        var postinit = _rtld?.TryGetEventAddress(RtldEventKind.Postinit, out _) == true;
        FindMainWithoutSymbol(postinit ? StopEvents.Postinit : StopEvents.Preinit, postinit ? "postinit" : "preinit");
    }

    private void FindMainWithoutSymbol(StopEvents instead, string insteadName)
    {
        // Only an executable that calls __libc_start_main (a relocation names it) waits for it: one with an entry of
        // its own (-nostartfiles, a runtime's own _start) never gets there, and would run to its end unparked.
        if (CallsLibcStartMain() && TryLookup(null, LibcStartMain) is { } start)
        {
            _mainSearch = MainSearch.AwaitingLibcStartMain;
            _victim.Breakpoints.Add(start, SiteRoles.LibcStartMain, client: null, plant: _victim.Lifecycle.MayWriteTraps);
            Log.MainSearch(_victim.Logger, _victim.Pid, "no main symbol: breaking at __libc_start_main for its first argument");
            return;
        }

        if (TryMainFromEntryCode() is { } main)
        {
            PlantMain(main, "the entry code");
            return;
        }

        GiveUpOnMain(instead, insteadName, "no main symbol, no __libc_start_main, entry code not recognised");
    }

    private bool CallsLibcStartMain()
    {
        try
        {
            return Process.Symbols.References("a.out", LibcStartMain) != false;
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "read the executable's relocations", ex.Message);
            return true;
        }
    }

    /// <summary>
    /// The victim is at <c>__libc_start_main</c>'s first instruction: its first argument is main. Were it unusable
    /// (not in any mapped object), the entry code is tried; failing that the victim parks here, the program's
    /// constructors not yet run, which is reported as postinit (the closest rendezvous, just passed).
    /// </summary>
    private async ValueTask OnLibcStartMainAsync(BreakpointSite site, int threadId)
    {
        _victim.Breakpoints.RemoveRole(site.Address, SiteRoles.LibcStartMain, restoreText: true);
        if (_mainSearch != MainSearch.AwaitingLibcStartMain)
        {
            return;
        }

        _mainSearch = MainSearch.Settled;
        ulong argument = 0;
        try
        {
            argument = Process.ReadFirstArgument(threadId);
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "read __libc_start_main's first argument", ex.Message);
        }

        if (argument != 0 && IsMapped(argument))
        {
            PlantMain(argument, "__libc_start_main's first argument");
            return;
        }

        if (TryMainFromEntryCode() is { } main)
        {
            PlantMain(main, "the entry code");
            return;
        }

        GiveUpOnMain(StopEvents.Postinit, "postinit (at __libc_start_main)", $"__libc_start_main's first argument 0x{argument:x} is not in any object");
        await StopIfRequestedAsync(StopEvents.Postinit);
    }

    private void PlantMain(ulong address, string how)
    {
        Log.MainFound(_victim.Logger, _victim.Pid, address, how);
        _victim.Breakpoints.Add(address, SiteRoles.Main, client: null, plant: _victim.Lifecycle.MayWriteTraps);
    }

    private void GiveUpOnMain(StopEvents instead, string insteadName, string reason)
    {
        var fallback = _victim.StopMask.IsRequested(StopEvents.Main)
            ? $"the main rendezvous becomes {insteadName}"
            : "no main stop";
        Log.NoMain(_victim.Logger, _victim.Pid, reason, fallback);
        _victim.StopMask.Replace(StopEvents.Main, instead);
    }

    private ulong? TryLookup(string? objectName, string symbol)
    {
        try
        {
            return Process.Symbols.TryLookup(objectName, symbol, out var address) ? address : null;
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, $"look up {symbol}", ex.Message);
            return null;
        }
    }

    private ulong? TryMainFromEntryCode()
    {
        try
        {
            return Process.TryFindMainFromEntryCode(out var main) && IsMapped(main) ? main : null;
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "read the entry code", ex.Message);
            return null;
        }
    }

    private bool IsMapped(ulong address)
    {
        try
        {
            return Process.Symbols.TryResolve(address, out _);
        }
        catch (TracerException ex)
        {
            Log.OperationFailed(_victim.Logger, _victim.Pid, "resolve main", ex.Message);
            return false;
        }
    }

    private static Rendezvous? RendezvousOf(StopEvents why) => why switch
    {
        StopEvents.Create => Rendezvous.Create,
        StopEvents.Preinit => Rendezvous.Preinit,
        StopEvents.Postinit => Rendezvous.Postinit,
        StopEvents.Main => Rendezvous.Main,
        _ => null,
    };
}
