using System.Globalization;
using System.Runtime.InteropServices;

namespace ProcHex.Peers;

/// <summary>What the numbers were measured on.</summary>
internal static class Machine
{
    public static async Task<string> DescribeAsync()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var kernel = (await Tool.RunAsync("uname", ["-r"], TimeSpan.FromSeconds(10))).Stdout.Trim();
        var gdb = await VersionAsync("gdb", "--version");
        var ltrace = await VersionAsync("ltrace", "-V");
        var gcc = await VersionAsync("gcc", "--version");
        return string.Create(CultureInfo.InvariantCulture, $"""
            - Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC
            - CPU: {cpu ?? "unknown"}, {Environment.ProcessorCount} cores
            - Kernel: {kernel} ({RuntimeInformation.OSDescription})
            - .NET: {RuntimeInformation.FrameworkDescription}; gcc: {gcc}; gdb: {gdb}; ltrace: {ltrace}
            """);
    }

    private static async Task<string> VersionAsync(string tool, string flag)
    {
        if (Tool.Find(tool) is not { } path)
        {
            return "not installed";
        }

        var result = await Tool.RunAsync(path, [flag], TimeSpan.FromSeconds(10));
        return result.Stdout.Split('\n').FirstOrDefault()?.Trim() ?? "?";
    }
}
