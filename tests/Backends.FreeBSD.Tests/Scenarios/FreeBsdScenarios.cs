using ProcHex.Scenarios;
using ProcHex.Backends.FreeBSD.Tests.FakeKernel;

namespace ProcHex.Backends.FreeBSD.Tests.Scenarios;

/// <summary>
/// The backend-parameterized scenarios against the FreeBSD adapter (the kernel fake off FreeBSD), with FreeBSD 14's
/// classic PT_ATTACH.
/// </summary>
[Trait("Backend", "FreeBSD")]
public sealed class FreeBsdScenarios() : ScenarioSuite(new FreeBsdScenarioBackend(FakeAttach.Classic));

/// <summary>
/// The same scenarios on a fake with transparent attach (debug.ptrace_attach_transparent). On FreeBSD both classes
/// run against the real kernel, whichever attach it has.
/// </summary>
[Trait("Backend", "FreeBSD")]
public sealed class FreeBsdScenariosTransparentAttach() : ScenarioSuite(new FreeBsdScenarioBackend(FakeAttach.Transparent));

/// <summary>The port contract (what the core relies on from an adapter) on the FreeBSD adapter over the kernel fake.</summary>
[Trait("Backend", "FreeBSD")]
public sealed class FreeBsdPortContract() : ProcHex.PortContract.PortContractSuite(new FreeBsdScenarioBackend(FakeAttach.Classic));

/// <summary>The port contract on a fake with transparent attach.</summary>
[Trait("Backend", "FreeBSD")]
public sealed class FreeBsdPortContractTransparentAttach() : ProcHex.PortContract.PortContractSuite(new FreeBsdScenarioBackend(FakeAttach.Transparent));
