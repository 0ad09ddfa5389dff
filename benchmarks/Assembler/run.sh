#!/usr/bin/env bash
# Assembler benchmarks: conversion and notice-polling micro-benchmarks (BenchmarkDotNet, one core)
# and the whole assembler fed from pre-filled FrameBuffers (no UDP): a 4-module JUNGFRAU and a
# 72-port EIGER (9M), measured in the same run.
# Usage: benchmarks/Assembler/run.sh [micro|pipeline|eiger|all]   (default all; eiger: only the
#   4-module JUNGFRAU raw and the 72-port EIGER at full speed, REPEAT times, alternating)
# Environment: IMAGES=20000 (full-speed runs), PACED_IMAGES=5000, RATE=1000 (Hz, raw latency runs),
#   CONVERTED_RATE=500 (Hz, converted latency runs), EIGER_IMAGES=1000, EIGER_RATE=50 (Hz), REPEAT=3
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
IMAGES=${IMAGES:-20000}
PACED_IMAGES=${PACED_IMAGES:-5000}
RATE=${RATE:-1000}
CONVERTED_RATE=${CONVERTED_RATE:-500}
EIGER_IMAGES=${EIGER_IMAGES:-1000}
EIGER_RATE=${EIGER_RATE:-50}
REPEAT=${REPEAT:-3}
# 72 EIGER ports of 16-bit frames: 32 frame slots (18 MiB per port) and 16 image slots (20 MiB each).
eiger72=(--type eiger --modules 72 --depth 16 --frame-slots 32 --image-slots 16)
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
  for workers in 1 2; do
    dotnet "$bench" pipeline "${eiger72[@]}" --images "$EIGER_IMAGES" --workers "$workers" | head -1
    dotnet "$bench" pipeline "${eiger72[@]}" --images "$((EIGER_RATE * 10))" --rate "$EIGER_RATE" --workers "$workers" | head -1
  done
fi
if [ "$what" = eiger ]; then
  for i in $(seq "$REPEAT"); do
    for workers in 1 2; do
      dotnet "$bench" pipeline --type jungfrau-raw --modules 4 --images "$IMAGES" --workers "$workers" | head -1
      dotnet "$bench" pipeline "${eiger72[@]}" --images "$EIGER_IMAGES" --workers "$workers" | head -1
    done
  done
fi
