using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace;

/// <summary>
/// The order in which a ptrace adapter lets a victim go (DESIGN S9), the same on every OS: stop it, take back what
/// our traps left pending, put the original text back (a detached victim that meets an int3 dies of SIGTRAP), then
/// kill or detach. The steps themselves are the adapter's (<see cref="IReleaseHooks"/>).
/// </summary>
internal static class ReleaseSequence
{
    /// <summary>Lets the victim go as <paramref name="mode"/> says, restoring the text of every trap in <paramref name="traps"/> through <paramref name="text"/>.</summary>
    public static void Run(ReleaseMode mode, TrapTable traps, ITrapText text, IReleaseHooks hooks)
    {
        if (hooks.Gone)
        {
            hooks.ForgetGone();
            return;
        }

        if (mode == ReleaseMode.Kill && hooks.KillsWithoutStopping)
        {
            hooks.Kill();
            hooks.Released(mode);
            return;
        }

        if (!hooks.StopForRelease(mode))
        {
            return;
        }

        traps.RestoreAll(text, hooks.RestoreFailed);
        if (mode == ReleaseMode.Kill)
        {
            hooks.Kill();
        }
        else
        {
            hooks.Detach(mode);
        }

        hooks.Released(mode);
    }
}
