#!/usr/bin/env bash
# The demo: a simulated 2-module JUNGFRAU sends for 5 s to the receivers; live counters, then a
# summary comparing what was sent with what was received (with a few injected faults).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dotnet build -c Release --nologo -v quiet src/StdDaqCli >/dev/null
exec dotnet src/StdDaqCli/bin/Release/net10.0/std-daq.dll up examples/jungfrau-2module.json \
  --simulate --rate 200 --seconds 5 --loss 0.0005 --duplicate 0.0005 --reorder 0.0005 --cleanup "$@"
