#!/usr/bin/env bash
# Assembler benchmarks: conversion micro-benchmarks (BenchmarkDotNet, one core) and the whole
# assembler for a 4-module JUNGFRAU fed from pre-filled FrameBuffers (no UDP).
# Usage: benchmarks/Assembler/run.sh [micro|pipeline|all]   (default all)
# Environment: IMAGES=20000 (full-speed runs), PACED_IMAGES=5000, RATE=1000 (Hz, raw latency runs),
#   CONVERTED_RATE=500 (Hz, converted latency runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
IMAGES=${IMAGES:-20000}
PACED_IMAGES=${PACED_IMAGES:-5000}
RATE=${RATE:-1000}
CONVERTED_RATE=${CONVERTED_RATE:-500}
dotnet build benchmarks/Assembler -c Release --nologo -v q >/dev/null
bench=benchmarks/Assembler/bin/Release/net10.0/StdDaq.Benchmarks.Assembler.dll
if [ "$what" = micro ] || [ "$what" = all ]; then
  (cd benchmarks/Assembler && dotnet "bin/Release/net10.0/StdDaq.Benchmarks.Assembler.dll" --filter '*' \
    --warmupCount 3 --iterationCount 10 --launchCount 1 | grep -E '^\||^//|Runtime|AMD|Intel')
fi
if [ "$what" = pipeline ] || [ "$what" = all ]; then
  for type in jungfrau-raw jungfrau-converted; do
    rate=$RATE
    [ "$type" = jungfrau-converted ] && rate=$CONVERTED_RATE
    for workers in 1 2; do
      dotnet "$bench" pipeline --type "$type" --modules 4 --images "$IMAGES" --workers "$workers" | head -1
      dotnet "$bench" pipeline --type "$type" --modules 4 --images "$PACED_IMAGES" --rate "$rate" --workers "$workers" | head -1
    done
  done
fi
