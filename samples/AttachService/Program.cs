// AttachService --pid PID [--symbol SPEC] [--seconds N]: a long-running service that attaches to a running process,
// counts its calls to one function (malloc unless --symbol names another) and exports ProcHex's metrics, and its
// own count, through OpenTelemetry's console exporter. Ctrl-C (or SIGTERM, or --seconds) releases the process,
// which runs on untouched.
using System.Diagnostics.Metrics;
using AttachService;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using ProcHex;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddProcHex();  // the backend of this OS: Linux ptrace here
builder.Services.AddSingleton(new Meter(CallCounter.MeterName));
builder.Services.AddHostedService<CallCounter>();

// begin-snippet: opentelemetry
builder.Services.AddOpenTelemetry()
    .WithMetrics(metrics => metrics
        .AddMeter("ProcHex", CallCounter.MeterName)
        .AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 5000))
    .WithTracing(tracing => tracing
        .AddSource("ProcHex")
        .AddConsoleExporter());
// end-snippet

await builder.Build().RunAsync();
