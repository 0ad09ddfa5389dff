#!/usr/bin/env bash
# Writer benchmarks, each against plain write() of the same bytes to the same folder, alternated:
#   file:    NexusImageFile, 1 MiB JUNGFRAU module images from one managed buffer (needs ~IMAGES MiB free)
#   service: the StdH5Writer service driven by StoreStream messages, 2 MiB 2-module JUNGFRAU images
#            from a shared-memory ImageBuffer, plus a bitshuffle-LZ4 run (needs ~2 × SERVICE_IMAGES MiB free)
# Usage: benchmarks/Writer/run.sh [DIR] [file|service|all]   (default /tmp, all)
# Environment: REPEAT=5; file: IMAGES=4000, FLUSH_EVERY=200; service: SERVICE_IMAGES=2000, SLOTS=256, PIXELS=dark, PRIMER=1
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp}
what=${2:-all}
dotnet build benchmarks/Writer -c Release --nologo -v q >/dev/null
bench=benchmarks/Writer/bin/Release/net10.0/StdDaq.Benchmarks.Writer.dll
if [ "$what" = file ] || [ "$what" = all ]; then
  dotnet "$bench" --mode file --dir "$dir" --images "${IMAGES:-4000}" --repeat "${REPEAT:-5}" --flush-every "${FLUSH_EVERY:-200}"
fi
if [ "$what" = service ] || [ "$what" = all ]; then
  dotnet "$bench" --mode service --dir "$dir" --images "${SERVICE_IMAGES:-2000}" --repeat "${REPEAT:-5}" \
    --slots "${SLOTS:-256}" --pixels "${PIXELS:-dark}" --primer "${PRIMER:-1}"
fi
