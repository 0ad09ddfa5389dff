#!/usr/bin/env bash
# Runs every test (unit and integration: real loopback UDP, shared memory, libzmq).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test StdDaq.slnx -c Release --nologo 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line in the plain "N passed, N failed" form.
line=$(grep -E '(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+' "$log" | tail -n 1 || true)
if [ -n "$line" ]; then
  failed=$(sed -E 's/.*Failed: +([0-9]+),.*/\1/' <<<"$line")
  passed=$(sed -E 's/.*Passed: +([0-9]+),.*/\1/' <<<"$line")
  skipped=$(sed -E 's/.*Skipped: +([0-9]+),.*/\1/' <<<"$line")
  echo "tests: $passed passed, $failed failed, $skipped skipped"
fi
# Skipped tests (kernels this CPU lacks, e.g. GFNI) are named here, so what was not exercised is
# visible; the reasons are in the log with --logger "console;verbosity=normal".
grep -E '^ +Skipped ' "$log" | sed -E 's/^ +Skipped +/not exercised: /; s/ \[[^]]*\]$//' || true
exit "$rc"
