#!/usr/bin/env bash
# Bitshuffle-LZ4 benchmarks on one core: ours (StdDaq.Shared.Compression) against the C library in
# Debian's HDF5 plugin (libh5bshuf.so), on the 20 real EIGER 32-bit frames of ../shared/data.
# Usage: benchmarks/Compression/run.sh [info|frames|blocks|all]   (default all)
#   info:   whether libh5bshuf.so was built with AVX2, compression ratios, cross-decompression check
#   frames: compress / decompress / bitshuffle / bitunshuffle of all 20 frames (BenchmarkDotNet)
#   blocks: one 8 KiB block at a time in cache: transpose kernels (GFNI, AVX2, C), LZ4 (K4os, liblz4)
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
dotnet build benchmarks/Compression -c Release --nologo -v q >/dev/null
dll=bin/Release/net10.0/StdDaq.Benchmarks.Compression.dll
bdn() {
  (cd benchmarks/Compression && dotnet "$dll" --filter "$1" --warmupCount 3 --iterationCount 10 --launchCount 1 \
    | grep -E '^\||^//|Runtime|AMD|Intel')
}
if [ "$what" = info ] || [ "$what" = all ]; then
  (cd benchmarks/Compression && dotnet "$dll" info)
fi
if [ "$what" = frames ] || [ "$what" = all ]; then
  bdn '*CompressionBenchmarks*'
fi
if [ "$what" = blocks ] || [ "$what" = all ]; then
  bdn '*BlockBenchmarks*'
fi
