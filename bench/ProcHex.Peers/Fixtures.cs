namespace ProcHex.Peers;

/// <summary>
/// The builds of one bench run in one temporary directory, deleted on dispose: the shared programs once, then one
/// <see cref="Fixture"/> per <see cref="BuildVariant"/> asked for.
/// </summary>
internal sealed class Fixtures : IDisposable
{
    private Fixtures(string directory, IReadOnlyList<Fixture> builds)
    {
        Directory = directory;
        Builds = builds;
    }

    public string Directory { get; }

    /// <summary>One per variant, in the order asked for.</summary>
    public IReadOnlyList<Fixture> Builds { get; }

    /// <summary>The first build (the modes that measure one build ask for one).</summary>
    public Fixture First => Builds[0];

    public static async Task<Fixtures> BuildAsync(params BuildVariant[] variants)
    {
        var gcc = Tool.Find("gcc") ?? throw new BenchFailure("gcc is not on PATH: the bench compiles its fixture at run time (apt-get install gcc)");
        var directory = System.IO.Directory.CreateTempSubdirectory("prochex-peers-").FullName;
        try
        {
            await Fixture.BuildSharedAsync(gcc, directory);
            var builds = new List<Fixture>();
            foreach (var variant in variants)
            {
                builds.Add(await Fixture.BuildAsync(gcc, directory, variant));
            }

            return new Fixtures(directory, builds);
        }
        catch
        {
            Delete(directory);
            throw;
        }
    }

    public void Dispose() => Delete(Directory);

    private static void Delete(string directory)
    {
        try
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}
