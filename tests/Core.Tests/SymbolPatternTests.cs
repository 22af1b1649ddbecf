using ProcHex.Breakpoints;
using ProcHex.Ports;

namespace ProcHex.Core.Tests;

/// <summary>SPEC symbols against raw and demangled names (README, "C++ names").</summary>
public sealed class SymbolPatternTests
{
    /// <summary>What c++filt (full) and c++filt -p (name) print for the names these tests use.</summary>
    private sealed class FakeDemangler : ISymbolDemangler
    {
        private static readonly Dictionary<string, DemangledName> Table = new(StringComparer.Ordinal)
        {
            ["_ZN2ns1fEi"] = new("ns::f(int)", "ns::f"),
            ["_ZN2ns1fEii"] = new("ns::f(int, int)", "ns::f"),
            ["_ZN2ns1fEd"] = new("ns::f(double)", "ns::f"),
            ["_ZNK2ns6Widget4pokeEi"] = new("ns::Widget::poke(int) const", "ns::Widget::poke"),
            ["_ZN2ns6Widget4pokeEv"] = new("ns::Widget::poke()", "ns::Widget::poke"),
            ["_ZN2ns6Circle4drawEv"] = new("ns::Circle::draw()", "ns::Circle::draw"),
            ["_ZN2ns5twiceIiEET_S1_"] = new("int ns::twice<int>(int)", "ns::twice<int>"),
            ["_ZN2ns5twiceIlEET_S1_"] = new("long ns::twice<long>(long)", "ns::twice<long>"),
            ["_ZN2ns3BoxIiE3getEv"] = new("ns::Box<int>::get()", "ns::Box<int>::get"),
            ["_ZN2ns1gESt6vectorIS0_IiSaIiEESaIS2_EE"] = new(
                "ns::g(std::vector<std::vector<int, std::allocator<int> >, std::allocator<std::vector<int, std::allocator<int> > > >)",
                "ns::g"),
            ["_ZN2nsltERKNS_1AES2_"] = new("ns::operator<(ns::A const&, ns::A const&)", "ns::operator<"),
            ["_ZN2ns1fEi.cold"] = new("ns::f(int) [clone .cold]", "ns::f [clone .cold]"),
            ["_ZN2ns1fEi.isra.0"] = new("ns::f(int) [clone .isra.0]", "ns::f [clone .isra.0]"),
            ["_ZN2ns1fEi.constprop.0"] = new("ns::f(int) [clone .constprop.0]", "ns::f [clone .constprop.0]"),
            ["_ZN2ns1fEi.part.0"] = new("ns::f(int) [clone .part.0]", "ns::f [clone .part.0]"),
        };

        public IReadOnlyList<DemangledName?> Demangle(IReadOnlyList<string> names) =>
            names.Select(n => Table.TryGetValue(n, out var d) ? d : null).ToArray();
    }

    private static readonly FakeDemangler Demangler = new();

    /// <summary>Matches as the caller does: only names worth demangling are demangled.</summary>
    private static bool Matches(string pattern, string raw)
    {
        var demangled = SymbolPattern.IsDemanglable(raw) ? Demangler.Demangle([raw])[0] : null;
        return new SymbolPattern(pattern).Matches(raw, demangled);
    }

    [Theory]
    [InlineData("malloc")]
    [InlineData("_ZN2ns1fEi")]
    [InlineData("__libc_start_main")]
    public void A_name_without_cxx_syntax_or_wildcards_is_plain(string symbol)
    {
        var pattern = new SymbolPattern(symbol);

        Assert.True(pattern.IsPlain);
        Assert.False(pattern.IsWildcard);
        Assert.Equal(symbol, pattern.Text);
    }

    [Theory]
    [InlineData("ns::f")]
    [InlineData("ns::f(int)")]
    [InlineData("ns::twice<int>")]
    [InlineData("ns::Widget::~Widget")]
    [InlineData("ns::f(int, int)")]
    [InlineData("operator[]")]
    [InlineData("ns::h(int&)")]
    public void A_name_with_cxx_syntax_is_not_plain(string symbol)
    {
        var pattern = new SymbolPattern(symbol);

        Assert.False(pattern.IsPlain);
        Assert.False(pattern.IsWildcard);
    }

    [Theory]
    [InlineData("mall*")]
    [InlineData("mallo?")]
    [InlineData("ns::*::draw")]
    public void A_name_with_star_or_question_mark_is_a_wildcard_and_not_plain(string symbol)
    {
        var pattern = new SymbolPattern(symbol);

        Assert.True(pattern.IsWildcard);
        Assert.False(pattern.IsPlain);
    }

    [Theory]
    [InlineData("_ZN2ns1fEi", true)]
    [InlineData("_ZNK2ns6Widget4pokeEi", true)]
    [InlineData("malloc", false)]
    [InlineData("_ZN2ns1fEi.cold", false)]
    [InlineData("_ZN2ns1fEi.isra.0", false)]
    [InlineData("_ZN2ns1fEi.constprop.0", false)]
    [InlineData("_ZN2ns1fEi.part.0", false)]
    public void Only_mangled_names_that_are_not_compiler_clones_are_worth_demangling(string raw, bool expected) =>
        Assert.Equal(expected, SymbolPattern.IsDemanglable(raw));

    [Fact]
    public void A_plain_name_matches_only_the_same_raw_name()
    {
        Assert.True(Matches("malloc", "malloc"));
        Assert.False(Matches("malloc", "free"));
        Assert.False(Matches("malloc", "malloc_usable_size"));
    }

    [Fact]
    public void A_raw_mangled_name_matches_itself_and_no_other_overload()
    {
        Assert.True(Matches("_ZN2ns1fEi", "_ZN2ns1fEi"));
        Assert.False(Matches("_ZN2ns1fEi", "_ZN2ns1fEii"));
    }

    [Fact]
    public void A_demangled_name_never_matches_a_raw_name_that_has_no_demangling()
    {
        Assert.False(new SymbolPattern("ns::f").Matches("f", null));
        Assert.False(new SymbolPattern("ns::f(int)").Matches("_ZN2ns1fEi", null));
    }

    [Theory]
    [InlineData("_ZN2ns1fEi")]
    [InlineData("_ZN2ns1fEii")]
    [InlineData("_ZN2ns1fEd")]
    public void A_demangled_name_without_parameters_matches_every_overload(string raw) =>
        Assert.True(Matches("ns::f", raw));

    [Fact]
    public void A_demangled_name_does_not_match_other_functions()
    {
        Assert.False(Matches("ns::f", "_ZN2ns6Circle4drawEv"));
        Assert.False(Matches("ns::g", "_ZN2ns1fEi"));
        Assert.False(Matches("f", "_ZN2ns1fEi"));
    }

    [Fact]
    public void A_demangled_name_with_parameters_selects_one_overload()
    {
        Assert.True(Matches("ns::f(int)", "_ZN2ns1fEi"));
        Assert.False(Matches("ns::f(int)", "_ZN2ns1fEii"));
        Assert.False(Matches("ns::f(int)", "_ZN2ns1fEd"));
        Assert.True(Matches("ns::f(double)", "_ZN2ns1fEd"));
    }

    [Fact]
    public void Const_may_be_given_or_left_out()
    {
        Assert.True(Matches("ns::Widget::poke(int) const", "_ZNK2ns6Widget4pokeEi"));
        Assert.True(Matches("ns::Widget::poke(int)", "_ZNK2ns6Widget4pokeEi"));
        Assert.True(Matches("ns::Widget::poke", "_ZNK2ns6Widget4pokeEi"));
        Assert.False(Matches("ns::Widget::poke(int) const", "_ZN2ns6Widget4pokeEv"));
        Assert.True(Matches("ns::Widget::poke()", "_ZN2ns6Widget4pokeEv"));
    }

    [Fact]
    public void White_space_inside_brackets_does_not_matter()
    {
        Assert.True(Matches("ns::f(int,int)", "_ZN2ns1fEii"));
        Assert.True(Matches("ns::f( int , int )", "_ZN2ns1fEii"));
        Assert.True(Matches("ns::Widget::poke(int)const", "_ZNK2ns6Widget4pokeEi"));
        Assert.True(Matches(
            "ns::g(std::vector<std::vector<int,std::allocator<int>>,std::allocator<std::vector<int,std::allocator<int>>>>)",
            "_ZN2ns1gESt6vectorIS0_IiSaIiEESaIS2_EE"));
    }

    [Fact]
    public void Template_arguments_given_select_one_instantiation()
    {
        Assert.True(Matches("ns::twice<int>", "_ZN2ns5twiceIiEET_S1_"));
        Assert.False(Matches("ns::twice<int>", "_ZN2ns5twiceIlEET_S1_"));
        Assert.True(Matches("ns::twice<long>(long)", "_ZN2ns5twiceIlEET_S1_"));
        Assert.False(Matches("ns::twice<long>(long)", "_ZN2ns5twiceIiEET_S1_"));
        Assert.True(Matches("ns::Box<int>::get", "_ZN2ns3BoxIiE3getEv"));
        Assert.False(Matches("ns::Box<long>::get", "_ZN2ns3BoxIiE3getEv"));
    }

    [Fact]
    public void Template_arguments_left_out_match_every_instantiation()
    {
        Assert.True(Matches("ns::twice", "_ZN2ns5twiceIiEET_S1_"));
        Assert.True(Matches("ns::twice", "_ZN2ns5twiceIlEET_S1_"));
        Assert.True(Matches("ns::Box::get", "_ZN2ns3BoxIiE3getEv"));
        Assert.True(Matches("ns::Box::get()", "_ZN2ns3BoxIiE3getEv"));
        Assert.True(Matches("ns::twice(int)", "_ZN2ns5twiceIiEET_S1_"));
        Assert.False(Matches("ns::twice(int)", "_ZN2ns5twiceIlEET_S1_"));
    }

    [Fact]
    public void The_return_type_of_a_template_function_is_not_part_of_its_signature()
    {
        Assert.False(Matches("int ns::twice<int>(int)", "_ZN2ns5twiceIiEET_S1_"));
        Assert.True(Matches("ns::twice<int>(int)", "_ZN2ns5twiceIiEET_S1_"));
    }

    [Fact]
    public void An_operator_name_matches_only_as_written_since_its_angle_brackets_are_not_template_arguments()
    {
        Assert.True(Matches("ns::operator<", "_ZN2nsltERKNS_1AES2_"));
        Assert.True(Matches("ns::operator<(ns::A const&, ns::A const&)", "_ZN2nsltERKNS_1AES2_"));
        Assert.False(Matches("ns::operator", "_ZN2nsltERKNS_1AES2_"));
    }

    [Theory]
    [InlineData("_ZN2ns1fEi.cold")]
    [InlineData("_ZN2ns1fEi.isra.0")]
    [InlineData("_ZN2ns1fEi.constprop.0")]
    [InlineData("_ZN2ns1fEi.part.0")]
    public void Compiler_clones_are_not_matched_by_demangled_names(string raw)
    {
        Assert.False(Matches("ns::f", raw));
        Assert.False(Matches("ns::f(int)", raw));
        Assert.True(Matches(raw, raw));
    }

    [Theory]
    [InlineData("_ZN2ns1fEi.cold")]
    [InlineData("_ZN2ns1fEi.isra.0")]
    [InlineData("_ZN2ns1fEi.constprop.0")]
    [InlineData("_ZN2ns1fEi.part.0")]
    public void A_clone_demangled_anyway_is_not_matched_by_the_functions_name_or_call(string raw)
    {
        var demangled = Demangler.Demangle([raw])[0];

        Assert.NotNull(demangled);
        Assert.False(new SymbolPattern("ns::f").Matches(raw, demangled));
        Assert.False(new SymbolPattern("ns::f(int)").Matches(raw, demangled));
    }

    [Fact]
    public void A_star_matches_any_run_of_characters_in_raw_names()
    {
        Assert.True(Matches("mall*", "malloc"));
        Assert.True(Matches("*alloc", "malloc"));
        Assert.True(Matches("*", "anything"));
        Assert.True(Matches("m*l*c", "malloc"));
        Assert.True(Matches("malloc*", "malloc"));
        Assert.True(Matches("malloc**", "malloc"));
        Assert.False(Matches("mall*x", "malloc"));
        Assert.False(Matches("*free", "malloc"));
    }

    [Fact]
    public void A_star_backtracks_over_repeated_characters()
    {
        Assert.True(Matches("*ab", "aaab"));
        Assert.True(Matches("a*b*c", "aXbYbZc"));
        Assert.False(Matches("a*b*c", "aXbYbZ"));
    }

    [Fact]
    public void A_question_mark_matches_exactly_one_character()
    {
        Assert.True(Matches("mallo?", "malloc"));
        Assert.True(Matches("?alloc", "malloc"));
        Assert.False(Matches("malloc?", "malloc"));
        Assert.False(Matches("mall?", "malloc"));
    }

    [Fact]
    public void A_wildcard_matches_mangled_names_too()
    {
        Assert.True(Matches("_ZN2ns1f*", "_ZN2ns1fEi"));
        Assert.True(Matches("_ZN2ns1fE?", "_ZN2ns1fEd"));
        Assert.True(new SymbolPattern("_ZN2ns*").Matches("_ZN2ns1fEi", null));
        Assert.False(new SymbolPattern("ns::*").Matches("_ZN2ns1fEi", null));
    }

    [Fact]
    public void A_wildcard_matches_demangled_names()
    {
        Assert.True(Matches("ns::*::draw", "_ZN2ns6Circle4drawEv"));
        Assert.True(Matches("ns::*::poke", "_ZNK2ns6Widget4pokeEi"));
        Assert.False(Matches("ns::*::draw", "_ZNK2ns6Widget4pokeEi"));
        Assert.True(Matches("ns::twice<*>", "_ZN2ns5twiceIlEET_S1_"));
    }

    [Fact]
    public void A_wildcard_matches_demangled_calls_with_white_space_ignored()
    {
        Assert.True(Matches("ns::f(int, *)", "_ZN2ns1fEii"));
        Assert.True(Matches("ns::f(?nt)", "_ZN2ns1fEi"));
        Assert.False(Matches("ns::f(int, *)", "_ZN2ns1fEi"));
        Assert.True(Matches("ns::Widget::poke(*)", "_ZNK2ns6Widget4pokeEi"));
    }

    [Fact]
    public void A_fake_demangler_answers_in_order_with_null_for_names_that_are_not_mangled()
    {
        var answers = Demangler.Demangle(["_ZN2ns1fEi", "malloc", "_ZN2ns1fEd"]);

        Assert.Equal(3, answers.Count);
        Assert.Equal("ns::f(int)", answers[0]!.Full);
        Assert.Null(answers[1]);
        Assert.Equal("ns::f", answers[2]!.Name);
    }

    [Fact]
    public void Signature_drops_the_return_type_of_a_template_function()
    {
        var name = new DemangledName("int ns::twice<int>(int)", "ns::twice<int>");

        Assert.Equal("ns::twice<int>(int)", name.Signature);
        Assert.Equal("ns::twice<int>(int)", name.Call);
    }

    [Fact]
    public void Signature_is_the_full_name_when_the_name_is_not_followed_by_parameters_in_it()
    {
        var name = new DemangledName("ns::f(int) [clone .cold]", "ns::f [clone .cold]");

        Assert.Equal("ns::f(int) [clone .cold]", name.Signature);
        Assert.Equal("ns::f(int) [clone .cold]", name.Call);
    }

    [Fact]
    public void Call_drops_qualifiers_and_clone_suffixes_after_the_parameter_list()
    {
        Assert.Equal("ns::Widget::poke(int)", new DemangledName("ns::Widget::poke(int) const", "ns::Widget::poke").Call);
        Assert.Equal("ns::Widget::poke(int) const", new DemangledName("ns::Widget::poke(int) const", "ns::Widget::poke").Signature);
        Assert.Equal("ns::f(int)", new DemangledName("ns::f(int) &&", "ns::f").Call);
        Assert.Equal("ns::f(int)", new DemangledName("ns::f(int) [clone .cold]", "ns::f").Call);
    }

    [Fact]
    public void Call_keeps_nested_parentheses_such_as_function_pointer_parameters()
    {
        var name = new DemangledName("ns::f(void (*)(int), int) const", "ns::f");

        Assert.Equal("ns::f(void (*)(int), int)", name.Call);
    }

    [Fact]
    public void Call_is_the_signature_when_its_parameter_list_is_not_closed()
    {
        var name = new DemangledName("ns::f(int", "ns::f");

        Assert.Equal("ns::f(int", name.Call);
    }
    [Theory]
    [InlineData("mem[cs]et")]
    [InlineData("str[a-z]*")]
    [InlineData("[!_]*")]
    [InlineData("ns::Widget::[ps]oke")]
    public void A_name_with_a_character_class_is_a_wildcard(string symbol)
    {
        var pattern = new SymbolPattern(symbol);

        Assert.True(pattern.IsWildcard);
        Assert.False(pattern.IsPlain);
    }

    [Theory]
    [InlineData("mem[cs]et", "memset", true)]
    [InlineData("mem[cs]et", "memcet", true)]
    [InlineData("mem[cs]et", "memmet", false)]
    [InlineData("mem[cs]et", "memset2", false)]
    [InlineData("str[a-c]*", "strcmp", true)]
    [InlineData("str[a-c]*", "strbrk", true)]
    [InlineData("str[a-c]*", "strlen", false)]
    [InlineData("str[a-c]*", "str", false)]
    [InlineData("[!_]*", "malloc", true)]
    [InlineData("[!_]*", "__libc_malloc", false)]
    [InlineData("[^_]*", "__libc_malloc", false)]
    [InlineData("[^_]*", "free", true)]
    [InlineData("w[a-cx]_*", "wx_one", true)]
    [InlineData("w[a-cx]_*", "wd_one", false)]
    [InlineData("[!]x]y", "]y", false)]
    [InlineData("[!]x]y", "zy", true)]
    [InlineData("a[-z]", "a-", true)]
    [InlineData("a[z-]", "a-", true)]
    [InlineData("a[z-]", "ay", false)]
    [InlineData("*[0-9]", "f2", true)]
    [InlineData("*[0-9]", "f2x", false)]
    public void A_character_class_matches_one_character_of_its_set_or_range(string pattern, string raw, bool expected) =>
        Assert.Equal(expected, Matches(pattern, raw));

    [Fact]
    public void A_bracket_that_opens_no_class_is_itself()
    {
        Assert.False(new SymbolPattern("abc[def").IsWildcard);
        Assert.True(Matches("ab*[de", "abx[de"));
        Assert.False(Matches("ab*[de", "abxde"));
        Assert.True(Matches("*operator[]*", "ns::Vec::operator[](int)"));
    }

    [Fact]
    public void A_character_class_matches_demangled_names_too()
    {
        Assert.True(Matches("ns::Widget::[ps]oke", "_ZNK2ns6Widget4pokeEi"));
        Assert.True(Matches("ns::[A-D]ircle::*", "_ZN2ns6Circle4drawEv"));
        Assert.False(Matches("ns::[!C]ircle::*", "_ZN2ns6Circle4drawEv"));
    }
}
