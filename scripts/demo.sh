#!/usr/bin/env bash
# The demo: a private RabbitMQ on loopback, the whole pipeline for a simulated 2-module JUNGFRAU
# (receivers, assembler, WriterAgent, StdH5Writer in one process, the simulator at 100 Hz), a write
# request for 1000 images through the broker with a progress bar, then the file read back and
# checked against the simulator's pattern; everything is shut down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet build -c Release --nologo -v quiet src/StdDaqCli >/dev/null
out="${TMPDIR:-/tmp}/std-daq-demo"
mkdir -p "$out"
exec dotnet src/StdDaqCli/bin/Release/net10.0/std-daq.dll up examples/jungfrau-2module.json \
  --private-broker --simulate --rate 100 --write "$out/jungfrau-demo.h5" --images 1000 --overwrite --cleanup "$@"
