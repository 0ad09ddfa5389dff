#!/usr/bin/env bash
# Bitshuffle-LZ4 benchmarks on one core: ours (StdDaq.Shared.Compression) against the C library in
# Debian's HDF5 plugin (libh5bshuf.so), on the 20 real EIGER 32-bit frames of ../shared/data.
# Usage: benchmarks/Compression/run.sh [info|frames|frames-avx2|blocks|interleaved|all]   (default all)
#   info:        whether libh5bshuf.so was built with AVX2, compression ratios, cross-decompression check
#   frames:      compress / decompress / bitshuffle / bitunshuffle of all 20 frames (BenchmarkDotNet);
#                "Ours" is the CPU's best kernel (GFNI where there is GFNI), "OursAvx2" forces AVX2 alone
#   frames-avx2: compress / decompress of the 20 frames with the runtime told the CPU has neither
#                GFNI nor AVX-512 (DOTNET_EnableGFNI=0 DOTNET_EnableAVX512=0): an AVX2-only CPU
#   blocks:      one 8 KiB block at a time in cache: transpose kernels (GFNI, AVX2, C), LZ4 (K4os, liblz4)
#   interleaved: compression by C and by ours with each kernel, and its parts, taken in turn for
#                100 rounds; medians (a quick check that shares the machine's noise fairly)
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
dotnet build benchmarks/Compression -c Release --nologo -v q >/dev/null
dll=bin/Release/net10.0/StdDaq.Benchmarks.Compression.dll
bdn() {
  (cd benchmarks/Compression && dotnet "$dll" --warmupCount 3 --iterationCount 10 --launchCount 1 "$@" \
    | grep -E '^\||^Runtime =|AMD|Intel')
}
if [ "$what" = info ] || [ "$what" = all ]; then
  (cd benchmarks/Compression && dotnet "$dll" info)
fi
if [ "$what" = frames ] || [ "$what" = all ]; then
  bdn --filter '*CompressionBenchmarks*'
fi
if [ "$what" = frames-avx2 ] || [ "$what" = all ]; then
  (cd benchmarks/Compression && DOTNET_EnableGFNI=0 DOTNET_EnableAVX512=0 dotnet "$dll" info | grep '^ours')
  DOTNET_EnableGFNI=0 DOTNET_EnableAVX512=0 bdn --filter '*CompressionBenchmarks*' --anyCategories compress decompress
fi
if [ "$what" = blocks ] || [ "$what" = all ]; then
  bdn --filter '*BlockBenchmarks*'
fi
if [ "$what" = interleaved ] || [ "$what" = all ]; then
  (cd benchmarks/Compression && dotnet "$dll" interleaved 100)
fi
