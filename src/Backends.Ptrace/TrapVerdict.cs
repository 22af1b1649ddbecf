namespace ProcHex.Backends.Ptrace;

/// <summary>What <see cref="TrapTable.Judge"/> says of a breakpoint trap a thread took.</summary>
internal enum TrapVerdict
{
    /// <summary>Not one of ours: a program's own int3, or a SIGTRAP someone sent. The program's business.</summary>
    NotOurs,

    /// <summary>One of our planted traps: rewind the PC to it and report a breakpoint.</summary>
    Ours,

    /// <summary>Ours until the core removed it a moment ago: rewind the PC so the original instruction runs, report nothing.</summary>
    Removed,
}
