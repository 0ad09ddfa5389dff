using System.Runtime.Intrinsics.X86;

namespace StdDaq.Tests.Support;

/// <summary>Instruction sets a test's kernel needs.</summary>
public enum Isa
{
    Avx2,
    Gfni,
}

/// <summary>
/// Why a kernel cannot run here, or null when it can. Tests of a kernel the CPU lacks are
/// reported as skipped with this reason ("not exercised"), never passed and never failed: the
/// suite passes on any x86-64 CPU with AVX2, and its log says what it did not cover.
/// The runtime's switches (DOTNET_EnableGFNI=0, DOTNET_EnableAVX2=0) act as the CPU lacking them.
/// </summary>
public static class Cpu
{
    public static string? Lacks(Isa isa) => isa switch
    {
        Isa.Avx2 when !Avx2.IsSupported => "AVX2 kernel not exercised: this CPU (or DOTNET_EnableAVX2=0) has no AVX2",
        Isa.Gfni when !(Gfni.V256.IsSupported && Avx2.IsSupported) => "GFNI kernel not exercised: this CPU (or DOTNET_EnableGFNI=0) has no GFNI",
        _ => null,
    };
}

/// <summary>A [Fact] that is reported as skipped, with the reason, where the CPU lacks <paramref name="needs"/>.</summary>
public sealed class CpuFactAttribute : FactAttribute
{
    public CpuFactAttribute(Isa needs) => Skip = Cpu.Lacks(needs);
}

/// <summary>A [Theory] that is reported as skipped, with the reason, where the CPU lacks <paramref name="needs"/>.</summary>
public sealed class CpuTheoryAttribute : TheoryAttribute
{
    public CpuTheoryAttribute(Isa needs) => Skip = Cpu.Lacks(needs);
}
