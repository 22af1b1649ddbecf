using System.Globalization;
using System.Text;

namespace ProcHex.Backends.Linux.Symbols;

/// <summary>One line of /proc/PID/maps.</summary>
/// <param name="Start">First address of the mapping.</param>
/// <param name="End">One past its last address.</param>
/// <param name="Permissions">"r-xp" and friends.</param>
/// <param name="Offset">File offset mapped at <paramref name="Start"/>.</param>
/// <param name="Device">"fe:00" as major:minor, packed major &lt;&lt; 32 | minor.</param>
/// <param name="Inode">0 for anonymous and pseudo mappings.</param>
/// <param name="Path">
/// The file, a pseudo-name ("[heap]", "[stack]", "[vdso]", "[anon:name]"), or "" for an anonymous mapping. A
/// trailing " (deleted)" is taken off and reported in <paramref name="IsDeleted"/>; "\012" is turned back into a newline.
/// </param>
/// <param name="IsDeleted">The file was unlinked (or replaced) after it was mapped.</param>
internal readonly record struct ProcMapsEntry(
    ulong Start,
    ulong End,
    string Permissions,
    ulong Offset,
    ulong Device,
    ulong Inode,
    string Path,
    bool IsDeleted)
{
    /// <summary>True when the mapping's permissions start with <c>r</c>.</summary>
    public bool IsReadable => Permissions.Length > 0 && Permissions[0] == 'r';

    /// <summary>True when the mapping holds executable text (<c>x</c> permission).</summary>
    public bool IsExecutable => Permissions.Length > 2 && Permissions[2] == 'x';

    /// <summary>Backed by a file (as opposed to anonymous memory or a kernel pseudo-mapping).</summary>
    public bool IsFile => Inode != 0 && Path.Length > 0 && Path[0] == '/';

    /// <summary>True for the kernel's own regions: <c>[stack]</c>, <c>[heap]</c>, <c>[vdso]</c>, <c>[vvar]</c>...</summary>
    public bool IsPseudo => Path.Length > 1 && Path[0] == '[' && Path[^1] == ']';

    /// <summary>The mapping's length in bytes.</summary>
    public ulong Size => End - Start;
}

/// <summary>
/// Parses /proc/PID/maps. Lines look like
/// <c>7ff010aa4000-7ff010aca000 r--p 00000000 fe:00 332096     /usr/lib/x86_64-linux-gnu/libc.so.6</c>;
/// the path is everything after the padding, so paths with spaces survive.
/// </summary>
internal static class ProcMaps
{
    private const string DeletedSuffix = " (deleted)";

    /// <summary>Reads the current mappings of <paramref name="pid"/>.</summary>
    /// <exception cref="IOException">The process is gone or its maps are not readable.</exception>
    /// <exception cref="FormatException">A line does not have the maps format.</exception>
    public static IReadOnlyList<ProcMapsEntry> Read(int pid) => Parse(LinuxKernel.Instance.ReadMaps(pid));

    /// <summary>Reads /proc/PID/maps through <paramref name="kernel"/>, a failure as a port error.</summary>
    /// <exception cref="Ports.TracerException">The mappings cannot be read (the process is gone, or not ours to see).</exception>
    internal static IReadOnlyList<ProcMapsEntry> ReadOrThrow(ILinuxKernel kernel, int pid)
    {
        try
        {
            return Parse(kernel.ReadMaps(pid));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Ports.TracerException($"cannot read the mappings of pid {pid}: {e.Message}", kernel.State(pid) is null ? Ports.TracerErrorKind.Gone : Ports.TracerErrorKind.Failed, 0, e);
        }
    }

    /// <summary>Parses the whole text of <c>/proc/PID/maps</c>, skipping lines it cannot read.</summary>
    /// <param name="text">The file's content.</param>
    public static IReadOnlyList<ProcMapsEntry> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var entries = new List<ProcMapsEntry>();
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            if (line.IsWhiteSpace())
            {
                continue;
            }

            entries.Add(TryParseLine(line, out var entry) ? entry : throw new FormatException($"not a /proc/PID/maps line: \"{line}\""));
        }

        return entries;
    }

    /// <summary>Parses one line of <c>/proc/PID/maps</c>; false when it is not one.</summary>
    /// <param name="line">The line, without its newline.</param>
    /// <param name="entry">The mapping it describes.</param>
    public static bool TryParseLine(ReadOnlySpan<char> line, out ProcMapsEntry entry)
    {
        entry = default;
        if (!TryTakeField(ref line, out var range) || !TryTakeField(ref line, out var permissions)
            || !TryTakeField(ref line, out var offsetText) || !TryTakeField(ref line, out var deviceText)
            || !TryTakeField(ref line, out var inodeText))
        {
            return false;
        }

        var dash = range.IndexOf('-');
        var colon = deviceText.IndexOf(':');
        if (dash <= 0 || colon <= 0
            || !ulong.TryParse(range[..dash], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
            || !ulong.TryParse(range[(dash + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end)
            || !ulong.TryParse(offsetText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var offset)
            || !ulong.TryParse(deviceText[..colon], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var major)
            || !ulong.TryParse(deviceText[(colon + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var minor)
            || !ulong.TryParse(inodeText, NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
            || end < start || permissions.Length < 4)
        {
            return false;
        }

        // The path is the rest of the line after the column padding; it may itself contain spaces.
        var path = line.TrimStart(' ');
        var deleted = path.EndsWith(DeletedSuffix, StringComparison.Ordinal);
        if (deleted)
        {
            path = path[..^DeletedSuffix.Length];
        }

        entry = new ProcMapsEntry(start, end, permissions.ToString(), offset, (major << 32) | minor, inode, Unescape(path), deleted);
        return true;
    }

    private static bool TryTakeField(ref ReadOnlySpan<char> line, out ReadOnlySpan<char> field)
    {
        line = line.TrimStart(' ');
        var space = line.IndexOf(' ');
        if (space < 0)
        {
            // The inode may end the line when there is no path.
            field = line;
            line = [];
            return field.Length > 0;
        }

        field = line[..space];
        line = line[(space + 1)..];
        return true;
    }

    /// <summary>The kernel escapes a newline in a path as "\012" (seq_path's mangling).</summary>
    private static string Unescape(ReadOnlySpan<char> path)
    {
        if (path.IndexOf("\\012", StringComparison.Ordinal) < 0)
        {
            return path.ToString();
        }

        var builder = new StringBuilder(path.Length);
        for (var i = 0; i < path.Length; i++)
        {
            if (path[i] == '\\' && path[i..].StartsWith("\\012", StringComparison.Ordinal))
            {
                builder.Append('\n');
                i += 3;
            }
            else
            {
                builder.Append(path[i]);
            }
        }

        return builder.ToString();
    }
}
