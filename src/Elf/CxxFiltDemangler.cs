using System.ComponentModel;
using System.Diagnostics;
using ProcHex.Ports;

namespace ProcHex.Elf;

/// <summary>
/// Demangles C++ (Itanium-ABI) symbol names with binutils' <c>c++filt</c>, run as two long-lived co-processes: one
/// prints the full names (<c>int ns::twice&lt;int&gt;(int)</c>), one with <c>-p</c> the names alone
/// (<c>ns::twice&lt;int&gt;</c>). c++filt reads one name per line and flushes after each line, so a batch is written
/// on one thread while its answers are read on this one. Answers are cached; a name c++filt gives back unchanged
/// is not mangled.
/// </summary>
/// <remarks>
/// Why a co-process and not a demangler of our own: no .NET package demangles, a faithful Itanium demangler is
/// some 6,000 lines of LLVM or libiberty to port and keep right, and c++filt is libiberty's demangler, the one gdb
/// and binutils show names with, on every machine that has a toolchain. Both processes start in the constructor,
/// on the caller's thread: a ptrace owner thread must never get children of its own (its wait for any child would
/// reap them). If c++filt is missing or dies, names stay raw and <see cref="Unavailable"/> says why.
/// </remarks>
public sealed class CxxFiltDemangler : ISymbolDemangler, IDisposable
{
    /// <summary>c++filt reads tokens of at most this many characters; longer ones would come back split.</summary>
    private const int MaxToken = 32_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, DemangledName?> _cache = new(StringComparer.Ordinal);
    private readonly Process? _full;
    private readonly Process? _names;

    /// <param name="program">The c++filt to run (default: <c>c++filt</c> on PATH).</param>
    public CxxFiltDemangler(string program = "c++filt")
    {
        ArgumentException.ThrowIfNullOrEmpty(program);
        try
        {
            _full = Start(program, []);
            _names = Start(program, ["-p"]);
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException or IOException)
        {
            Unavailable = $"cannot run {program} (binutils): {ex.Message}";
            Stop(_full);
            _full = null;
        }
    }

    /// <summary>Why names are not demangled (c++filt is missing or died), or null while it works.</summary>
    public string? Unavailable { get; private set; }

    /// <summary>The demangled form of one name, or the name itself when it is not mangled (or c++filt is unavailable).</summary>
    public string Show(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Demangle([name])[0]?.Full ?? name;
    }

    /// <inheritdoc/>
    public IReadOnlyList<DemangledName?> Demangle(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var result = new DemangledName?[names.Count];
        lock (_gate)
        {
            var missing = new List<string>();
            foreach (var name in names)
            {
                if (!_cache.ContainsKey(name) && IsCandidate(name) && !missing.Contains(name))
                {
                    missing.Add(name);
                }
            }

            if (missing.Count > 0 && Unavailable is null && _full is not null && _names is not null)
            {
                try
                {
                    var full = Ask(_full, missing);
                    var bare = Ask(_names, missing);
                    for (var i = 0; i < missing.Count; i++)
                    {
                        _cache[missing[i]] = full[i] == missing[i] ? null : new DemangledName(full[i], bare[i]);
                    }
                }
                catch (IOException ex)
                {
                    Unavailable = $"c++filt stopped answering: {ex.Message}";
                }
            }

            for (var i = 0; i < names.Count; i++)
            {
                result[i] = _cache.GetValueOrDefault(names[i]);
            }
        }

        return result;
    }

    /// <summary>Ends the c++filt process this demangler keeps running.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            Stop(_full);
            Stop(_names);
            Unavailable ??= "disposed";
        }
    }

    /// <summary>Only what c++filt would read as one token, starting like a mangled name.</summary>
    private static bool IsCandidate(string name) =>
        name.Length is > 2 and < MaxToken
        && name.StartsWith("_Z", StringComparison.Ordinal)
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '$' or '.');

    private static Process Start(string program, string[] arguments)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start");
        process.StandardInput.AutoFlush = false;
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Writes every name (on another thread, so a full pipe cannot stall us both) and reads as many lines back.</summary>
    private static string[] Ask(Process process, List<string> names)
    {
        var writing = Task.Run(() =>
        {
            foreach (var name in names)
            {
                process.StandardInput.Write(name);
                process.StandardInput.Write('\n');
            }

            process.StandardInput.Flush();
        });
        var answers = new string[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            answers[i] = process.StandardOutput.ReadLine() ?? throw new IOException("c++filt exited");
        }

        writing.GetAwaiter().GetResult();
        return answers;
    }

    private static void Stop(Process? process)
    {
        if (process is null)
        {
            return;
        }

        try
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(2_000))
            {
                process.Kill();
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or Win32Exception)
        {
            // Already gone.
        }

        process.Dispose();
    }
}
