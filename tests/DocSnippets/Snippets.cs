using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using ProcHex.Backends.Fake;

namespace ProcHex.DocSnippets;

/// <summary>
/// The code blocks of docs/library.md, compiled: each sits between <c>// begin-snippet: NAME</c> and
/// <c>// end-snippet</c>, and <see cref="LibraryDocTests"/> fails when the document's block differs.
/// The samples (samples/CountCalls, samples/AttachService) hold the rest of the document's blocks.
/// </summary>
internal static class Snippets
{
    public static async Task SessionFromContainer()
    {
        // begin-snippet: session-di
        var services = new ServiceCollection()
            .AddProcHex(b => b
                .UseLinux(linux => linux.EmulateStepOver = true)
                .Configure(options => options.DefaultRendezvous = Rendezvous.Main))
            .BuildServiceProvider();
        var session = services.GetRequiredService<ProcHexSession>();
        // end-snippet
        await services.DisposeAsync();
        _ = session;
    }

    public static async Task<ProcessHandle> Create(ProcHexSession session)
    {
        // begin-snippet: create
        var handle = await session.CreateAsync(
            "/usr/bin/env",
            ["env", "ls", "-l", "/"],
            new CreateOptions { StopAt = Rendezvous.Postinit, Environment = ["LC_ALL=C", "PATH=/usr/bin:/bin"] });
        Console.WriteLine($"pid {handle.Pid} waits at {handle.Rendezvous}; objects: {handle.Objects.Count}");
        // end-snippet
        return handle;
    }

    public static async Task Grab(ProcHexSession session, int pid)
    {
        // begin-snippet: grab
        // Control: ProcHex becomes the tracer; the process waits until Continue, and runs on after the release.
        var controlled = await session.GrabAsync(pid);

        // Read-only: nothing is stopped or traced; memory, objects and threads can still be read.
        var observed = await session.GrabAsync(pid, GrabMode.ReadOnly);
        foreach (var thread in observed.Threads)
        {
            Console.WriteLine($"thread {thread.ThreadId} at {(thread.ProgramCounter is { } pc ? observed.ResolveAddress(pc) : null)}");
        }
        // end-snippet
        await session.ReleaseAsync(observed);
        await session.ReleaseAsync(controlled);
    }

    public static async Task Breakpoints(ProcHexSession session, ProcessHandle handle)
    {
        // begin-snippet: breakpoints
        // Pending: a SPEC (object`symbol, a bare symbol, C++ names, * and ? wildcards) that is planted wherever it
        // is defined, now or after a dlopen or an exec; Hits counts every hit in every image.
        var writes = await session.SetPendingBreakpointAsync(handle, "libc.so.6`write", hit => { });

        // Plain: one address, now; the symbol must be loaded already.
        var mainHits = 0;
        var atMain = await session.SetBreakpointAsync(handle, "main", hit => mainHits++);

        session.Continue(handle);
        // ... later, both come out again:
        await session.RemoveBreakpointAsync(atMain);
        await session.RemovePendingBreakpointAsync(writes);
        Console.WriteLine($"write: {writes.Hits}, main: {mainHits}");
        // end-snippet
    }

    public static async Task Counting(ProcHexSession session, ProcessHandle handle)
    {
        // begin-snippet: counting
        // Counts calls without stopping the victim where the function's entry allows (Linux), with a trap elsewhere.
        // It may be set while the victim runs: every thread stops for the moment its entries change.
        var mallocs = await session.SetPendingCounterAsync(handle, "libc.so.6`malloc");
        session.Continue(handle);

        // Any time, from any thread: Hits reads the counters the victim increments, without a stop.
        Console.WriteLine($"malloc: {mallocs.Hits}");
        foreach (var site in mallocs.Sites)
        {
            Console.WriteLine($"{site.ObjectName}`{site.Symbol}: {site.Counting}{(site.Fallback is { } why ? $" ({why})" : "")}");
        }
        // end-snippet
    }

    public static async Task HitContext(ProcHexSession session, ProcessHandle handle)
    {
        // begin-snippet: hit-context
        var opened = new List<string>();
        await session.SetPendingBreakpointAsync(handle, "open", hit =>
        {
            // At a function's first instruction: arguments in rdi, rsi, ... and the caller's return address at rsp.
            var path = hit.Context.ReadString(hit.Context.Argument(0));
            opened.Add($"thread {hit.ThreadId} opens {path} (called from 0x{hit.Context.ReturnAddress:x})");
        });
        // The context is valid only while the handler runs: keep what you read, never the context.
        // end-snippet
    }

    public static async Task Notifications(ProcHexSession session, ProcessHandle handle)
    {
        // begin-snippet: notifications
        session.LibraryListChanged = change =>
            Console.WriteLine($"pid {change.Handle.Pid}: +{change.Added.Count} -{change.Removed.Count} objects");
        session.MilestoneReached = milestone => Console.WriteLine($"pid {milestone.Handle.Pid}: {milestone.Kind}");

        await foreach (var notification in session.ReadNotificationsAsync())
        {
            if (notification.Kind == NotificationKind.Exited)
            {
                Console.WriteLine($"pid {notification.Pid}: {notification.Exit}");
                break;
            }

            Console.WriteLine($"pid {notification.Pid}: {notification.Kind}: {notification.Message}");
        }
        // end-snippet
        _ = handle;
    }

    public static async Task Lock(ProcHexSession session, ProcessHandle handle, ulong address)
    {
        // begin-snippet: lock
        using (await session.LockAsync(handle))
        {
            // The control loop waits: no handler runs and the breakpoints stay as they are until the scope ends.
            Span<byte> bytes = stackalloc byte[16];
            var read = handle.ReadMemory(address, bytes);
            Console.WriteLine(Convert.ToHexString(bytes[..read]));
        }
        // end-snippet
    }

    public static async Task Release(ProcHexSession session, ProcessHandle created, ProcessHandle grabbed)
    {
        // begin-snippet: release
        await session.ReleaseAsync(created);  // a created victim is killed with its last reference
        await session.ReleaseAsync(grabbed);  // a grabbed process is let go, its text restored, and runs on
        await session.DisposeAsync();         // releases whatever is still held, most recently used first
        // end-snippet
    }

    public static void Backends(IServiceCollection services)
    {
        // begin-snippet: backends
        services.AddProcHex();                                  // ProcHex.Hosting: the backend of this OS
        services.AddProcHex(b => b.UseLinux());                 // ProcHex.Backends.Linux: x86-64 Linux ptrace
        services.AddProcHex(b => b.UseFreeBsd());               // ProcHex.Backends.FreeBSD: FreeBSD amd64 ptrace
        services.AddProcHex(b => b.UseFake(new FakeKernel()));  // ProcHex.Backends.Fake: scripted, any OS
        // end-snippet
    }

    public static async Task HandlerRules(ProcHexSession session, ProcessHandle handle, CancellationToken token)
    {
        // begin-snippet: handler-rules
        // A handler runs on the victim's control loop with the victim stopped and locked: read what you need,
        // hand it on, return. Slow work (I/O, awaiting ProcHex for another victim) belongs to another task.
        var sizes = Channel.CreateUnbounded<ulong>();
        await session.SetPendingBreakpointAsync(handle, "malloc", hit => sizes.Writer.TryWrite(hit.Context.Argument(0)));
        session.Continue(handle);

        await foreach (var size in sizes.Reader.ReadAllAsync(token))
        {
            await File.AppendAllTextAsync("malloc-sizes.txt", $"{size}\n", token);
        }
        // end-snippet
    }
}
