namespace ProcHex.Backends.FreeBSD;

/// <summary>
/// How a victim is started without forking managed code: posix_spawn a shell that stops itself, attach to it
/// while it is stopped, then let it exec the program; the exec stop (PL_FLAG_EXEC) is the first instruction of the
/// new image. Same trampoline as the Linux backend.
/// </summary>
internal static class Trampoline
{
    public const string Shell = "/bin/sh";

    /// <summary>
    /// $0 is the resolved program path, "$@" the caller's arguments after argv[0]. FreeBSD's sh has no
    /// <c>exec -a</c>, so the program's argv[0] is its path, not the caller's argv[0] (see README).
    /// </summary>
    public const string Script = "kill -STOP $$; exec \"$0\" \"$@\"";

    /// <summary>sh's exit statuses when exec fails (POSIX "Command Search and Execution").</summary>
    public const int NotFoundStatus = 127;

    public const int NotExecutableStatus = 126;

    public static List<string> Argv(string resolvedFile, IReadOnlyList<string> arguments) =>
        ["sh", "-c", Script, resolvedFile, .. arguments.Skip(1)];

    /// <summary>
    /// Resolves FILE as execvp would (a name without a slash is searched in PATH), so that a missing or
    /// non-executable file fails here with errno's reason instead of as a shell exit status.
    /// </summary>
    public static string Resolve(IFreeBsdKernel kernel, string file, string? path, out int errno)
    {
        errno = 0;
        if (file.Contains('/', StringComparison.Ordinal))
        {
            _ = kernel.Access(file, Interop.Sys.X_OK, out errno);
            return file;
        }

        var firstError = Interop.Errno.ENOENT;
        foreach (var dir in (path ?? "/bin:/usr/bin").Split(':'))
        {
            var candidate = Path.Join(dir.Length == 0 ? "." : dir, file);
            if (kernel.Access(candidate, Interop.Sys.X_OK, out var e) == 0)
            {
                return candidate;
            }

            if (e == Interop.Errno.EACCES)
            {
                firstError = e;
            }
        }

        errno = firstError;
        return file;
    }
}
