using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.DependencyInjection;

namespace ProcHex.Scale;

/// <summary>
/// The scale benchmark (issue 7, item 4): N sleeping victims grabbed for control at once, each with one
/// breakpoint on a.out`tick that fires once a second. Reports the OS threads of this process, managed memory per
/// victim, time to grab and release all, hit-to-handler latency, and checks that every victim was let go cleanly.
/// </summary>
/// <remarks>
/// Usage: <c>dotnet run -c Release --project bench/ProcHex.Scale -- [--quick] [--victims N] [--seconds S]
/// [--aligned] [--strict] [--inject-stopped-victim]</c>. Exit code 0 when every victim was grabbed, hit and released cleanly and every
/// sleeper reaped; 1 otherwise (with <c>--strict</c> also when the thread target fails); 2 on bad usage or setup.
/// </remarks>
internal static class Program
{
    private const int ThreadTarget = 8;

    private static async Task<int> Main(string[] args)
    {
        var options = Options.Parse(args);
        if (options is null)
        {
            await Console.Error.WriteLineAsync(
                "usage: ProcHex.Scale [--quick] [--victims N] [--seconds S] [--aligned] [--strict]\n" +
                "  --quick      50 victims for 5 seconds (the CI smoke run)\n" +
                "  --victims N  how many sleepers to grab (default 1000)\n" +
                "  --seconds S  how long they run with the breakpoint planted (default 30)\n" +
                "  --aligned    every sleeper ticks at the same instant of each second (a burst) instead of spread\n" +
                "  --strict     a failed thread target fails the run too\n" +
                "  --inject-stopped-victim  self-check: SIGSTOP one victim after release; the run must then fail");
            return 2;
        }

        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            await Console.Error.WriteLineAsync("the scale benchmark needs x86-64 Linux");
            return 2;
        }

        try
        {
            return await new Run(options).ExecuteAsync();
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or System.ComponentModel.Win32Exception)
        {
            await Console.Error.WriteLineAsync($"scale benchmark failed: {ex.Message}");
            return 2;
        }
    }

    internal sealed record Options(int Victims, int Seconds, bool Aligned, bool Strict, bool Quick, bool InjectStopped)
    {
        public static Options? Parse(string[] args)
        {
            int victims = 1000, seconds = 30;
            bool aligned = false, strict = false, quick = false, inject = false;
            for (var i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--quick":
                        quick = true;
                        victims = 50;
                        seconds = 5;
                        break;
                    case "--victims" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var v) && v > 0:
                        victims = v;
                        i++;
                        break;
                    case "--seconds" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var s) && s > 0:
                        seconds = s;
                        i++;
                        break;
                    case "--aligned":
                        aligned = true;
                        break;
                    case "--strict":
                        strict = true;
                        break;
                    case "--inject-stopped-victim":
                        inject = true;
                        break;
                    default:
                        return null;
                }
            }

            return new Options(victims, seconds, aligned, strict, quick, inject);
        }
    }

    /// <summary>One sleeper and what we learned about it.</summary>
    private sealed class Target(int pid)
    {
        public int Pid { get; } = pid;

        public ProcessHandle? Handle { get; set; }

        public ulong Tick { get; set; }

        public ulong Stamp { get; set; }

        public long Hits;

        public List<string> Problems { get; } = [];
    }

    private sealed class Run(Options options)
    {
        private long[] _latencies = [];
        private int _latencyCount;
        private long _continuedNs = long.MaxValue;
        private long _measureFromNs = long.MaxValue;
        private long _measureUntilNs = long.MaxValue;
        private long _hitsOutsideWindow;
        private long _settlingHits;
        private long _settlingMaxNs;
        private long _handlerFailures;

        public async Task<int> ExecuteAsync()
        {
            var n = options.Victims;
            var threadsAtStart = ProcSelf.Threads();
            var namesAtStart = ProcSelf.ThreadNames();
            CheckClock();
            Progress($"{n} victims, {options.Seconds} s, {Environment.ProcessorCount} cores; compiling the fixture");

            using var fixture = Fixture.Compile();
            using var sampler = new Sampler(TimeSpan.FromMilliseconds(10));
            var services = new ServiceCollection();
            services.AddProcHex(b => b.UseLinux());
            await using var provider = services.BuildServiceProvider();
            var session = provider.GetRequiredService<ProcHexSession>();

            // One extra sleeper is grabbed, hit and released first, alone: JIT and the owner thread's start-up are
            // paid before anything is measured, and the thread count with one victim is the reference.
            using var launcher = Launcher.Start(fixture, n + 1, options.Aligned, TimeSpan.FromSeconds(60 + (n / 10)));
            var warm = new Target(launcher.Pids[0]);
            var targets = launcher.Pids.Skip(1).Select(p => new Target(p)).ToArray();
            _latencies = new long[(long)n * (options.Seconds + 5)];

            var threadsBeforeTracing = ProcSelf.Threads();
            var namesBeforeTracing = ProcSelf.ThreadNames();
            Progress("warm-up: one victim");
            sampler.Phase = "warm-up";
            await GrabAsync(session, warm);
            if (warm.Handle is null)
            {
                await Console.Error.WriteLineAsync($"cannot grab the warm-up victim: {string.Join("; ", warm.Problems)}");
                return 1;
            }

            await ArmAsync(session, fixture, warm);
            session.Continue(warm.Handle!);
            var warmDeadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 3;
            while (Interlocked.Read(ref warm.Hits) == 0 && Stopwatch.GetTimestamp() < warmDeadline)
            {
                await Task.Delay(50);
            }

            await session.ReleaseAsync(warm.Handle!);
            var threadsWithOne = ProcSelf.Threads();

            sampler.Phase = "idle";
            var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
            var rssBefore = ProcSelf.RssKiB();
            var fdsBefore = ProcSelf.OpenFds();

            Progress($"grabbing {n}");
            sampler.Phase = "grab";
            var grabClock = Stopwatch.StartNew();
            await Task.WhenAll(targets.Select(t => GrabAsync(session, t)));
            var grabTime = grabClock.Elapsed;
            var grabbed = targets.Where(t => t.Handle is not null).ToArray();

            Progress($"grabbed {grabbed.Length} in {grabTime.TotalSeconds:F2} s; planting breakpoints");
            sampler.Phase = "arm";
            var armClock = Stopwatch.StartNew();
            await Task.WhenAll(grabbed.Select(t => ArmAsync(session, fixture, t)));
            var armed = grabbed.Where(t => t.Problems.Count == 0).ToArray();
            var armTime = armClock.Elapsed;

            var managedAfter = GC.GetTotalMemory(forceFullCollection: true);
            var rssAfter = ProcSelf.RssKiB();
            var fdsAfter = ProcSelf.OpenFds();

            sampler.Phase = "run";
            // Every sleeper whose second passed while the grab held it ticks the moment it is continued: 1,000
            // hits at once. Latency is measured after that catch-up burst (reported on its own row).
            var settle = options.Seconds >= 4 ? 2L : 0L;
            var continuedNs = ProcSelf.MonotonicNs();
            Volatile.Write(ref _continuedNs, continuedNs);
            Volatile.Write(ref _measureFromNs, continuedNs + (settle * 1_000_000_000));
            var continueClock = Stopwatch.StartNew();
            foreach (var t in grabbed)
            {
                session.Continue(t.Handle!);
            }

            var continueTime = continueClock.Elapsed;
            Progress($"running {options.Seconds} s");
            var runEnd = Stopwatch.GetTimestamp() + (Stopwatch.Frequency * (options.Seconds + settle));
            while (Stopwatch.GetTimestamp() < runEnd)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, Math.Max(1, (runEnd - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency))));
            }

            Volatile.Write(ref _measureUntilNs, ProcSelf.MonotonicNs());
            var runSeconds = (Volatile.Read(ref _measureUntilNs) - Volatile.Read(ref _measureFromNs)) / 1e9;

            Progress($"releasing {grabbed.Length}");
            sampler.Phase = "release";
            var releaseClock = Stopwatch.StartNew();
            await Task.WhenAll(grabbed.Select(t => ReleaseAsync(session, t)));
            var releaseTime = releaseClock.Elapsed;
            sampler.Phase = "check";
            var threadsAfterRelease = ProcSelf.Threads();
            if (options.InjectStopped && grabbed.Length > 0)
            {
                // The self-check of the release check: a victim left stopped must fail the run.
                ProcSelf.Stop(grabbed[0].Pid);
                await Task.Delay(100);
            }

            Progress("checking every victim");
            var released = await CheckReleasedAsync(fixture, [warm, .. targets]);

            sampler.Phase = "reap";
            var expected = n + 1;
            var reaped = launcher.KillAndReap(TimeSpan.FromSeconds(30 + (n / 20)));
            var leftovers = launcher.Pids.Where(p => ProcSelf.State(p) is not null && ProcSelf.ParentPid(p) == launcher.LauncherPid).ToList();
            var zombies = ProcSelf.ZombieChildren();
            sampler.Phase = "end";

            // ---- report ------------------------------------------------------------------------------------
            var hits = targets.Sum(t => Interlocked.Read(ref t.Hits));
            var hitVictims = targets.Count(t => Interlocked.Read(ref t.Hits) > 0);
            var samples = _latencies.AsSpan(0, Math.Min(_latencyCount, _latencies.Length)).ToArray();
            Array.Sort(samples);
            var peakRun = sampler.PeakOf("run");
            var peakGrab = sampler.PeakOf("grab");
            var peakArm = sampler.PeakOf("arm");
            var peakRelease = sampler.PeakOf("release");
            var peakThreads = new[] { sampler.PeakOf("warm-up"), peakGrab, peakArm, peakRun, peakRelease }.Max(p => p.Threads);
            var peakFds = new[] { peakGrab, peakArm, peakRun, peakRelease }.Max(p => p.Fds);

            var report = new StringBuilder();
            report.AppendLine(CultureInfo.InvariantCulture, $"## ProcHex scale benchmark: {n} victims, {options.Seconds} s{(options.Aligned ? ", aligned ticks" : "")}");
            report.AppendLine();
            report.AppendLine(CultureInfo.InvariantCulture, $"- Machine: {Environment.ProcessorCount} cores ({CpuModel()}), Linux {Kernel()}, {RuntimeInformation.FrameworkDescription}, GC {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}");
            report.AppendLine(CultureInfo.InvariantCulture, $"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; RLIMIT_NOFILE {ProcSelf.OpenFileLimit()}");
            report.AppendLine(CultureInfo.InvariantCulture, $"- Command: dotnet run -c Release --project bench/ProcHex.Scale -- {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}");
            report.AppendLine();
            report.AppendLine("| Measure | Value |");
            report.AppendLine("|---|---|");
            Row(report, "Victims grabbed for control", $"{grabbed.Length} of {n}");
            Row(report, "Time to grab all (concurrent GrabAsync)", $"{grabTime.TotalSeconds:F3} s ({grabTime.TotalMilliseconds / n:F2} ms per victim)");
            Row(report, "Time to plant all breakpoints", $"{armTime.TotalSeconds:F3} s ({armed.Length} planted)");
            Row(report, "Time to continue all", $"{continueTime.TotalMilliseconds:F1} ms");
            Row(report, "Time to release all (concurrent ReleaseAsync)", $"{releaseTime.TotalSeconds:F3} s ({releaseTime.TotalMilliseconds / Math.Max(1, grabbed.Length):F2} ms per victim)");
            Row(report, "OS threads: at start, before ProcHex (the runtime's own)", $"{threadsAtStart}: {Names(namesAtStart)}");
            Row(report, "OS threads: before the first grab (runtime + this harness: launcher, sampler timer)", $"{threadsBeforeTracing}: {Names(namesBeforeTracing)}");
            Row(report, "OS threads: after one victim (warm-up)", $"{threadsWithOne}");
            Row(report, "OS threads: peak while grabbing / planting", $"{peakGrab.Threads} / {peakArm.Threads}");
            Row(report, "OS threads: peak while running", $"{peakRun.Threads}");
            Row(report, "OS threads: peak while releasing / after", $"{peakRelease.Threads} / {threadsAfterRelease}");
            Row(report, "OS threads at the overall peak, by name", Names(sampler.NamesAtPeak));
            Row(report, "OS threads added by tracing (overall peak − before the first grab)", $"{peakThreads - threadsBeforeTracing}");
            Row(report, "Managed memory per victim (GC.GetTotalMemory(true) delta / victims)", $"{(managedAfter - managedBefore) / (double)n / 1024:F1} KiB ({(managedAfter - managedBefore) / 1024.0 / 1024:F1} MiB total)");
            Row(report, "Process RSS per victim (VmRSS delta / victims)", $"{(rssAfter - rssBefore) / (double)n:F1} KiB ({(rssAfter - rssBefore) / 1024.0:F1} MiB total)");
            Row(report, "Open descriptors: before / after grab / most at a phase change", $"{fdsBefore} / {fdsAfter} / {peakFds}");
            Row(report, "Breakpoint hits (all)", $"{hits} ({hitVictims} of {n} victims hit)");
            Row(report, $"Catch-up burst in the {settle} s after Continue-all: hits / worst latency", $"{Interlocked.Read(ref _settlingHits)} / {Us(Interlocked.Read(ref _settlingMaxNs))} µs");
            Row(report, "Hits in the measured window", $"{samples.Length} over {runSeconds:F1} s ({samples.Length / runSeconds:F0}/s)");
            Row(report, "Latency hit → handler p50 / p99 / max", samples.Length == 0 ? "no samples" :
                $"{Us(Percentile(samples, 0.50))} / {Us(Percentile(samples, 0.99))} / {Us(samples[^1])} µs ({samples.Length} samples)");
            Row(report, "Hits outside the window / handler failures", $"{Interlocked.Read(ref _hitsOutsideWindow)} / {Interlocked.Read(ref _handlerFailures)}");
            Row(report, "Released cleanly (not stopped, TracerPid 0, text = ELF, runs on)", $"{released} of {n + 1} (warm-up included)");
            Row(report, "Sleepers reaped by the launcher / left / zombie children", $"{reaped} of {expected} / {leftovers.Count} / {zombies.Count}");
            report.AppendLine();

            // A .NET process has its own threads before it does anything (main, finalizer, GC, signal handler,
            // debugger and diagnostics, tiered compilation), and the harness adds a timer and a child: the target
            // counts what tracing adds to those, the total is reported beside it.
            var added = peakThreads - threadsBeforeTracing;
            var threadsPass = added <= ThreadTarget;
            var releasePass = released == n + 1 && grabbed.Length == n;
            var hitPass = hitVictims == n || options.Seconds < 2;
            var reapPass = reaped == expected && leftovers.Count == 0 && zombies.Count == 0;
            report.AppendLine("| Target | Result |");
            report.AppendLine("|---|---|");
            Row(report, $"OS threads added by tracing ≤ {ThreadTarget} regardless of victim count ({added} with {n}, {threadsWithOne - threadsBeforeTracing} with one; {peakThreads} in all, {threadsAtStart} before anything)", threadsPass ? "PASS" : "FAIL");
            Row(report, $"All {n} grabbed and all released cleanly", releasePass ? "PASS" : "FAIL");
            Row(report, "Every victim's breakpoint hit", hitPass ? "PASS" : "FAIL");
            Row(report, "Every sleeper reaped, no zombies", reapPass ? "PASS" : "FAIL");
            Console.Write(report.ToString());

            var problems = new[] { warm }.Concat(targets).Where(t => t.Problems.Count > 0).ToList();
            foreach (var t in problems.Take(10))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"- pid {t.Pid}: {string.Join("; ", t.Problems)}"));
            }

            if (problems.Count > 10)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"- ... and {problems.Count - 10} more victims with problems"));
            }

            var healthy = releasePass && hitPass && reapPass && (threadsPass || !options.Strict);
            return healthy ? 0 : 1;
        }

        private static async Task GrabAsync(ProcHexSession session, Target target)
        {
            try
            {
                target.Handle = await session.GrabAsync(target.Pid, GrabMode.Control);
            }
            catch (ProcHexException ex)
            {
                target.Problems.Add($"grab: {ex.Message}");
            }
        }

        private async Task ArmAsync(ProcHexSession session, Fixture fixture, Target target)
        {
            try
            {
                var handle = target.Handle!;
                target.Tick = handle.LookupSymbol("a.out`tick");
                target.Stamp = handle.LookupSymbol("a.out`last_tick_ns");
                var bias = ProcSelf.MappingStart(target.Pid, fixture.Path) - fixture.FirstLoadVaddr;
                if (bias + fixture.Symbol("tick") != target.Tick)
                {
                    target.Problems.Add($"a.out`tick is 0x{target.Tick:x} for ProcHex, 0x{bias + fixture.Symbol("tick"):x} by /proc/PID/maps and the ELF file");
                }

                await session.SetBreakpointAsync(handle, target.Tick, hit => OnHit(target, hit));
            }
            catch (ProcHexException ex)
            {
                target.Problems.Add($"breakpoint: {ex.Message}");
            }
        }

        /// <summary>The handler: runs on the victim's control loop with the victim stopped at tick().</summary>
        private void OnHit(Target target, BreakpointHit hit)
        {
            var now = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref target.Hits);
            Span<byte> stamp = stackalloc byte[8];
            try
            {
                if (hit.Handle.ReadMemory(target.Stamp, stamp) != 8)
                {
                    Interlocked.Increment(ref _handlerFailures);
                    return;
                }
            }
            catch (ProcHexException)
            {
                Interlocked.Increment(ref _handlerFailures);
                return;
            }

            var recorded = (long)BinaryPrimitives.ReadUInt64LittleEndian(stamp);
            if (recorded < Volatile.Read(ref _continuedNs) || recorded > Volatile.Read(ref _measureUntilNs))
            {
                // Recorded before everyone was continued (held by the grab) or after the window closed.
                Interlocked.Increment(ref _hitsOutsideWindow);
                return;
            }

            if (recorded < Volatile.Read(ref _measureFromNs))
            {
                Interlocked.Increment(ref _settlingHits);
                var latency = now - recorded;
                var worst = Interlocked.Read(ref _settlingMaxNs);
                while (latency > worst && Interlocked.CompareExchange(ref _settlingMaxNs, latency, worst) != worst)
                {
                    worst = Interlocked.Read(ref _settlingMaxNs);
                }

                return;
            }

            var index = Interlocked.Increment(ref _latencyCount) - 1;
            if (index < _latencies.Length)
            {
                _latencies[index] = now - recorded;
            }
        }

        private static async Task ReleaseAsync(ProcHexSession session, Target target)
        {
            try
            {
                await session.ReleaseAsync(target.Handle!);
            }
            catch (ProcHexException ex)
            {
                target.Problems.Add($"release: {ex.Message}");
            }
        }

        /// <summary>
        /// From outside, for each victim: not stopped, no tracer, the text at tick() equal to the ELF file's, and it
        /// runs on (its tick counter advances).
        /// </summary>
        private static async Task<int> CheckReleasedAsync(Fixture fixture, Target[] all)
        {
            var original = fixture.BytesAt(fixture.Symbol("tick"), 16).ToArray();
            var ticksBefore = new long[all.Length];
            for (var i = 0; i < all.Length; i++)
            {
                var t = all[i];
                if (t.Handle is null)
                {
                    continue;
                }

                var state = ProcSelf.State(t.Pid);
                if (state is null or 'Z' or 'X')
                {
                    t.Problems.Add($"gone after release (state {state?.ToString() ?? "none"})");
                    continue;
                }

                if (state is 'T' or 't')
                {
                    t.Problems.Add($"left stopped (state {state})");
                }

                if (ProcSelf.TracerPid(t.Pid) is var tracer and not 0)
                {
                    t.Problems.Add($"still traced by {tracer}");
                }

                var bias = ProcSelf.MappingStart(t.Pid, fixture.Path) - fixture.FirstLoadVaddr;
                var text = bias is null ? null : ProcSelf.Memory(t.Pid, bias.Value + fixture.Symbol("tick"), original.Length);
                if (text is null || !text.AsSpan().SequenceEqual(original))
                {
                    t.Problems.Add($"text at tick() is {(text is null ? "unreadable" : Convert.ToHexString(text))}, the ELF file has {Convert.ToHexString(original)}");
                }

                ticksBefore[i] = ReadTicks(fixture, t.Pid, bias);
            }

            // A sleeper ticks once a second: 1.2 s later each one that runs on has ticked at least once more.
            await Task.Delay(TimeSpan.FromMilliseconds(1200));
            var clean = 0;
            for (var i = 0; i < all.Length; i++)
            {
                var t = all[i];
                if (t.Handle is null)
                {
                    continue;
                }

                var after = ReadTicks(fixture, t.Pid, ProcSelf.MappingStart(t.Pid, fixture.Path) - fixture.FirstLoadVaddr);
                if (after <= ticksBefore[i])
                {
                    t.Problems.Add($"does not run on after release (ticks {ticksBefore[i]} → {after})");
                }

                if (t.Problems.Count == 0)
                {
                    clean++;
                }
            }

            return clean;
        }

        private static long ReadTicks(Fixture fixture, int pid, ulong? bias) =>
            bias is not null && ProcSelf.Memory(pid, bias.Value + fixture.Symbol("ticks"), 8) is { } bytes
                ? (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes)
                : -1;

        /// <summary>Stopwatch must be CLOCK_MONOTONIC in nanoseconds, or the victim's stamps mean nothing here.</summary>
        private static void CheckClock()
        {
            if (Stopwatch.Frequency != 1_000_000_000)
            {
                throw new InvalidOperationException($"Stopwatch.Frequency is {Stopwatch.Frequency}, not 1 GHz: not CLOCK_MONOTONIC nanoseconds");
            }

            for (var i = 0; i < 5; i++)
            {
                var before = ProcSelf.MonotonicNs();
                var stopwatch = Stopwatch.GetTimestamp();
                var after = ProcSelf.MonotonicNs();
                if (before <= stopwatch && stopwatch <= after)
                {
                    return;
                }
            }

            throw new InvalidOperationException("Stopwatch.GetTimestamp() is not between two CLOCK_MONOTONIC readings");
        }

        private static void Progress(string message) =>
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.Now:HH:mm:ss.fff}] {message}"));
    }

    private static void Row(StringBuilder report, string measure, string value) =>
        report.AppendLine(CultureInfo.InvariantCulture, $"| {measure} | {value} |");

    private static long Percentile(long[] sorted, double p) => sorted[(int)Math.Ceiling(p * sorted.Length) - 1];

    private static string Names(SortedDictionary<string, int> names) => string.Join(", ", names.Select(kv => kv.Value == 1 ? kv.Key : $"{kv.Key} ×{kv.Value}"));

    private static string Us(long ns) => (ns / 1000.0).ToString("F1", CultureInfo.InvariantCulture);

    private static string Kernel() => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();

    private static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
}
