using ProcHex.Ports;

namespace ProcHex;

/// <summary>
/// An interrupted call (<see cref="TracerErrorKind.Interrupted"/>) is not a failure: it is retried a few times before it counts as one.
/// The state-passing shape keeps the breakpoint hot path free of closure allocations.
/// </summary>
internal static class Retry
{
    private const int Attempts = 5;

    /// <summary>True when <paramref name="ex"/> is an interrupted call that may be tried again after <paramref name="attempt"/> tries.</summary>
    public static bool MayRetry(TracerException ex, int attempt) => ex.Kind == TracerErrorKind.Interrupted && attempt < Attempts;

    /// <summary>
    /// For calls whose failure harms the victim or the session (putting the original text back, waking a control
    /// loop for destroy): any <see cref="TracerException"/> is retried up to the attempt limit, since one transient
    /// error must not leave a trap behind in a victim that runs on untraced, nor hang a destroy. A victim that is
    /// really gone fails every attempt, quickly.
    /// </summary>
    public static void Persistently<TState>(TState state, Action<TState> operation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                operation(state);
                return;
            }
            catch (TracerException) when (attempt < Attempts)
            {
            }
        }
    }

    public static TResult Persistently<TState, TResult>(TState state, Func<TState, TResult> operation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return operation(state);
            }
            catch (TracerException) when (attempt < Attempts)
            {
            }
        }
    }

    public static TResult OnInterrupt<TState, TResult>(TState state, Func<TState, TResult> operation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return operation(state);
            }
            catch (TracerException ex) when (MayRetry(ex, attempt))
            {
            }
        }
    }

    public static void OnInterrupt<TState>(TState state, Action<TState> operation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                operation(state);
                return;
            }
            catch (TracerException ex) when (MayRetry(ex, attempt))
            {
            }
        }
    }
}
