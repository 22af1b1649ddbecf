using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ProcHex.Cli;

/// <summary>The <c>summary</c> line of a --json run.</summary>
internal sealed record SummaryLine(
    string Event,
    Dictionary<string, long> Counts,
    Dictionary<string, string> Modes,
    IReadOnlyList<SpecCount> Specs,
    ExitLine? Exit,
    double ElapsedSeconds)
{
    /// <summary>With <c>--by pid</c> or <c>--by object</c>: the breakdown; absent otherwise, so today's line keeps its shape.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<BreakdownRow>? Rows { get; init; }
}

/// <summary>How a process ended: <c>code</c>, or <c>signal</c> and <c>core_dumped</c>.</summary>
internal sealed record ExitLine(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Code,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Signal,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? CoreDumped)
{
    public static ExitLine? Of(ExitStatus? exit) => exit switch
    {
        null => null,
        { Signaled: true } e => new ExitLine(null, e.Signal, e.CoreDumped),
        { } e => new ExitLine(e.Code, null, null),
    };
}

/// <summary>The <c>inspect</c> line.</summary>
internal sealed record InspectLine(
    string Event,
    int Pid,
    string State,
    IReadOnlyList<InspectedObjectLine> Objects,
    IReadOnlyList<InspectedThreadLine> Threads,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThreadsUnavailable);

internal sealed record InspectedObjectLine(string Path, string Base);

/// <summary>The <c>metrics</c> line of --metrics: every ProcHex instrument's final values.</summary>
internal sealed record MetricsLine(string Event, IReadOnlyList<MetricLine> Instruments);

/// <summary>
/// One instrument and tag set: <c>value</c> for a counter, <c>count</c>, <c>sum</c> and <c>max</c> for a histogram.
/// </summary>
internal sealed record MetricLine(
    string Name,
    string? Unit,
    IReadOnlyDictionary<string, string> Tags,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Value,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Count,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Sum,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Max);

internal sealed record InspectedThreadLine(int Tid, string? Pc, string? Where);

/// <summary>
/// Everything --json writes, serialized by source-generated code (no reflection, so the native prochex writes the
/// same lines as the JIT one). Lifecycle events, whose fields vary, stay <see cref="JsonObject"/>s of plain values.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SummaryLine))]
[JsonSerializable(typeof(InspectLine))]
[JsonSerializable(typeof(MetricsLine))]
[JsonSerializable(typeof(ExitLine))]
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class CliJson : JsonSerializerContext
{
    /// <summary>Specs such as <c>libc.so.6`malloc</c> and paths stay readable: only what JSON requires is escaped.</summary>
    private static readonly JsonWriterOptions LineOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One value as one line of JSON text (no newline).</summary>
    public static string Line<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, LineOptions))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
