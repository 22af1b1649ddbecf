using Microsoft.Extensions.Logging;
using ProcHex.Backends.Linux.Simulation.Kernel;
using ProcHex.Ports;

namespace ProcHex.Backends.Linux.Simulation.Tests;

/// <summary>
/// Issue 17 item 5 through the kernel seam: the real Linux adapter over the fake kernel, whose /proc/PID/mem write
/// fails below a stack the victim's own push would grow.
/// </summary>
public class EmulationFallbackTests
{
    private const ulong Stack = 0x7ffd_0000_0000;
    private const ulong Rbp = 0x1122_3344_5566_7788;
    private const int Hits = 5;

    [Fact]
    [Trait("Issue", "17.5")]
    [Trait("Spec", "S14")]
    public async Task A_push_whose_emulated_store_fails_is_stepped_out_of_line_every_hit_runs_it_once_and_it_is_said_once()
    {
        var image = new FakeImage("pusher").Function("main", new Compute(1), new PushFrame(), new Jump(0));
        var kernel = new FakeLinuxKernel(seed: 3);
        var pid = kernel.Spawn(image);
        kernel.Run(4);
        var log = new ListLogger();
        var owner = OwnerThread.Manual(kernel, log);
        var grab = Grabber.Grab(owner, pid, GrabAccess.Control, log, p => p.EmulationEnabled = true);
        for (var i = 0; i < 1000 && !grab.IsCompleted; i++)
        {
            owner.PumpUntilIdle();
            _ = grab.IsCompleted || kernel.Step();
        }

        // Completed already: the manual owner is this thread, and the rest runs on it without yielding.
        Assert.True(grab.IsCompleted);
        using var process = await grab;

        // Nothing is mapped below rsp: each push stores on a page the tracer cannot write (the push before it mapped
        // only its own eight bytes).
        Assert.Equal(0, kernel.GetRegs(pid, out var regs));
        regs.rsp = Stack;
        regs.rbp = Rbp;
        Assert.Equal(0, kernel.SetRegs(pid, regs));
        process.BeginControl();
        var site = image.AddressOf("main") + 1;
        var patch = process.PlantBreakpoint(site);
        process.Resume();

        var hits = 0;
        for (var round = 0; round < 10_000 && hits < Hits; round++)
        {
            owner.PumpUntilIdle();
            while (hits < Hits && process.TakeReadyStop() is { } stop)
            {
                Assert.Equal(Ports.StopKind.Stopped, stop.Kind);
                if (stop.Reason == StopReason.Breakpoint)
                {
                    Assert.Equal(site, stop.ProgramCounter);
                    if (++hits == Hits)
                    {
                        break;
                    }

                    process.StepOverBreakpoint(stop.ThreadId, patch);
                }

                process.Resume();
            }

            if (hits < Hits)
            {
                kernel.Run(1);
            }
        }

        // Stopped at the fifth hit: the four before it each ran the push exactly once (a re-hit of an unapplied
        // emulation would have left rsp where it was), and each stored rbp where the CPU put it.
        Assert.Equal(Hits, hits);
        Assert.Equal(0, kernel.GetRegs(pid, out var now));
        Assert.Equal(site, now.rip);
        Assert.Equal(Stack - (8 * (Hits - 1)), now.rsp);
        Span<byte> word = stackalloc byte[8];
        for (var i = 1; i < Hits; i++)
        {
            Assert.Equal(8, kernel.ProcessVmReadv(pid, Stack - (8 * (ulong)i), word));
            Assert.Equal(Rbp, BitConverter.ToUInt64(word));
        }

        // Said once for the site, not once per hit.
        var said = Assert.Single(log.Entries, e => e.Id == 14);
        Assert.Contains($"0x{site:x}", said.Message, StringComparison.Ordinal);
        process.Release(ReleaseMode.Kill);
    }

    private sealed class ListLogger : ILogger
    {
        public List<(int Id, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((eventId.Id, formatter(state, exception)));
    }
}
