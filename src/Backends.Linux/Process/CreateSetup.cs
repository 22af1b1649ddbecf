using Microsoft.Win32.SafeHandles;
using ProcHex.Ports;
using static ProcHex.Backends.Linux.Interop.Sys;

namespace ProcHex.Backends.Linux;

/// <summary>
/// The descriptors a create's options ask for (issue 22 item 1), opened by the owner before posix_spawn so that a
/// failure names the file: the child's ends (dup2'd onto 0, 1, 2 by the spawn's file actions, all O_CLOEXEC here)
/// and the tracer's ends of its pipes. Owner thread only.
/// </summary>
internal sealed class CreateSetup : IDisposable
{
    private static readonly string[] Names = ["standard input", "standard output", "standard error"];

    private readonly ILinuxKernel _kernel;
    private readonly int[] _child = [-1, -1, -1];
    private readonly int[] _ours = [-1, -1, -1];

    private CreateSetup(ILinuxKernel kernel) => _kernel = kernel;

    /// <summary>What posix_spawn is to do in the child.</summary>
    public SpawnSetup Spawn { get; private set; }

    /// <summary>Opens what <paramref name="request"/> names; on failure nothing stays open.</summary>
    /// <exception cref="ProcessStartException">A file could not be opened, a pipe made, or the directory is unusable.</exception>
    public static CreateSetup Open(ILinuxKernel kernel, ProcessStartRequest request)
    {
        var setup = new CreateSetup(kernel);
        try
        {
            var stdio = request.Stdio;
            for (var fd = 0; fd < 3; fd++)
            {
                setup.OpenOne(fd, stdio[fd]);
            }

            if (request.WorkingDirectory is { } dir && kernel.Access(dir, X_OK) is var errno and not 0)
            {
                throw WorkingDirectoryError(dir, errno);
            }

            setup.Spawn = new SpawnSetup(request.WorkingDirectory, setup._child[0], setup._child[1], setup._child[2], request.DisableAslr);
            return setup;
        }
        catch
        {
            setup.CloseOurs();
            setup.CloseChildEnds();
            throw;
        }
    }

    /// <summary>The create failed with <paramref name="errno"/> from posix_spawn with a directory to change to.</summary>
    public static ProcessStartException WorkingDirectoryError(string dir, int errno) =>
        new($"cannot use working directory {dir}: {DescribeError(errno)}", Interop.Errno.KindOf(errno), errno);

    /// <summary>Closes the child's ends: after posix_spawn, whatever it returned (the child has its own copies).</summary>
    public void CloseChildEnds()
    {
        for (var i = 0; i < 3; i++)
        {
            if (_child[i] >= 0)
            {
                _kernel.Close(_child[i]);
                _child[i] = -1;
            }
        }
    }

    /// <summary>Hands the tracer's pipe ends over as streams (null when nothing is piped); this object no longer owns them.</summary>
    public StandardStreams? TakeStreams()
    {
        if (_ours.All(fd => fd < 0))
        {
            return null;
        }

        var streams = new StandardStreams(Stream(0, FileAccess.Write), Stream(1, FileAccess.Read), Stream(2, FileAccess.Read));
        Array.Fill(_ours, -1);
        return streams;
    }

    /// <summary>Closes whatever is still open: the tracer's ends too, when the create failed before <see cref="TakeStreams"/>.</summary>
    public void Dispose()
    {
        CloseChildEnds();
        CloseOurs();
    }

    /// <summary>Sets the limits on the stopped <paramref name="pid"/>, before it execs the program.</summary>
    /// <exception cref="ProcessStartException">A limit was refused (raising a hard limit needs CAP_SYS_RESOURCE).</exception>
    public static void SetLimits(ILinuxKernel kernel, int pid, IReadOnlyDictionary<ResourceLimit, ResourceLimitValue>? limits)
    {
        foreach (var (limit, value) in limits ?? new Dictionary<ResourceLimit, ResourceLimitValue>())
        {
            if (kernel.SetResourceLimit(pid, Resource(limit), value.Soft, value.Hard) is var errno and not 0)
            {
                throw new ProcessStartException(
                    $"cannot set the {limit} limit to soft {Text(value.Soft)}, hard {Text(value.Hard)}: {DescribeError(errno)}",
                    Interop.Errno.KindOf(errno),
                    errno);
            }
        }
    }

    private static string Text(ulong value) => value == ResourceLimitValue.Unlimited ? "unlimited" : value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static int Resource(ResourceLimit limit) => limit switch
    {
        ResourceLimit.CoreFileSize => RLIMIT_CORE,
        ResourceLimit.OpenFiles => RLIMIT_NOFILE,
        ResourceLimit.StackSize => RLIMIT_STACK,
        ResourceLimit.AddressSpace => RLIMIT_AS,
        ResourceLimit.CpuTime => RLIMIT_CPU,
        ResourceLimit.FileSize => RLIMIT_FSIZE,
        _ => throw new ProcessStartException($"unknown resource limit {limit}", TracerErrorKind.InvalidArgument),
    };

    private void OpenOne(int fd, StdioTarget target)
    {
        var input = fd == 0;
        switch (target.Kind)
        {
            case StdioKind.Inherit:
                return;
            case StdioKind.Null:
                _child[fd] = OpenOrThrow("/dev/null", input ? O_RDONLY : O_WRONLY, fd);
                return;
            case StdioKind.File:
                var flags = input ? O_RDONLY : O_WRONLY | O_CREAT | (target.Append ? O_APPEND : O_TRUNC);
                _child[fd] = OpenOrThrow(target.Path!, flags, fd);
                return;
            case StdioKind.Pipe:
                if (_kernel.Pipe(out var readEnd, out var writeEnd) is var errno and not 0)
                {
                    throw new ProcessStartException($"cannot make a pipe for {Names[fd]}: {DescribeError(errno)}", Interop.Errno.KindOf(errno), errno);
                }

                (_child[fd], _ours[fd]) = input ? (readEnd, writeEnd) : (writeEnd, readEnd);
                return;
            default:
                throw new ProcessStartException($"unknown {Names[fd]} target {target}", TracerErrorKind.InvalidArgument);
        }
    }

    private int OpenOrThrow(string path, int flags, int fd)
    {
        var opened = _kernel.OpenFile(path, flags, out var errno);
        return opened >= 0
            ? opened
            : throw new ProcessStartException(
                $"cannot open {path} for {Names[fd]}: {DescribeError(errno)}",
                errno == Interop.Errno.EISDIR ? TracerErrorKind.InvalidArgument : Interop.Errno.KindOf(errno),
                errno);
    }

    private FileStream? Stream(int fd, FileAccess access) =>
        _ours[fd] < 0 ? null : new FileStream(new SafeFileHandle(_ours[fd], ownsHandle: true), access, bufferSize: 0);

    private void CloseOurs()
    {
        for (var i = 0; i < 3; i++)
        {
            if (_ours[i] >= 0)
            {
                _kernel.Close(_ours[i]);
                _ours[i] = -1;
            }
        }
    }
}
