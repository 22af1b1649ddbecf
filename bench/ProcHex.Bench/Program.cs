using BenchmarkDotNet.Running;

namespace ProcHex.Bench;

internal static class Program
{
    /// <summary>BenchmarkDotNet's switcher: `--filter '*'` runs everything, `--job Dry` is the smoke run CI uses.</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
