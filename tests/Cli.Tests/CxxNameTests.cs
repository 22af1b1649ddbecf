using System.Globalization;
using ProcHex.Cli.Tests.Support;

namespace ProcHex.Cli.Tests;

/// <summary>
/// Issue 23, parts 2 and 3: SPECs by demangled C++ names (namespaces, overloads, templates, methods), every output
/// demangled (--no-demangle shows raw names), inspect's PCs too. cxx.cpp calls each function a known number of times.
/// </summary>
public sealed class CxxNameTests
{
    private static string Cxx => FixturePrograms.PathOf("cxx");

    [Theory]
    [InlineData("ns::Shape::area", 30)] // both overloads: area(int) twice and area(double) once per round
    [InlineData("ns::Shape::area(int)", 20)] // one overload, its const qualifier left out
    [InlineData("ns::Shape::area(int) const", 20)]
    [InlineData("ns::Shape::area(double)", 10)]
    [InlineData("ns::Shape::grow", 10)] // a method by its demangled name
    [InlineData("ns::twice", 30)] // every instantiation of a function template
    [InlineData("ns::twice<int>", 20)]
    [InlineData("ns::Box<long>::get", 10)] // a method of a class template
    [InlineData("ns::Box::get", 10)] // ... without its template arguments
    [InlineData("ns::f", 20)] // overloaded free functions
    [InlineData("ns::f(long, long)", 10)]
    [InlineData("ns::f(long,long)", 10)]
    [InlineData("_ZN2ns5Shape4growEv", 10)] // the raw name still works
    public void A_cxx_spec_by_demangled_name_counts_exactly_the_functions_it_names(string spec, long expected)
    {
        var result = Prochex.Run("run", "--json", "--count", spec, "--", Cxx, "10");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(expected, result.Count(spec));
    }

    /// <summary>
    /// Wildcards match demangled names. Since issue 20 a wildcard SPEC is counted per function: its key in counts is the
    /// function (<c>object`function</c>, demangled), its total is its specs entry's hits.
    /// </summary>
    [Fact]
    public void A_cxx_wildcard_matches_demangled_names_and_counts_per_function()
    {
        var result = Prochex.Run("run", "--json", "--count", "cxx`ns::*::grow", "--", Cxx, "10");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(10, result.Count("cxx`ns::Shape::grow()"));
        Assert.Equal(10, (long)result.Summary["specs"]![0]!["hits"]!);
    }

    [Fact]
    public void Every_output_shows_demangled_names_and_no_demangle_shows_raw_ones()
    {
        var demangled = Prochex.Run("run", "--count", "ns::f", "--count", "ns::twice<int>", "--", Cxx, "2");
        var raw = Prochex.Run("run", "--no-demangle", "--count", "ns::f", "--", Cxx, "2");

        Assert.True(demangled.ExitCode == 0, demangled.ToString());
        Assert.Contains("cxx`ns::f(int), cxx`ns::f(long, long)", demangled.Stdout, StringComparison.Ordinal);
        Assert.Contains("cxx`int ns::twice<int>(int)", demangled.Stdout, StringComparison.Ordinal);
        Assert.Contains(demangled.StderrLines, l => l.Contains("counting ns::f at 2 places: cxx`ns::f(int), cxx`ns::f(long, long)", StringComparison.Ordinal));
        Assert.DoesNotContain("_ZN", demangled.Stdout + demangled.Stderr, StringComparison.Ordinal);

        Assert.True(raw.ExitCode == 0, raw.ToString());
        Assert.Contains("cxx`_ZN2ns1fEi, cxx`_ZN2ns1fEll", raw.Stdout, StringComparison.Ordinal);
        Assert.Equal(4, long.Parse(raw.Stdout.Split('\n').Single(l => l.Contains(" ns::f ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_cxx_spec_stays_pending_through_env_and_counts_in_the_program()
    {
        var result = Prochex.Run("run", "--json", "--count", "ns::Shape::area(double) const", "--", "/usr/bin/env", Cxx, "6");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(6, result.Count("ns::Shape::area(double) const"));
        var planted = Assert.Single(result.JsonLines, e => (string?)e["event"] == "planted");
        Assert.Equal("cxx`ns::Shape::area(double) const", (string?)planted["location"]);
    }

    [Fact]
    public void Inspect_shows_a_pc_in_a_cxx_method_demangled_and_raw_with_no_demangle()
    {
        var victim = Targets.Start("cxx", "spin");
        try
        {
            // A thread running in user space has no PC to show; stopped, it shows where it spins.
            Targets.Signal(victim.Id, 19); // SIGSTOP
            Thread.Sleep(100);
            var pid = victim.Id.ToString(CultureInfo.InvariantCulture);

            var demangled = Prochex.Run("inspect", "--json", pid);
            var raw = Prochex.Run("inspect", "--json", "--no-demangle", pid);

            Assert.True(demangled.ExitCode == 0, demangled.ToString());
            Assert.StartsWith("cxx`ns::Spinner::spin()+0x", (string?)demangled.JsonLines[0]["threads"]![0]!["where"], StringComparison.Ordinal);
            Assert.StartsWith("cxx`_ZN2ns7Spinner4spinEv+0x", (string?)raw.JsonLines[0]["threads"]![0]!["where"], StringComparison.Ordinal);
        }
        finally
        {
            Targets.Kill(victim);
        }
    }
}
