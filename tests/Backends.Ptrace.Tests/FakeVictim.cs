using ProcHex.Arch.X64;
using ProcHex.Ports;

namespace ProcHex.Backends.Ptrace.Tests;

/// <summary>
/// A small fake of the per-OS hooks: a victim's text as a byte map (unmapped addresses cannot be read or written),
/// fork children with their own copies, and a journal of every hook call in order.
/// </summary>
internal sealed class FakeVictim : ITrapText, IForkChildHooks, IReleaseHooks
{
    public const int Pid = 100;

    public Dictionary<int, Dictionary<ulong, byte>> Text { get; } = new() { [Pid] = [] };

    public List<string> Journal { get; } = [];

    public HashSet<int> StoppedChildren { get; } = [];

    public HashSet<ulong> Unwritable { get; } = [];

    public bool Gone { get; set; }

    public bool KillsWithoutStopping { get; set; }

    public bool StopSucceeds { get; set; } = true;

    public bool GoOnAfterFailure { get; set; } = true;

    public void Map(ulong address, params byte[] bytes)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            Text[Pid][address + (ulong)i] = bytes[i];
        }
    }

    public byte? ReadByte(ulong address)
    {
        Journal.Add($"read 0x{address:x}");
        return Text[Pid].TryGetValue(address, out var b) ? b : null;
    }

    public void WriteByte(ulong address, byte value) => Write(Pid, address, value);

    private void Write(int pid, ulong address, byte value)
    {
        if (Unwritable.Contains(address) || !Text[pid].ContainsKey(address))
        {
            throw new TracerException($"pid {pid}: cannot write at 0x{address:x}", TracerErrorKind.BadAddress, 14);
        }

        Text[pid][address] = value;
        Journal.Add($"write {pid} 0x{address:x}=0x{value:x2}");
    }

    /// <summary>A fork of the victim: the child's text is a copy, traps included.</summary>
    public void Fork(int child)
    {
        Text[child] = new Dictionary<ulong, byte>(Text[Pid]);
        StoppedChildren.Add(child);
    }

    public bool AwaitFirstStop(int child) => StoppedChildren.Contains(child);

    public byte? ReadText(int child, ulong address) => Text[child].TryGetValue(address, out var b) ? b : null;

    public void WriteText(int child, ulong address, byte original) => Write(child, address, original);

    /// <summary>Takes a trap out as an adapter does: the original byte back, the trap forgotten as removed.</summary>
    public void Remove(TrapTable traps, ulong address)
    {
        Assert.True(traps.TryGetOriginal(address, out var original));
        WriteByte(address, original);
        Assert.True(traps.Remove(address));
    }

    public void Detach(int child) => Journal.Add($"detach child {child}");

    public void RestoreFailed(int child, ulong address, TracerException error) => Journal.Add($"failed {child} 0x{address:x}");

    public void Detached(int child, int traps) => Journal.Add($"detached {child} with {traps} traps");

    public void ForgetGone() => Journal.Add("forget");

    public bool StopForRelease(ReleaseMode mode)
    {
        Journal.Add($"stop for {mode}");
        return StopSucceeds;
    }

    public bool RestoreFailed(ulong address, TracerException error)
    {
        Journal.Add($"failed 0x{address:x}");
        return GoOnAfterFailure;
    }

    public void Kill() => Journal.Add("kill");

    public void Detach(ReleaseMode mode) => Journal.Add($"detach {mode}");

    public void Released(ReleaseMode mode) => Journal.Add($"released {mode}");

    /// <summary>Plants a trap as an adapter does: read the original byte, write int3, record it.</summary>
    public void Plant(TrapTable traps, ulong address)
    {
        var original = Text[Pid][address];
        WriteByte(address, X64Trap.Int3);
        _ = traps.Add(address, original);
    }
}
