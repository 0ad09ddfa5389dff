#!/usr/bin/env bash
# NexusImageFile against plain pwrite of the same 1 MiB JUNGFRAU images, alternated, in one folder.
# Usage: benchmarks/Writer/run.sh [DIR]   (default /tmp; needs ~IMAGES MiB free)
# Environment: IMAGES=4000, REPEAT=5, FLUSH_EVERY=200
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp}
dotnet build benchmarks/Writer -c Release --nologo -v q >/dev/null
dotnet benchmarks/Writer/bin/Release/net10.0/StdDaq.Benchmarks.Writer.dll --dir "$dir" \
  --images "${IMAGES:-4000}" --repeat "${REPEAT:-5}" --flush-every "${FLUSH_EVERY:-200}"
