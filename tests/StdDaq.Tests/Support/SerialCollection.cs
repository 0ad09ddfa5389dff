namespace StdDaq.Tests.Support;

/// <summary>
/// Tests that load the machine (loopback UDP at rate, busy cross-process checks) run one at a
/// time, so a kernel drop in a test means a defect, not a neighbour hogging both cores.
/// </summary>
[CollectionDefinition("serial", DisableParallelization = true)]
public sealed class SerialCollection;
