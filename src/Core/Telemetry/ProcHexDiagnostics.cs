using System.Diagnostics;

namespace ProcHex;

/// <summary>
/// The names under which ProcHex publishes what it does: the <see cref="System.Diagnostics.Metrics.Meter"/> of
/// <see cref="ProcHexMetrics"/> and the <see cref="System.Diagnostics.ActivitySource"/> of its spans. Listen with
/// <c>dotnet-counters monitor --counters ProcHex</c>, or OpenTelemetry's <c>AddMeter("ProcHex")</c> and
/// <c>AddSource("ProcHex")</c>.
/// </summary>
public static class ProcHexDiagnostics
{
    /// <summary>The meter's name: <c>ProcHex</c>.</summary>
    public const string MeterName = "ProcHex";

    /// <summary>The activity source's name: <c>ProcHex</c>.</summary>
    public const string ActivitySourceName = "ProcHex";

    /// <summary>The version the meter and the activity source carry: the ProcHex.Core assembly's.</summary>
    internal static readonly string? Version = typeof(ProcHexDiagnostics).Assembly.GetName().Version?.ToString();

    /// <summary>
    /// The spans: <c>prochex.create</c>, <c>prochex.grab</c>, <c>prochex.release</c> and
    /// <c>prochex.library_list.change</c>. Starting one costs a field read while nobody listens.
    /// </summary>
    internal static readonly ActivitySource Source = new(ActivitySourceName, Version);

    /// <summary>Marks <paramref name="activity"/> failed by <paramref name="exception"/>; false, for use as an exception filter.</summary>
    internal static bool Failed(Activity? activity, Exception exception)
    {
        if (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, exception.Message);
            activity.SetTag("error.type", exception.GetType().FullName);
            if (exception is ProcHexException { Kind: var kind })
            {
                activity.SetTag("prochex.error.kind", Snake(kind.ToString()));
            }

            activity.AddException(exception);
        }

        return false;
    }

    /// <summary>An enum member's name as OpenTelemetry spells attribute values: <c>HeldByOthers</c> is <c>held_by_others</c>.</summary>
    internal static string Snake(string name)
    {
        var builder = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(name[i]));
        }

        return builder.ToString();
    }
}
