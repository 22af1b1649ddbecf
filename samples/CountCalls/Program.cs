// CountCalls [--symbol SPEC] PROGRAM [ARGS...]: runs PROGRAM under ProcHex, counts its calls to one function
// (malloc unless --symbol names another, as object`symbol or a bare symbol), prints the total and exits with
// PROGRAM's own status (128+N when signal N killed it).
using Microsoft.Extensions.DependencyInjection;
using ProcHex;
using ProcHex.Ports;

var symbol = args is ["--symbol", var named, ..] ? named : "malloc";
var command = args is ["--symbol", _, .. var rest] ? rest : args;
if (command.Length == 0)
{
    Console.Error.WriteLine("usage: CountCalls [--symbol SPEC] PROGRAM [ARGS...]");
    return 2;
}

// begin-snippet: count-calls
await using var services = new ServiceCollection()
    .AddProcHex(b => b.UseLinux())
    .BuildServiceProvider();
var session = services.GetRequiredService<ProcHexSession>();

// The program starts and waits at main; the breakpoint follows SPEC into every library that defines it.
var victim = await session.CreateAsync(command[0], command);
var calls = await session.SetPendingBreakpointAsync(victim, symbol, hit => { });
session.Continue(victim);

ExitStatus? exit = null;
await foreach (var notification in session.ReadNotificationsAsync())
{
    if (notification.Pid == victim.Pid && notification.Kind is NotificationKind.Exited or NotificationKind.Lost)
    {
        exit = notification.Exit;
        break;
    }
}

Console.WriteLine($"{symbol}: {calls.Hits} calls");
await session.ReleaseAsync(victim);
return exit is { Signaled: true } killed ? 128 + killed.Signal : exit?.Code ?? 1;
// end-snippet
