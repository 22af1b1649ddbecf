using System.Diagnostics;

namespace ProcHex.Elf.Tests;

/// <summary>The c++filt co-process demangler: what SPECs and every output's C++ names rest on.</summary>
[Trait("Backend", "Linux")]
public sealed class CxxFiltDemanglerTests
{
    private const string LibStdCxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

    [Fact]
    public void Demangles_every_function_of_libstdcxx_as_a_one_shot_cxxfilt_does_in_both_forms()
    {
        var names = ElfFile.Open(LibStdCxx).Symbols.ByValue.ToArray()
            .Select(s => s.Name.Split('@')[0])
            .Where(n => n.StartsWith("_Z", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        Assert.True(names.Count > 3000, $"only {names.Count} C++ symbols in {LibStdCxx}");

        using var demangler = new CxxFiltDemangler();
        var answers = demangler.Demangle(names);

        var full = OneShot([], names);
        var bare = OneShot(["-p"], names);
        var wrong = new List<string>();
        for (var i = 0; i < names.Count; i++)
        {
            (string, string)? expected = full[i] == names[i] ? null : (full[i], bare[i]);
            var actual = answers[i] is { } a ? (a.Full, a.Name) : ((string, string)?)null;
            if (expected != actual)
            {
                wrong.Add($"{names[i]}: expected {expected}, got {actual}");
            }
        }

        Assert.True(wrong.Count == 0, $"{wrong.Count} of {names.Count} differ:\n{string.Join('\n', wrong.Take(20))}");
        Assert.Null(demangler.Unavailable);
    }

    [Fact]
    public void A_name_that_is_not_mangled_is_null_and_shown_as_it_is()
    {
        using var demangler = new CxxFiltDemangler();

        var answers = demangler.Demangle(["main", "_Znot_mangled", "malloc@@GLIBC_2.2.5"]);

        Assert.All(answers, Assert.Null);
        Assert.Equal("main", demangler.Show("main"));
        Assert.Equal("ns::Widget::poke(int) const", demangler.Show("_ZNK2ns6Widget4pokeEi"));
    }

    [Fact]
    public void Signature_and_call_leave_out_the_return_type_and_the_qualifiers()
    {
        using var demangler = new CxxFiltDemangler();

        var twice = demangler.Demangle(["_ZN2ns5twiceIiEET_S1_"])[0]!;
        var poke = demangler.Demangle(["_ZNK2ns6Widget4pokeEi"])[0]!;

        Assert.Equal("int ns::twice<int>(int)", twice.Full);
        Assert.Equal("ns::twice<int>", twice.Name);
        Assert.Equal("ns::twice<int>(int)", twice.Signature);
        Assert.Equal("ns::Widget::poke(int) const", poke.Signature);
        Assert.Equal("ns::Widget::poke(int)", poke.Call);
    }

    [Fact]
    public void Without_cxxfilt_names_stay_raw_and_the_reason_is_given()
    {
        using var demangler = new CxxFiltDemangler("/nonexistent/c++filt");

        Assert.Null(demangler.Demangle(["_ZNK2ns6Widget4pokeEi"])[0]);
        Assert.Equal("_ZNK2ns6Widget4pokeEi", demangler.Show("_ZNK2ns6Widget4pokeEi"));
        Assert.Contains("cannot run /nonexistent/c++filt", demangler.Unavailable, StringComparison.Ordinal);
    }

    /// <summary>c++filt run once over a file of names: the reference the co-process must agree with.</summary>
    private static string[] OneShot(string[] options, List<string> names)
    {
        var input = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(input, names);
            var info = new ProcessStartInfo("sh") { RedirectStandardOutput = true };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add($"c++filt {string.Join(' ', options)} < '{input}'");
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            var lines = output.Split('\n');
            return lines[..names.Count];
        }
        finally
        {
            File.Delete(input);
        }
    }
}
