namespace ProcHex.Ports;

/// <summary>Symbols and mappings of a victim's current image: <c>object`symbol</c> lookup both ways.</summary>
public interface ISymbolTable
{
    /// <summary>Re-reads mappings and symbol tables after the library list changed.</summary>
    void Refresh();

    /// <summary>Forgets the old image entirely and reads the new one (after exec).</summary>
    void Reset();

    /// <summary>The loaded objects, the executable first.</summary>
    IReadOnlyList<LoadedObject> Objects { get; }

    /// <summary>
    /// Finds <paramref name="symbol"/> in <paramref name="objectName"/> ("a.out" is the executable; otherwise a
    /// basename or full path), or in every object in load order when <paramref name="objectName"/> is null.
    /// </summary>
    bool TryLookup(string? objectName, string symbol, out ulong address);

    /// <summary>Names the code at <paramref name="address"/> as object, symbol and offset.</summary>
    bool TryResolve(ulong address, out SymbolLocation location);

    /// <summary>
    /// The function symbols (raw names, without <c>@VERSION</c>; their addresses in the victim) of the object
    /// <paramref name="objectName"/> names as <see cref="TryLookup"/> would find it: what matching a SPEC against
    /// demangled names or a wildcard needs. A table that cannot list them returns none (exact names still work).
    /// </summary>
    IReadOnlyList<FunctionSymbol> FunctionsOf(string objectName) => [];

    /// <summary>
    /// When the function <paramref name="name"/> found at <paramref name="address"/> is a GNU indirect function
    /// (STT_GNU_IFUNC: the address is its resolver, which runs once and returns the implementation the program really
    /// calls), what is needed to find that implementation; null for an ordinary function, or when the table cannot tell.
    /// </summary>
    IndirectFunction? FindIndirectFunction(string name, ulong address) => null;

    /// <summary>
    /// Whether the object <paramref name="objectName"/> has a relocation naming <paramref name="symbol"/> (a GOT slot
    /// or PLT entry: it calls or takes the address of a function another object defines); null when the table cannot
    /// tell (no such object, or an image read from memory, without its section headers).
    /// </summary>
    bool? References(string objectName, string symbol) => null;

    /// <summary>
    /// The size in bytes of the function that starts exactly at <paramref name="address"/>: what an in-victim counter must
    /// know to check every branch of the function against the bytes its jump replaces. From the function's symbol (ELF
    /// st_size) when a sized one starts there, otherwise from the object's unwind tables (an .eh_frame FDE's start and
    /// range: what stripped code, such as a stripped libc's IFUNC implementations, still has). Null when neither starts
    /// exactly there (an address inside a function is not an entry), or the table cannot tell.
    /// </summary>
    int? FunctionSize(ulong address) => null;
}

/// <summary>
/// A GNU indirect function: its symbol's value is a resolver, and the implementation is whatever the resolver returns.
/// Where the dynamic linker already stored that answer, <see cref="Slots"/> says: the GOT slots of relocations naming
/// it (GLOB_DAT, JUMP_SLOT) in any loaded object and the defining object's own IRELATIVE slots for it.
/// </summary>
/// <param name="Name">The symbol.</param>
/// <param name="Resolver">The resolver's address (the symbol's value plus the load bias).</param>
/// <param name="ObjectName">The object that defines it.</param>
/// <param name="Code">The defining object's extent: a slot whose value lies outside it was bound to another definition (interposed).</param>
/// <param name="Slots">Addresses of GOT slots that hold the implementation's address once bound.</param>
/// <param name="Unbound">
/// The PLT sections of the objects holding those slots: a lazily bound slot not yet used points in there, not at the
/// implementation.
/// </param>
public sealed record IndirectFunction(
    string Name,
    ulong Resolver,
    string ObjectName,
    AddressRange Code,
    IReadOnlyList<ulong> Slots,
    IReadOnlyList<AddressRange> Unbound)
{
    /// <summary>True when <paramref name="value"/>, read from a slot or returned by the resolver, can be the implementation.</summary>
    public bool IsImplementation(ulong value) =>
        value != Resolver && Code.Contains(value) && !Unbound.Any(r => r.Contains(value));
}

/// <summary>The addresses [Start, End).</summary>
public readonly record struct AddressRange(ulong Start, ulong End)
{
    /// <summary>True when <paramref name="address"/> lies in [Start, End).</summary>
    /// <param name="address">An address in the victim.</param>
    public bool Contains(ulong address) => address >= Start && address < End;
}

/// <summary>A function an object defines: its raw (mangled) name and where it is in the victim.</summary>
public readonly record struct FunctionSymbol(string Name, ulong Address);

/// <summary>A mapped object: executable, shared library, the vDSO.</summary>
/// <param name="Path">Full path as mapped (or a pseudo-name such as "[vdso]").</param>
/// <param name="BaseAddress">Load bias: symbol values plus this are addresses.</param>
public sealed record LoadedObject(string Path, ulong BaseAddress)
{
    /// <summary>The object's file name without its directory (<c>libc.so.6</c>), as SPECs name it.</summary>
    public string Name => System.IO.Path.GetFileName(Path);
}

/// <summary>Where an address is: <c>object`symbol+0xoffset</c>.</summary>
public readonly record struct SymbolLocation(string ObjectName, string? Symbol, ulong Offset)
{
    /// <inheritdoc/>
    public override string ToString() =>
        Symbol is null ? $"{ObjectName}`0x{Offset:x}" : Offset == 0 ? $"{ObjectName}`{Symbol}" : $"{ObjectName}`{Symbol}+0x{Offset:x}";
}
