namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>The scheduler's view of a task (task->state and exit_state).</summary>
internal enum TaskState
{
    /// <summary>Runnable: it takes turns (state R, or S inside a <see cref="Sleep"/> step).</summary>
    Running,

    /// <summary>TASK_TRACED: in a ptrace stop, listening or not (state t).</summary>
    Traced,

    /// <summary>TASK_STOPPED: an untraced task in a group stop (state T).</summary>
    Stopped,

    /// <summary>Blocked in the kernel until <see cref="FakeTask.WaitCondition"/> holds: exec's de_thread, vfork (state D).</summary>
    Blocked,

    /// <summary>EXIT_ZOMBIE: ended, not yet reaped (state Z).</summary>
    Zombie,

    /// <summary>Reaped: gone from every table.</summary>
    Dead,
}
