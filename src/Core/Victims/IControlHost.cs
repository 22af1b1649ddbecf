namespace ProcHex.Victims;

/// <summary>What a control loop needs from its session: somewhere to post notifications, and the client's callbacks.</summary>
internal interface IControlHost
{
    /// <summary>Queues a notification unless the victim is no longer held (never for a destroyed handle, S19).</summary>
    void Notify(Victim victim, NotificationKind kind, string? message);

    LibraryListChangedHandler? LibraryListChanged { get; }

    MilestoneHandler? MilestoneReached { get; }

    PendingBreakpointChangedHandler? PendingBreakpointChanged { get; }

    /// <summary>The instruments the control loop measures stops and hits into.</summary>
    ProcHexMetrics Metrics { get; }

    /// <summary>Turns raw names into C++ ones for SPEC matching; null matches raw names only.</summary>
    Ports.ISymbolDemangler? Demangler { get; }
}
