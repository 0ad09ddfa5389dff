#!/usr/bin/env bash
# The StdH5Writer service of this tree next to the one of an earlier revision (default: the last
# before NXmx and SWMR writing) and to plain write() of the same bytes, in one run: rounds
# alternate the two builds (order flipped each round), each a `--mode service --repeat 1` run,
# which times plain write() and its service alternately. Prints each round and the medians:
# service / plain of each build, and this build / the earlier one.
# Usage: benchmarks/Writer/compare.sh [DIR] [BASE_REV]   (default /tmp, fd3cc85^)
# Environment: ROUNDS=5, SERVICE_IMAGES=2000, SLOTS=256, PIXELS=dark; needs 4.3 GB free in DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp}
base_rev=${2:-fd3cc85^}
rounds=${ROUNDS:-5}
base_tree=$(mktemp -d /tmp/stddaq-writer-base.XXXXXX)
log=$(mktemp)
cleanup() {
  git worktree remove --force "$base_tree" >/dev/null 2>&1 || rm -rf "$base_tree"
  rm -f "$log"
}
trap cleanup EXIT
git worktree add --detach "$base_tree" "$base_rev" >/dev/null 2>&1
dotnet build benchmarks/Writer -c Release --nologo -v q >/dev/null
dotnet build "$base_tree/benchmarks/Writer" -c Release --nologo -v q >/dev/null
now=benchmarks/Writer/bin/Release/net10.0/StdDaq.Benchmarks.Writer.dll
base=$base_tree/benchmarks/Writer/bin/Release/net10.0/StdDaq.Benchmarks.Writer.dll
echo "this tree: $(git rev-parse --short HEAD); earlier: $(git rev-parse --short "$base_rev"); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%FT%TZ)"
args=(--mode service --dir "$dir" --images "${SERVICE_IMAGES:-2000}" --repeat 1 --slots "${SLOTS:-256}" --pixels "${PIXELS:-dark}" --primer 1)
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then order=(now base); else order=(base now); fi
  for which in "${order[@]}"; do
    dll=$now
    [ "$which" = base ] && dll=$base
    line=$(dotnet "$dll" "${args[@]}" | grep -m1 '^round 0:')
    echo "round $r $which: ${line#round 0: }"
    echo "$which $line" >>"$log"
  done
done
python3 - "$log" <<'EOF'
import re, statistics, sys
runs = {"now": [], "base": []}
for line in open(sys.argv[1]):
    which = line.split()[0]
    m = re.search(r"plain ([\d.]+) / ([\d.]+) GB/s.*?; service ([\d.]+) / ([\d.]+) GB/s", line)
    if m:
        runs[which].append([float(x) for x in m.groups()])
med = lambda xs: statistics.median(xs)
for which, name in (("now", "this tree"), ("base", "earlier")):
    rs = runs[which]
    if not rs:
        sys.exit(f"no valid {name} rounds")
    pw, ps, sw, ss = (med([r[i] for r in rs]) for i in range(4))
    print(f"{name}: {len(rs)} rounds, service {sw:.2f} / {ss:.2f} GB/s (write / write+fsync) vs plain {pw:.2f} / {ps:.2f} GB/s: "
          f"{sw / pw:.1%} / {ss / ps:.1%} of plain (medians of the per-round ratios: "
          f"{med([r[2] / r[0] for r in rs]):.1%} / {med([r[3] / r[1] for r in rs]):.1%})")
n, b = runs["now"], runs["base"]
print(f"this tree / earlier: write {med([r[2] for r in n]) / med([r[2] for r in b]):.1%}, "
      f"write+fsync {med([r[3] for r in n]) / med([r[3] for r in b]):.1%}")
EOF
