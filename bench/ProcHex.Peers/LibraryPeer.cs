using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace ProcHex.Peers;

/// <summary>
/// ProcHex through its library: a session on the Linux backend creates the driver, which parks at main (where
/// libpeer.so is loaded), plants a counting client breakpoint on libpeer.so`peer_tick, continues, and waits
/// for the Exited notification. Allocations of the whole process are measured from Continue to the notification.
/// With <c>inVictim</c> it sets an in-victim counter instead (issue 18): no stop per call; hits read from the shared
/// counter.
/// </summary>
internal sealed class LibraryPeer(bool emulate, bool inVictim = false)
    : Peer(inVictim ? "ProcHex library, in-victim counter" : emulate ? "ProcHex library, emulated step-over" : "ProcHex library, plain step-over")
{
    private ServiceProvider? _provider;

    public bool Emulate { get; } = emulate;

    public bool InVictim { get; } = inVictim;

    public override bool Fast => InVictim;

    /// <summary>How the last in-victim run counted (in-victim, or trap with the reason): the report says it.</summary>
    public string? LastMode { get; private set; }

    public override bool IsProcHex => true;

    private ProcHexSession Session
    {
        get
        {
            if (_provider is null)
            {
                var services = new ServiceCollection();
                // Answers on the owner thread, as the CLI: the handler only counts (Tool starts peers off that thread).
                services.AddProcHex(b => b.UseLinux(o =>
                {
                    o.EmulateStepOver = Emulate;
                    o.AnswerStopsOnOwnerThread = true;
                }));
                _provider = services.BuildServiceProvider();
            }

            return _provider.GetRequiredService<ProcHexSession>();
        }
    }

    public override async Task<PeerRun> RunAsync(Fixture fixture, int calls, int threads)
    {
        var session = Session;
        var timeFile = fixture.NewTimeFile();
        var argv = DriverArguments(fixture, calls, threads, timeFile);
        var wall = Stopwatch.StartNew();
        var handle = await session.CreateAsync(argv[0], argv, new CreateOptions { StopAt = Rendezvous.Main });
        try
        {
            var counter = new HitCounter();
            PendingBreakpoint? counted = null;
            if (InVictim)
            {
                counted = await session.SetPendingCounterAsync(handle, Fixture.Spec);
                LastMode = counted.Sites.Count > 0 && counted.Sites[0] is var site ? $"{site.Counting}{(site.Fallback is { } why ? $" ({why})" : "")}" : "not planted";
            }
            else
            {
                await session.SetBreakpointAsync(handle, Fixture.Spec, counter.OnHit);
            }

            var before = GC.GetTotalAllocatedBytes(precise: true);
            session.Continue(handle);
            var notification = await session.WaitForNotificationAsync(RunLimit(calls));
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            wall.Stop();
            var problem = notification switch
            {
                null => "no Exited notification in time",
                { Kind: not NotificationKind.Exited } => $"{notification.Kind}: {notification.Message}",
                { Exit: { Signaled: true } e } => $"killed by signal {e.Signal}",
                { Exit: { Code: not 0 } e } => $"exit {e.Code}",
                _ => null,
            };
            var (driverCalls, ns) = ReadTimeFile(timeFile);
            var hits = counted?.Hits ?? Interlocked.Read(ref counter.Hits);
            return new PeerRun(calls, hits, driverCalls, ns, wall.Elapsed, problem)
            {
                BytesPerHit = hits > 0 ? (double)allocated / hits : null,
                Mode = InVictim ? LastMode : null,
            };
        }
        finally
        {
            await session.ReleaseAsync(handle);
        }
    }

    /// <summary>
    /// In-victim install and removal of a counter SPEC matching <c>many_*</c>, 100 functions, while 4 threads call them
    /// all (c/many.c), <paramref name="rounds"/> times on one victim. Per round: the library calls as the caller sees
    /// them (the wildcard lookup included) and how long every thread stayed stopped (<c>prochex.counters.stopped</c>);
    /// the first install also maps the arena. And what went wrong.
    /// </summary>
    public async Task<InstallRounds> InstallLatencyAsync(string program, int rounds)
    {
        var session = Session;
        var stopped = new List<(string Change, double Seconds)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "prochex.counters.stopped")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, seconds, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "prochex.counters.change")
                {
                    lock (stopped)
                    {
                        stopped.Add(((string?)tag.Value ?? "?", seconds));
                    }
                }
            }
        });
        listener.Start();

        var handle = await session.CreateAsync(program, [program], new CreateOptions { StopAt = Rendezvous.Main });
        var calls = new List<(TimeSpan Install, TimeSpan Remove)>();
        try
        {
            session.Continue(handle);
            await Task.Delay(100);
            for (var round = 0; round < rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                var counter = await session.SetPendingCounterAsync(handle, "many`many_*");
                var install = clock.Elapsed;
                var trap = counter.Sites.FirstOrDefault(s => s.Counting != CountingMode.InVictim);
                if (counter.Sites.Count != 100 || trap is not null)
                {
                    return new InstallRounds(calls, [], $"{counter.Sites.Count} sites, {(trap is null ? "all in the victim" : $"one counting with a trap: {trap.Fallback}")}");
                }

                await Task.Delay(20);
                clock.Restart();
                await session.RemovePendingBreakpointAsync(counter);
                calls.Add((install, clock.Elapsed));
                if (counter.Hits == 0)
                {
                    return new InstallRounds(calls, [], "nothing counted: the threads did not run");
                }
            }
        }
        finally
        {
            await session.ReleaseAsync(handle);
        }

        lock (stopped)
        {
            return new InstallRounds(calls, [.. stopped], stopped.Count(s => s.Change != "arena") == 2 * rounds ? null : $"{stopped.Count} stopped-time measurements for {rounds} rounds");
        }
    }

    /// <summary>Create-to-main: from CreateAsync to its return with the victim parked at main; then killed.</summary>
    public async Task<TimeSpan> CreateToMainAsync(string program)
    {
        var session = Session;
        var clock = Stopwatch.StartNew();
        var handle = await session.CreateAsync(program, [program], new CreateOptions { StopAt = Rendezvous.Main });
        clock.Stop();
        await session.ReleaseAsync(handle);
        return clock.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }
    }

    /// <summary>The handler allocates nothing: it bumps a field of an object made once per run.</summary>
    private sealed class HitCounter
    {
        public long Hits;

        public void OnHit(BreakpointHit hit) => Interlocked.Increment(ref Hits);
    }
}

/// <summary>What <see cref="LibraryPeer.InstallLatencyAsync"/> measured: library calls, stopped times (by change: install, remove, arena; seconds), and a problem.</summary>
internal sealed record InstallRounds(List<(TimeSpan Install, TimeSpan Remove)> Calls, List<(string Change, double Seconds)> Stopped, string? Problem);
