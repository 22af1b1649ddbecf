namespace ProcHex.Backends.Linux.Simulation.Kernel;

/// <summary>
/// An executable: named functions of <see cref="ProgramStep"/>s laid out in text from <see cref="TextBase"/>, one
/// function every <see cref="FunctionSpan"/> bytes and one byte (a nop, or the push a <see cref="PushFrame"/> is) per step. A thread's rip is the address of
/// its next step, so planting 0xCC over a step and rewinding rip after the trap work as they do on x86-64.
/// </summary>
internal sealed class FakeImage
{
    public const ulong TextBase = 0x401000;
    public const ulong FunctionSpan = 0x100;
    public const byte Nop = 0x90;
    public const byte Int3 = 0xCC;
    public const byte PushRbp = 0x55;

    private readonly List<(string Name, ProgramStep[] Steps)> _functions = [];

    public FakeImage(string name) => Name = name;

    public string Name { get; }

    public ulong Entry => AddressOf("main");

    public int FunctionCount => _functions.Count;

    public FakeImage Function(string name, params ProgramStep[] steps)
    {
        if (steps.Length == 0 || (ulong)steps.Length > FunctionSpan)
        {
            throw new ArgumentException($"a function has 1 to {FunctionSpan} steps", nameof(steps));
        }

        _functions.Add((name, steps));
        return this;
    }

    public ulong AddressOf(string function)
    {
        var i = _functions.FindIndex(f => f.Name == function);
        return i >= 0 ? TextBase + ((ulong)i * FunctionSpan) : throw new ArgumentException($"no function {function} in {Name}", nameof(function));
    }

    /// <summary>The step at <paramref name="address"/>, or null between functions' steps.</summary>
    public ProgramStep? StepAt(ulong address)
    {
        if (address < TextBase)
        {
            return null;
        }

        var function = (int)((address - TextBase) / FunctionSpan);
        var index = (int)((address - TextBase) % FunctionSpan);
        return function < _functions.Count && index < _functions[function].Steps.Length ? _functions[function].Steps[index] : null;
    }

    /// <summary>The address of step <paramref name="index"/> in the function holding <paramref name="address"/>.</summary>
    public static ulong StepInSameFunction(ulong address, int index) => address - ((address - TextBase) % FunctionSpan) + (ulong)index;

    public FakeMemory Load()
    {
        var memory = new FakeMemory();
        for (var i = 0; i < _functions.Count; i++)
        {
            var start = TextBase + ((ulong)i * FunctionSpan);
            for (var s = 0; s < _functions[i].Steps.Length; s++)
            {
                memory.Map(start + (ulong)s, _functions[i].Steps[s] is PushFrame ? PushRbp : Nop);
            }
        }

        return memory;
    }
}
