using Microsoft.Extensions.DependencyInjection;
using ProcHex.Backends.Fake;

namespace ProcHex;

/// <c>UseFake()</c>: the scripted fake kernel as the backend of <see cref="ProcHexBuilder"/>.
public static class FakeProcHexBuilderExtensions
{
    /// <summary>Runs ProcHex on <paramref name="kernel"/>: <c>services.AddProcHex(b => b.UseFake(kernel))</c>.</summary>
    public static ProcHexBuilder UseFake(this ProcHexBuilder builder, FakeKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(kernel);
        builder.Services.AddSingleton(kernel);
        return builder.UseTracer(_ => new FakeTracer(kernel));
    }

    /// <summary>Runs ProcHex on a fresh, empty kernel (resolve <see cref="FakeKernel"/> to register images).</summary>
    public static ProcHexBuilder UseFake(this ProcHexBuilder builder) => builder.UseFake(new FakeKernel());
}
