using System.Diagnostics;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using ProcHex.Elf;

namespace ProcHex.Backends.Linux.Tests;

/// <summary>A process's memory through /proc/PID/mem: enough for read-only tests (we are its parent, or it is us).</summary>
internal sealed class ProcMemory : IVictimMemory, IDisposable
{
    private readonly SafeFileHandle _file;

    public ProcMemory(int pid) => _file = File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read);

    public static ProcMemory Self { get; } = new(Environment.ProcessId);

    public int Read(ulong address, Span<byte> destination)
    {
        if (address > long.MaxValue)
        {
            return 0;
        }

        try
        {
            var total = 0;
            while (total < destination.Length)
            {
                var read = RandomAccess.Read(_file, destination[total..], (long)address + total);
                if (read <= 0)
                {
                    break;
                }

                total += read;
            }

            return total;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>Real memory with one range replaced by bytes the test controls (a scripted r_debug over a real link map).</summary>
internal sealed class OverlayMemory(IVictimMemory inner, ulong address, byte[] overlay) : IVictimMemory
{
    public byte[] Overlay => overlay;

    public int Read(ulong at, Span<byte> destination)
    {
        var read = inner.Read(at, destination);
        for (var i = 0; i < destination.Length; i++)
        {
            var a = at + (ulong)i;
            if (a >= address && a - address < (ulong)overlay.Length)
            {
                destination[i] = overlay[a - address];
                read = Math.Max(read, i + 1);
            }
        }

        return read;
    }
}

/// <summary>
/// A fixture started with Process.Start (fine here: it is never traced), stopped in its sleep once it printed
/// "ready", with the addresses it printed.
/// </summary>
internal sealed class RunningFixture : IDisposable
{
    private readonly Process _process;

    public RunningFixture(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        _process = Process.Start(info)!;
        while (_process.StandardOutput.ReadLine() is { } line && line != "ready")
        {
            var fields = line.Split(' ');
            if (fields[0] == "error")
            {
                throw new InvalidOperationException(line);
            }

            Printed.Add((fields[0], fields[0] == "lib" ? fields[1] : null, ParseAddress(fields[^1])));
        }

        Memory = new ProcMemory(Pid);
    }

    public int Pid => _process.Id;

    public ProcMemory Memory { get; }

    public List<(string Kind, string? Library, ulong Address)> Printed { get; } = [];

    public ulong Address(string kind) => Printed.First(p => p.Kind == kind).Address;

    public ulong LibraryAddress(string library) => Printed.First(p => p.Library == library).Address;

    public void Dispose()
    {
        Memory.Dispose();
        _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
    }

    private static ulong ParseAddress(string text) =>
        ulong.Parse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
}
