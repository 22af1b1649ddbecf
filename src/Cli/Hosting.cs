using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ProcHex.Backends.Fake;

namespace ProcHex.Cli;

/// <summary>What every command gets: its output, the termination signals, and the backend it runs on.</summary>
internal sealed class CliContext(Reporter reporter, Termination termination, string backend, Func<string, string> show)
{
    /// <summary>How a raw symbol name is shown: demangled, or as it is with --no-demangle.</summary>
    public Func<string, string> Show { get; } = show;

    public Reporter Reporter { get; } = reporter;

    public Termination Termination { get; } = termination;

    public string Backend { get; } = backend;

    /// <summary>--interval: the hits since the last interval every so often, and once more at the end; null without it.</summary>
    public IntervalCounts? Intervals { get; init; }

    /// <summary>Real timers are fine except under the fake backend's deterministic scheduler.</summary>
    public bool RealTime => Backend != "fake";
}

internal static class Hosting
{
    public const string Linux = "linux", FreeBsd = "freebsd", Fake = "fake";

    public static string DefaultBackend =>
        OperatingSystem.IsLinux() ? Linux : OperatingSystem.IsFreeBSD() ? FreeBsd : Fake;

    /// <summary>The container: logging (to stderr, only with -v) and ProcHex on the chosen backend.</summary>
    /// <exception cref="CliFailure">The backend does not run here.</exception>
    public static ServiceProvider Build(string backend, bool verbose, FakeKernel? kernel, ISymbolDemangler demangler)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging =>
        {
            if (verbose)
            {
                logging.AddSimpleConsole(o => o.SingleLine = true);
                logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
                logging.SetMinimumLevel(LogLevel.Debug);
            }
            else
            {
                logging.SetMinimumLevel(LogLevel.None);
            }
        });

        try
        {
            services.AddProcHex(builder => _ = (backend switch
            {
                // Its handlers only count, and it starts no processes of its own: stops are answered on the owner.
                Linux => builder.UseLinux(o => o.AnswerStopsOnOwnerThread = true),
                FreeBsd => builder.UseFreeBsd(),
                _ => builder.UseFake(kernel ?? new FakeKernel()),
            }).Configure(o => o.Demangler = demangler));
        }
        catch (PlatformNotSupportedException ex)
        {
            throw new CliFailure(CliFailure.Failed, $"the {backend} backend does not run here: {ex.Message} (choose another with --backend)");
        }

        return services.BuildServiceProvider();
    }

    /// <summary>The fake backend's kernel with the test programs of <see cref="FakePrograms"/> installed.</summary>
    public static FakeKernel FakeKernelWithPrograms()
    {
        var kernel = new FakeKernel();
        new FakePrograms().RegisterWith(kernel);
        return kernel;
    }
}
