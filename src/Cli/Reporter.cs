using System.Text.Json.Serialization;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace ProcHex.Cli;

/// <summary>
/// Hits of one SPEC over the whole run; where it was counted (in the last image that had it); its status: planted
/// (the final image defines it), not found (no image did), not in final image (counted in an earlier image, or
/// its library was unloaded); and the images (executables) it was looked up in.
/// </summary>
internal sealed record SpecCount(string Spec, string? Location, long Hits, string Status, IReadOnlyList<string> Images)
{
    public const string Planted = "planted", NotFound = "not found", NotInFinalImage = "not in final image";

    /// <summary>How its calls were counted where it was counted last: in-victim, trap or mixed; null when never planted.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Mode { get; init; }

    /// <summary>Why a site counted with a trap rather than in the victim (the first such site's reason); null when none did.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Fallback { get; init; }

    /// <summary>A wildcard SPEC's hits per matched function (empty when it matched none); null for any other SPEC.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<FunctionCount>? PerFunction { get; init; }

    /// <summary>In <c>--json</c>'s <c>specs</c>: a wildcard SPEC's functions and their hits; absent for any other SPEC.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, long>? Functions => PerFunction?.ToDictionary(f => f.Key, f => f.Hits, StringComparer.Ordinal);
}

/// <summary>One function a wildcard SPEC matched: <c>object`function</c>, its hits, and how it counted (in-victim, trap, mixed).</summary>
internal sealed record FunctionCount(string Key, long Hits, string Mode);

/// <summary>What <c>--by</c> breaks the hits down by (issue 20 item 3).</summary>
internal enum Breakdown
{
    Spec,
    Pid,
    Object,
    Thread,
}

/// <summary>One row of a <c>--by</c> breakdown: the keys that apply to it (pid and function, or object alone) and the hits.</summary>
internal sealed record BreakdownRow(
    [property: JsonPropertyOrder(0), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Pid,
    [property: JsonPropertyOrder(3)] string Object,
    [property: JsonPropertyOrder(4), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Function,
    [property: JsonPropertyOrder(5)] long Count)
{
    /// <summary>--by thread: the thread's id.</summary>
    [JsonPropertyOrder(1)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Tid { get; init; }

    /// <summary>--by thread: the thread's name (<c>comm</c>), when known.</summary>
    [JsonPropertyOrder(2)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Comm { get; init; }
}

/// <summary>What a command learned about a process for <c>inspect</c>.</summary>
internal sealed record InspectReport(int Pid, string State, IReadOnlyList<LoadedObject> Objects, IReadOnlyList<InspectedThread> Threads, string? ThreadsUnavailable);

/// <summary>A thread as inspect shows it: its PC and where that is (<c>object`symbol+0xoff</c>), when known.</summary>
internal sealed record InspectedThread(int Id, ulong? ProgramCounter, string? Where);

/// <summary>
/// Where a command's output goes. Text: lifecycle events as one line each on stderr, the table on stdout, a live
/// line on stderr when it is a terminal. JSON: one object per line on stdout and nothing else there.
/// </summary>
#pragma warning disable CA1063 // Nothing unmanaged: Dispose only ends the output.
internal abstract class Reporter : IDisposable
#pragma warning restore CA1063
{
    /// <summary>A lifecycle event: <paramref name="name"/> and its fields for JSON, <paramref name="text"/> for people.</summary>
    public abstract void Event(string name, JsonObject fields, string text);

    /// <summary>The final table (text) or summary object (JSON), with the <c>--by</c> breakdown when there is one.</summary>
    public abstract void Summary(IReadOnlyList<SpecCount> counts, ExitStatus? exit, TimeSpan elapsed, IReadOnlyList<BreakdownRow>? rows = null);

    public abstract void Inspect(InspectReport report);

    /// <summary>
    /// <c>--interval</c>: the hits since the last interval, <paramref name="t"/> seconds after the start, keyed as the
    /// summary's counts (only keys with hits).
    /// </summary>
    public abstract void Interval(double t, IReadOnlyDictionary<string, long> counts);

    /// <summary>The instruments' final values (--metrics): a table (text) or one <c>metrics</c> object (JSON).</summary>
    public abstract void Metrics(IReadOnlyList<MetricValue> values);

    /// <summary>True when a live line is shown while counting.</summary>
    public virtual bool WantsLiveLine => false;

    /// <summary>Redraws the live line.</summary>
    public virtual void Live(string line)
    {
    }

    public abstract void Dispose();

    public static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>How a process ended as the fields of an event (empty when unknown).</summary>
    public static JsonObject ExitFields(ExitStatus? exit) =>
        ExitLine.Of(exit) is { } line ? JsonSerializer.SerializeToNode(line, CliJson.Default.ExitLine)!.AsObject() : [];
}

/// <summary>JSON lines on a private copy of stdout.</summary>
internal sealed class JsonReporter(TextWriter output) : Reporter
{
    private readonly Lock _gate = new();

    public override void Event(string name, JsonObject fields, string text)
    {
        var line = new JsonObject { ["event"] = name };
        foreach (var (key, value) in fields.ToList())
        {
            fields.Remove(key);
            line[key] = value;
        }

        Write(CliJson.Line(line, CliJson.Default.JsonObject));
    }

    public override void Summary(IReadOnlyList<SpecCount> counts, ExitStatus? exit, TimeSpan elapsed, IReadOnlyList<BreakdownRow>? rows = null)
    {
        var countsBySpec = SpecCounter.Flat(counts);
        var modesBySpec = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in counts)
        {
            if (c.Mode is { } mode)
            {
                modesBySpec[c.Spec] = mode;
            }
        }

        var line = new SummaryLine("summary", countsBySpec, modesBySpec, counts, ExitLine.Of(exit), Math.Round(elapsed.TotalSeconds, 3)) { Rows = rows };
        Write(CliJson.Line(line, CliJson.Default.SummaryLine));
    }

    public override void Interval(double t, IReadOnlyDictionary<string, long> counts)
    {
        var fields = new JsonObject { ["t"] = t, ["counts"] = new JsonObject([.. counts.Select(c => KeyValuePair.Create(c.Key, (JsonNode?)c.Value))]) };
        Event("interval", fields, "");
    }

    public override void Inspect(InspectReport report)
    {
        var line = new InspectLine(
            "inspect",
            report.Pid,
            report.State,
            [.. report.Objects.Select(o => new InspectedObjectLine(o.Path, Hex(o.BaseAddress)))],
            [.. report.Threads.Select(t => new InspectedThreadLine(t.Id, t.ProgramCounter is { } pc ? Hex(pc) : null, t.Where))],
            report.ThreadsUnavailable);
        Write(CliJson.Line(line, CliJson.Default.InspectLine));
    }

    public override void Metrics(IReadOnlyList<MetricValue> values)
    {
        var line = new MetricsLine(
            "metrics",
            [.. values.Select(v => new MetricLine(v.Name, v.Unit, v.Tags, v.Value, v.Count, v.Sum, v.Max))]);
        Write(CliJson.Line(line, CliJson.Default.MetricsLine));
    }

    public override void Dispose() => output.Flush();

    private void Write(string line)
    {
        lock (_gate)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }
}

/// <summary>Lines for people: events on stderr, tables on stdout through Spectre.Console.</summary>
internal sealed class TextReporter : Reporter
{
    private readonly Lock _gate = new();
    private readonly TextWriter _error;
    private readonly IAnsiConsole _out;
    private readonly bool _live;
    private bool _liveShown;

    /// <summary>Tables on <paramref name="output"/>, events on <paramref name="error"/>; <paramref name="file"/>: both are a file (-o), no colours.</summary>
    public TextReporter(TextWriter output, TextWriter error, bool liveLine, bool file = false)
    {
        _error = error;
        _live = liveLine;
        var plain = file || Console.IsOutputRedirected;
        _out = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = plain ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = plain ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = InteractionSupport.No,
        });
        if (plain)
        {
            _out.Profile.Width = 120;
        }
    }

    public override bool WantsLiveLine => _live;

    public override void Event(string name, JsonObject fields, string text)
    {
        lock (_gate)
        {
            ClearLive();
            _error.WriteLine("prochex: " + text);
            _error.Flush();
        }
    }

    public override void Live(string line)
    {
        lock (_gate)
        {
            _error.Write("\r\u001b[2K" + line);
            _error.Flush();
            _liveShown = true;
        }
    }

    public override void Summary(IReadOnlyList<SpecCount> counts, ExitStatus? exit, TimeSpan elapsed, IReadOnlyList<BreakdownRow>? rows = null)
    {
        lock (_gate)
        {
            ClearLive();
        }

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn(new TableColumn("HITS").RightAligned());
        table.AddColumn("SPEC");
        table.AddColumn("WHERE");
        table.AddColumn("MODE");
        foreach (var c in counts)
        {
            var where = c.Status switch
            {
                SpecCount.Planted => c.Location ?? "",
                SpecCount.NotFound => $"(not found in {(c.Images.Count == 0 ? "any image" : string.Join(", ", c.Images))})",
                _ => $"{c.Location} ({c.Status})".TrimStart(),
            };
            if (c.PerFunction is { Count: > 0 } functions)
            {
                AddFunctionRows(table, c, functions);
                continue;
            }

            table.AddRow(
                c.Hits.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(c.Spec),
                Markup.Escape(where),
                Markup.Escape(c.Mode ?? ""));
        }

        var total = counts.Sum(c => c.Hits);
        _out.Write(table);
        if (rows is not null)
        {
            _out.Write(BreakdownTable(rows));
            if (ThreadChart(rows) is { } chart)
            {
                _out.Write(chart);
                _out.WriteLine();
            }
        }

        _out.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{total} hits in {elapsed.TotalSeconds:0.000} s{(exit is { } e ? $"; the process {e}".Replace("process killed", "process was killed", StringComparison.Ordinal) : "")}"));
    }

    /// <summary>
    /// A wildcard SPEC: one row per matched function, the most hit first. Past <see cref="AllRowsUpTo"/> functions,
    /// those without hits share one row (the JSON summary still lists each).
    /// </summary>
    private static void AddFunctionRows(Table table, SpecCount c, IReadOnlyList<FunctionCount> functions)
    {
        var suffix = c.Status == SpecCount.Planted ? "" : $" ({c.Status})";
        var shown = functions.Count <= AllRowsUpTo ? functions : [.. functions.Where(f => f.Hits > 0)];
        foreach (var f in shown.OrderByDescending(f => f.Hits).ThenBy(f => f.Key, StringComparer.Ordinal))
        {
            table.AddRow(
                f.Hits.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(c.Spec),
                Markup.Escape(f.Key + suffix),
                Markup.Escape(f.Mode));
        }

        if (shown.Count < functions.Count)
        {
            table.AddRow(
                "0",
                Markup.Escape(c.Spec),
                Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"({functions.Count - shown.Count} more functions matched, not called)")),
                "");
        }
    }

    private const int AllRowsUpTo = 20;

    /// <summary>
    /// --by thread, drawn (issue 20 item 8): a bar per thread, its hits over every function, the busiest
    /// <see cref="ChartedThreads"/> threads; null for other breakdowns or when nothing was hit.
    /// </summary>
    private static BarChart? ThreadChart(IReadOnlyList<BreakdownRow> rows)
    {
        var threads = rows.Where(r => r.Tid is not null)
            .GroupBy(r => (r.Pid, r.Tid, r.Comm))
            .Select(g => (g.Key, Hits: g.Sum(r => r.Count)))
            .Where(t => t.Hits > 0)
            .OrderByDescending(t => t.Hits).ThenBy(t => t.Key.Pid).ThenBy(t => t.Key.Tid)
            .ToList();
        if (threads.Count == 0)
        {
            return null;
        }

        var chart = new BarChart().Width(72).Label("hits per thread").LeftAlignLabel();
        foreach (var ((pid, tid, comm), hits) in threads.Take(ChartedThreads))
        {
            _ = chart.AddItem(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{pid}/{tid} {comm ?? "?"}")), hits, Color.Green);
        }

        return chart;
    }

    private const int ChartedThreads = 20;

    /// <summary>
    /// --by pid: HITS, PID, FUNCTION (<c>object`function</c>); --by thread: HITS, PID, TID, COMM, FUNCTION; --by object:
    /// HITS, OBJECT. Rows without hits share one row (JSON lists each).
    /// </summary>
    private static Table BreakdownTable(IReadOnlyList<BreakdownRow> rows)
    {
        var byPid = rows.Any(r => r.Pid is not null);
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn(new TableColumn("HITS").RightAligned());
        if (rows.Any(r => r.Tid is not null))
        {
            table.AddColumn(new TableColumn("PID").RightAligned());
            table.AddColumn(new TableColumn("TID").RightAligned());
            table.AddColumn("COMM");
            table.AddColumn("FUNCTION");
            foreach (var row in rows)
            {
                table.AddRow(
                    row.Count.ToString(CultureInfo.InvariantCulture),
                    row.Pid?.ToString(CultureInfo.InvariantCulture) ?? "",
                    row.Tid?.ToString(CultureInfo.InvariantCulture) ?? "",
                    Markup.Escape(row.Comm ?? "?"),
                    Markup.Escape($"{row.Object}`{row.Function}"));
            }

            return table;
        }

        if (byPid)
        {
            table.AddColumn(new TableColumn("PID").RightAligned());
            table.AddColumn("FUNCTION");
        }
        else
        {
            table.AddColumn("OBJECT");
        }

        foreach (var row in rows.Where(r => r.Count > 0))
        {
            var hits = row.Count.ToString(CultureInfo.InvariantCulture);
            if (byPid)
            {
                table.AddRow(hits, row.Pid?.ToString(CultureInfo.InvariantCulture) ?? "", Markup.Escape($"{row.Object}`{row.Function}"));
            }
            else
            {
                table.AddRow(hits, Markup.Escape(row.Object));
            }
        }

        if (rows.Count(r => r.Count == 0) is var uncalled and > 0)
        {
            var what = string.Create(CultureInfo.InvariantCulture, $"({uncalled} more {(byPid ? "functions" : "objects")} counted, not called)");
            _ = byPid ? table.AddRow("0", "", Markup.Escape(what)) : table.AddRow("0", Markup.Escape(what));
        }

        return table;
    }

    public override void Interval(double t, IReadOnlyDictionary<string, long> counts)
    {
        lock (_gate)
        {
            ClearLive();
        }

        _out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{t:0.000} s] {counts.Values.Sum()} hits{(counts.Count == 0 ? "" : ":")}"));
        if (counts.Count == 0)
        {
            return;
        }

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn(new TableColumn("HITS").RightAligned());
        table.AddColumn("SPEC OR FUNCTION");
        foreach (var (key, hits) in counts.OrderByDescending(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal))
        {
            table.AddRow(hits.ToString(CultureInfo.InvariantCulture), Markup.Escape(key));
        }

        _out.Write(table);
    }

    public override void Inspect(InspectReport report)
    {
        _out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pid {report.Pid}  state {report.State}"));
        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("BASE");
        table.AddColumn("OBJECT");
        foreach (var o in report.Objects)
        {
            table.AddRow(Hex(o.BaseAddress), Markup.Escape(o.Path));
        }

        _out.Write(table);
        if (report.ThreadsUnavailable is { } why)
        {
            _out.WriteLine("threads: " + why);
            return;
        }

        var threads = new Table().Border(TableBorder.Simple);
        threads.AddColumn("TID");
        threads.AddColumn("PC");
        threads.AddColumn("WHERE");
        foreach (var t in report.Threads)
        {
            threads.AddRow(
                t.Id.ToString(CultureInfo.InvariantCulture),
                t.ProgramCounter is { } pc ? Hex(pc) : "running",
                Markup.Escape(t.Where ?? "-"));
        }

        _out.Write(threads);
    }

    public override void Metrics(IReadOnlyList<MetricValue> values)
    {
        lock (_gate)
        {
            ClearLive();
        }

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumn("METRIC");
        table.AddColumn("TAGS");
        table.AddColumn("VALUE");
        foreach (var v in values)
        {
            var value = v.Value is { } total
                ? string.Create(CultureInfo.InvariantCulture, $"{total} {v.Unit}")
                : string.Create(CultureInfo.InvariantCulture, $"{v.Count} measured, mean {(v.Count > 0 ? v.Sum / v.Count : 0):0.######} {v.Unit}, max {v.Max ?? 0:0.######} {v.Unit}");
            table.AddRow(Markup.Escape(v.Name), Markup.Escape(v.TagText), Markup.Escape(value));
        }

        _out.Write(table);
    }

    public override void Dispose()
    {
        lock (_gate)
        {
            ClearLive();
        }
    }

    private void ClearLive()
    {
        if (_liveShown)
        {
            _error.Write("\r\u001b[2K");
            _error.Flush();
            _liveShown = false;
        }
    }
}
