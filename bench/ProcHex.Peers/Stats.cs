using System.Globalization;

namespace ProcHex.Peers;

/// <summary>Median and spread of a handful of runs.</summary>
internal readonly record struct Spread(double Median, double Min, double Max, int Runs)
{
    public static Spread? Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        var mid = sorted.Length / 2;
        var median = sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return new Spread(median, sorted[0], sorted[^1], sorted.Length);
    }

    public string Format(string unit = "") => Runs == 1
        ? Number(Median) + unit
        : $"{Number(Median)}{unit} ({Number(Min)}–{Number(Max)})";

    public static string Number(double value) => value switch
    {
        >= 100 => value.ToString("N0", CultureInfo.InvariantCulture),
        >= 10 => value.ToString("0.0", CultureInfo.InvariantCulture),
        _ => value.ToString("0.00", CultureInfo.InvariantCulture),
    };
}
