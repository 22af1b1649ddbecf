using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using ProcHex;
using ProcHex.Chaos;

// dotnet run --project src/Chaos -c Release -- [--seed S] [--seconds T] [--operations N] [--trace]
const string Help = """
    ProcHex.Chaos: drives random operations against real victims on the Linux backend while injecting faults,
    and checks the invariants after every operation.

      --seed S         the seed (default: a random one, printed)
      --seconds T      stop drawing operations after T seconds (default 60)
      --operations N   stop after N operations (default: no limit)
      --trace          print every operation and its outcome

    Operations: create (at every rendezvous, sometimes cancelled), spawn untraced victims and grab them (control,
    read-only, without monitor; short-lived ones at once, so they exit during the attach), release, continue, lock,
    plant and remove breakpoints; faults: SIGKILL, SIGSTOP and SIGCONT from outside; the victims themselves create
    and end threads, fork, vfork and exec in storms (fixture churn). After each operation: no victim stopped that
    should run or running that should stay stopped (S20), no breakpoint byte in the text of a released or idle
    victim, no zombie or stray child, no leaked handle or thread, every death notified exactly once, every fixture
    exit clean.

    Replay: the sequence of operations and faults derives from the seed alone (four draws per operation, whatever
    happened before), so --seed S --operations N repeats it exactly; OS timing does not replay, so an outcome that
    depends on a race may need a few runs. Every violation names the seed and the operation index.
    Needs root or CAP_SYS_PTRACE (grabs), gcc and nm. Exit code 1 on any violation, 2 on bad arguments.
    """;

int? seed = null;
var seconds = 60.0;
var operations = long.MaxValue;
var trace = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seed" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s):
            seed = s;
            i++;
            break;
        case "--seconds" when i + 1 < args.Length && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var t) && t >= 0:
            seconds = t;
            i++;
            break;
        case "--operations" when i + 1 < args.Length && long.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0:
            operations = n;
            i++;
            break;
        case "--trace":
            trace = true;
            break;
        case "--help" or "-h":
            Console.WriteLine(Help);
            return 0;
        default:
            Console.Error.WriteLine($"bad argument {args[i]}; usage: --seed S --seconds T [--operations N] [--trace] (--help explains)");
            return 2;
    }
}

var options = new ChaosOptions(seed ?? Random.Shared.Next(1, int.MaxValue), seconds, operations, trace);
var lruLimit = new Random(options.Seed ^ 0x5eed).Next(0, 4);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"chaos: seed {options.Seed}, {options.Seconds} s{(operations == long.MaxValue ? string.Empty : $", at most {operations} operations")}, lru limit {lruLimit}"));

using var stop = new CancellationTokenSource();
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
void Cancel(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

using var fixtures = Fixtures.Compile();
var services = new ServiceCollection();
services.AddProcHex(b => b.UseLinux().Configure(o => o.LruLimit = lruLimit));
await using var provider = services.BuildServiceProvider();
var run = new ChaosRun(options, provider.GetRequiredService<ProcHexSession>(), fixtures, lruLimit, stop.Token);
try
{
    await run.RunAsync();
}
catch
{
    run.CleanUp();
    throw;
}

if (stop.IsCancellationRequested)
{
    Console.WriteLine("chaos: interrupted; every victim was killed");
}

Console.WriteLine($"chaos: {run.Operations} operations, {run.Violations.Count} violations");
return run.Violations.Count == 0 ? 0 : 1;
