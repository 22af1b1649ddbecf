using ProcHex.Scenarios;

namespace ProcHex.Tests.FreeBSD.Scenarios;

/// <summary>The backend-parameterized scenarios against the FreeBSD adapter (the kernel fake off FreeBSD).</summary>
[Trait("Backend", "FreeBSD")]
public sealed class FreeBsdScenarios() : ScenarioSuite(new FreeBsdScenarioBackend());
