#!/usr/bin/env bash
# Replication throughput between two "servers" (network namespaces joined by a veth pair, each with
# a private /dev/shm and /tmp) next to iperf3 over the same veth, in one run, rounds interleaved:
# iperf3 (one stream), StdStreamSend -> StdStreamRecv with checksums, the same without, iperf3 -P 4,
# and 4 part senders -> 4 part receivers (--part i/4, four TCP streams, checksums on).
# Images: 2-module JUNGFRAU raw, 2 MiB each, noise. Prints each measurement and the medians.
# Usage: benchmarks/Stream/run.sh   (root; installs iperf3 if missing)
# Environment: ROUNDS=3, IMAGES=3000, SECONDS_IPERF=5; VARIANT="--queue-mib 16" adds a run with checksums and
# these options on both sides to every round (to try a change against the runs next to it);
# BASELINE=path/to/StdDaq.Benchmarks.Stream.dll (another build's, on a path both namespaces see, e.g.
# under /var/tmp) adds that build's replication with checksums, one stream and 4 parts, to every round.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "benchmarks/Stream/run.sh: needs root (network and mount namespaces)" >&2; exit 1; }
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null
rounds=${ROUNDS:-3} images=${IMAGES:-3000} tsec=${SECONDS_IPERF:-5}
dotnet build benchmarks/Stream -c Release --nologo -v q >/dev/null
bench=$PWD/benchmarks/Stream/bin/Release/net10.0/StdDaq.Benchmarks.Stream.dll
# Names, addresses and the mount state are this run's own (from its pid), so runs from several
# work trees on one machine do not meet: a /30 of 10.232.0.0/16 routed "unreachable" on the host.
third=$(($$ % 256)) fourth=$(($$ / 256 % 64 * 4))
NET=10.232.$third.$fourth/30 IPA=10.232.$third.$((fourth + 1)) IPB=10.232.$third.$((fourth + 2))
A=sbA$$ B=sbB$$ STATE=/run/stddaq-bench-ns-$$ routed=
dir=/var/tmp/stddaq-stream-bench-$$ log=$(mktemp)
down() {
  for n in "$A" "$B"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    umount "$STATE/$n.mnt" 2>/dev/null || true; rm -f "$STATE/$n.mnt"; ip netns del "$n" 2>/dev/null || true
  done
  mountpoint -q "$STATE" && umount "$STATE" && rmdir "$STATE" || true
  [ -z "$routed" ] || ip route del unreachable "$NET" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && cp -r "$dir" "$KEEP" 2>/dev/null; rm -rf "$dir" "$log"
}
trap down EXIT
ip route add unreachable "$NET"; routed=1
ip netns add "$A"; ip netns add "$B"
ip link add "v$A" type veth peer name "v$B"
ip link set "v$A" netns "$A"; ip link set "v$B" netns "$B"
ip -n "$A" addr add "$IPA/30" dev "v$A"; ip -n "$B" addr add "$IPB/30" dev "v$B"
for n in "$A" "$B"; do ip -n "$n" link set lo up; ip -n "$n" link set "v$n" up; done
mkdir -p "$STATE"; mount --bind "$STATE" "$STATE"; mount --make-private "$STATE"
for n in "$A" "$B"; do
  touch "$STATE/$n.mnt"
  nsenter --net=/run/netns/"$n" unshare --mount="$STATE/$n.mnt" --propagation private \
    sh -c 'mount -t tmpfs -o size=4g,mode=1777 tmpfs /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /tmp'
done
on() { local n=$1; shift; nsenter --net=/run/netns/"$n" --mount="$STATE/$n.mnt" -- "$@"; }
mkdir -p "$dir"
python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c.update(detector_name="bench", image_buffer_slots=256); json.dump(c, open(sys.argv[2], "w"))' \
  examples/jungfrau-2module.json "$dir/detector.json"
echo "$(date -u +%FT%TZ); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) CPUs; $images images of 2 MiB per replication run"
iperf() { # $1 = parallel streams
  on "$B" iperf3 -s -B "$IPB" -p 5201 -1 >/dev/null 2>&1 &
  local server=$!; sleep 0.3
  local json; json=$(on "$A" iperf3 -c "$IPB" -p 5201 -t "$tsec" -P "$1" -J)
  wait "$server" || true
  # GB/s, CPU % of the sender and receiver host, and their CPU seconds per GB.
  python3 -c 'import json,sys; e=json.loads(sys.argv[1])["end"]; g=e["sum_received"]["bits_per_second"]/8e9; c=e["cpu_utilization_percent"]; print(round(g, 3), round(c["host_total"], 1), round(c["remote_total"], 1), round(c["host_total"]/100/g, 3), round(c["remote_total"]/100/g, 3))' "$json"
}
replicate() { # $1 = extra source options, $2 = extra options of both sides, $3 = the benchmark's dll (this build's)
  local bench=${3:-$bench}
  rm -f "$dir/done"
  on "$B" dotnet "$bench" replica "$dir/detector.json" "tcp://$IPA:5700" --images "$images" ${2:-} >"$dir/replica.json" 2>"$dir/replica.err" &
  local replica=$!
  on "$A" dotnet "$bench" source "$dir/detector.json" "tcp://$IPA:5700" --images "$images" --done "$dir/done" $1 ${2:-} >"$dir/source.json" &
  local source=$!
  wait "$replica"
  touch "$dir/done"
  wait "$source"
  echo "$(cat "$dir/source.json") $(cat "$dir/replica.json")"
}
for ((r = 1; r <= rounds; r++)); do
  read -r gbs hcpu rcpu hs rs <<<"$(iperf 1)"; echo "round $r iperf3 -P 1: $gbs GB/s (CPU sender $hcpu %, receiver $rcpu %; $hs / $rs s/GB)"; echo "iperf1 $gbs $hs $rs" >>"$log"
  line=$(replicate ""); echo "round $r replication, checksums: $line"; echo "sum $line" >>"$log"
  line=$(replicate "--no-checksum"); echo "round $r replication, no checksums: $line"; echo "nosum $line" >>"$log"
  if [ -n "${VARIANT:-}" ]; then
    line=$(replicate "" "$VARIANT"); echo "round $r replication, checksums, $VARIANT: $line"; echo "variant $line" >>"$log"
  fi
  if [ -n "${BASELINE:-}" ]; then
    line=$(replicate "" "" "$BASELINE"); echo "round $r baseline replication, checksums: $line"; echo "base $line" >>"$log"
  fi
  read -r gbs hcpu rcpu hs rs <<<"$(iperf 4)"; echo "round $r iperf3 -P 4: $gbs GB/s (CPU sender $hcpu %, receiver $rcpu %; $hs / $rs s/GB)"; echo "iperf4 $gbs $hs $rs" >>"$log"
  line=$(replicate "" "--parts 4"); echo "round $r replication in 4 parts, checksums: $line"; echo "parts4 $line" >>"$log"
  if [ -n "${BASELINE:-}" ]; then
    line=$(replicate "" "--parts 4" "$BASELINE"); echo "round $r baseline replication in 4 parts, checksums: $line"; echo "base4 $line" >>"$log"
  fi
done
python3 - "$log" <<'PY'
import json, re, statistics, sys
rows = {"iperf1": [], "iperf4": [], "sum": [], "nosum": [], "parts4": [], "variant": [], "base": [], "base4": []}
for line in open(sys.argv[1]):
    kind, rest = line.split(" ", 1)
    if kind.startswith("iperf"):
        rows[kind].append([float(x) for x in rest.split()])
    else:
        src, rep = [json.loads(x) for x in re.findall(r"\{[^}]*\}", rest)]
        rows[kind].append((rep["gb_per_s"], rep["images"], rep["lost"], src["cpu_s_per_gb"], rep["cpu_s_per_gb"], src["dropped_hwm"] + src["overrun"],
                           src.get("minor_faults_per_image", 0), rep.get("minor_faults_per_image", 0)))
med = statistics.median
i1, i4 = med([x[0] for x in rows["iperf1"]]), med([x[0] for x in rows["iperf4"]])
for kind, name in (("iperf1", "one stream"), ("iperf4", "4 streams")):
    rs = rows[kind]
    print(f"iperf3 {name} {med([x[0] for x in rs]):.2f} GB/s, CPU s/GB sender {med([x[1] for x in rs]):.3f}, receiver {med([x[2] for x in rs]):.3f} "
          f"(medians of {len(rs)}; per round {[x[0] for x in rs]})")
for kind, name, base, bname in (("sum", "with checksums", i1, "one stream"), ("nosum", "without checksums", i1, "one stream"),
                                ("parts4", "in 4 parts, with checksums", i4, "-P 4"), ("variant", "with checksums and VARIANT", i1, "one stream"),
                                ("base", "with checksums, BASELINE", i1, "one stream"), ("base4", "in 4 parts, with checksums, BASELINE", i4, "-P 4")):
    rs = rows[kind]
    if not rs:
        continue
    g = med([x[0] for x in rs])
    print(f"replication {name}: {g:.2f} GB/s = {g / base:.1%} of iperf3 {bname} (per round {[x[0] for x in rs]}); CPU s/GB source {med([x[3] for x in rs]):.3f}, "
          f"replica {med([x[4] for x in rs]):.3f}; minor faults per image source {med([x[6] for x in rs]):.0f}, replica {med([x[7] for x in rs]):.0f}; images published {[x[1] for x in rs]}, lost at the replica {[x[2] for x in rs]}, "
          f"not sent at the source {[x[5] for x in rs]}")
PY
