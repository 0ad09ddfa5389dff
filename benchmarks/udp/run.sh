#!/usr/bin/env bash
# End-to-end UDP receiver benchmark: StdUdpRecv (ours) against a minimal C recvmmsg counter.
#
# For each receiver it runs the same `std-daq sim` JUNGFRAU sender (one module: 1 MiB frames,
# 128 packets of 8240 bytes, to 127.0.0.1) at increasing frame rates, DURATION seconds each, and
# checks zero loss (receiver packets == sender packets, kernel_drops == 0). It then measures each
# receiver's CPU time per frame at a fixed CPU_RATE and prints a results table and the ratios. Each
# CPU run also says how often the receive thread slept per frame (its voluntary context switches:
# each is one wakeup by a datagram, and they drive most of the kernel time; they vary from run to
# run with how the sender's bursts and the receiver interleave, for every receiver alike).
#
# Usage: benchmarks/udp/run.sh
# Environment (all optional):
#   DURATION=10              seconds per sender run
#   RATES="500 750 ..."      requested frame rates (Hz) of the zero-loss sweep, ascending
#   CPU_RATE=1000            frame rate (Hz) of the CPU measurement
#   CPU_REPEATS=3            CPU runs per receiver (interleaved; ticks and frames are summed)
#   RECEIVERS="ours c"       which receivers to run: ours, c, and optionally ccopy (the C counter
#                            with --copy: it also copies each payload into a 256 MiB frame ring)
#                            and cring (the C counter with --ring: it receives each payload straight
#                            into the next place of such a ring, the lower bound for receiving in
#                            place) and ourscopy (StdUdpRecv with udp_receive_in_place=false: one payload
#                            copy per packet instead of receiving into the slot), and ref (another
#                            build of StdUdpRecv, REF_DLL, e.g. the previous commit's, to compare
#                            two versions in the same run), and oursmetrics (StdUdpRecv serving
#                            /metrics, scraped every SCRAPE_S seconds during the run: the metrics' cost)
#   SCRAPE_S=1               oursmetrics: seconds between two scrapes of its /metrics
#   REF_DLL=                 StdUdpRecv.dll of the ref receiver
#   SWEEP=1                  0: skip the zero-loss sweeps (CPU measurement only)
#   RCVBUF=268435456         socket receive buffer both receivers ask for; also the sysctl value
#   FRAME_TIMEOUT_MS=1000    StdUdpRecv's udp_frame_timeout_ms (its default is 50). The sender is
#                            one dotnet thread on a shared 2-core machine and was seen to stall up
#                            to ~100 ms mid-frame; with 50 ms StdUdpRecv then closes the frame early
#                            and the rest of its packets count as late (not received), which is
#                            sender jitter, not receiver capacity. Set 50 to test with the default.
#   CONFIRM_LOSS=1           rerun a lossy rate once; the sweep stops only if the rerun loses too
#   STOP_AT_SENDER_LIMIT=2   end a sweep after this many consecutive zero-loss runs in which the
#                            sender fell short of the requested rate (it then sends flat out, and
#                            higher requests test the same load); 0: never
#   MAX_SECONDS=2400         overall time budget; the sweeps stop early when it is used up
#   BUILD=1                  build Release first (0: use the existing binaries)
#   KEEP_LOGS=0              keep the per-run logs (they are always kept when something failed)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10}
RATES=${RATES:-"500 750 1000 1250 1500 1750 2000 2500 3000"}
CPU_RATE=${CPU_RATE:-1000}
CPU_REPEATS=${CPU_REPEATS:-3}
RECEIVERS=${RECEIVERS:-"ours c"}
RCVBUF=${RCVBUF:-268435456}
FRAME_TIMEOUT_MS=${FRAME_TIMEOUT_MS:-1000}
CONFIRM_LOSS=${CONFIRM_LOSS:-1}
STOP_AT_SENDER_LIMIT=${STOP_AT_SENDER_LIMIT:-2}
SWEEP=${SWEEP:-1}
MAX_SECONDS=${MAX_SECONDS:-2400}
BUILD=${BUILD:-1}
KEEP_LOGS=${KEEP_LOGS:-0}
REF_DLL=${REF_DLL:-}
SCRAPE_S=${SCRAPE_S:-1}

PACKETS_PER_FRAME=128         # JUNGFRAU, one module
SENDER_LIMIT_FRACTION=0.95    # achieved < 95 % of requested: the sender is the limit
START_TIMEOUT=30              # s to wait for a receiver to bind its port
STOP_TIMEOUT=15               # s to wait for a receiver to exit after SIGTERM
DRAIN_SECONDS=1               # s between the sender's end and stopping the receiver

RECV_DLL=$ROOT/src/StdUdpRecv/bin/Release/net10.0/StdUdpRecv.dll
SIM_DLL=$ROOT/src/StdDaqCli/bin/Release/net10.0/std-daq.dll
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/udp-bench.XXXXXX)
CBIN=$WORK/count_recvmmsg
LIVE_PIDS=()
SHM_NAMES=()
FAILED=0

log() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

cleanup() {
    local rc=$?
    set +e
    trap - ERR
    local pid
    for pid in "${LIVE_PIDS[@]}"; do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${LIVE_PIDS[@]}"; do
        [[ -z $pid ]] && continue
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid" || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && ! is_zombie "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    local name
    for name in "${SHM_NAMES[@]}"; do
        rm -f "/dev/shm/$name-0" "/tmp/$name-0"
    done
    if [[ $rc -ne 0 || $FAILED -ne 0 || $KEEP_LOGS == 1 ]]; then
        log "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted by SIGINT" >&2; exit 130' INT
trap 'echo "run.sh: interrupted by SIGTERM" >&2; exit 143' TERM
trap 'echo "run.sh: interrupted by SIGHUP" >&2; exit 129' HUP
trap 'echo "run.sh: line $LINENO: command failed (exit $?): $BASH_COMMAND" >&2' ERR

# ---- helpers ---------------------------------------------------------------------------------

forget_pid() {
    local i
    for i in "${!LIVE_PIDS[@]}"; do [[ ${LIVE_PIDS[$i]} == "$1" ]] && LIVE_PIDS[$i]=""; done
    return 0
}

is_zombie() { # pid: true if it has exited but is not reaped yet (or is gone)
    local line
    line=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    line=${line##*) }
    [[ ${line%% *} == Z ]]
}

cpu_ticks() { # pid -> "utime stime" (clock ticks) of all its threads: /proc/<pid>/stat fields 14, 15
    local line
    line=$(cat "/proc/$1/stat")
    line=${line##*) }          # fields from 3 (state) on; comm may contain spaces
    local -a f
    read -r -a f <<<"$line"
    echo "${f[11]} ${f[12]}"   # field 14 = f[11], field 15 = f[12]
}

vol_switches() { # pid -> voluntary context switches of its main thread (the receive loop of every receiver here)
    awk '/^voluntary_ctxt_switches:/ { print $2 }' "/proc/$1/status"
}

kv() { # key text -> the number after "key=" (whole word), or empty
    grep -oE "(^|[ :])$1=[0-9]+" <<<"$2" | tail -n1 | sed 's/.*=//' || true
}

json_num() { # key file -> the number of "key": in a compact JSON file
    grep -oE "\"$1\":-?[0-9.eE+]+" "$2" | head -n1 | cut -d: -f2 || true
}

net_drops() { # -> "udp_in_errors udp_rcvbuf_errors softnet_dropped", system-wide (this network namespace)
    local udp sd=0 line
    udp=$(awk '/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) n[i] = $i; h = 1 } else { for (i = 2; i <= NF; i++) { if (n[i] == "InErrors") e = $i; if (n[i] == "RcvbufErrors") r = $i } } } END { print e + 0, r + 0 }' /proc/net/snmp)
    while read -r -a line; do sd=$((sd + 16#${line[1]})); done </proc/net/softnet_stat
    echo "$udp $sd"
}

port_bound() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

PORT_NEXT=$((40000 + ($$ % 1000) * 20))
next_port() { # sets PORT to a port nobody has bound (not in a subshell: it advances PORT_NEXT)
    local p=$PORT_NEXT
    if ((p > 60000)); then p=$((40000 + (p % 1000))); fi
    while port_bound "$p"; do p=$((p + 1)); done
    PORT_NEXT=$((p + 1))
    PORT=$p
}

RUN_INDEX=0

# run_trial <ours|c> <rate>: one receiver + one sender run; sets T_* globals
run_trial() {
    local kind=$1 rate=$2
    RUN_INDEX=$((RUN_INDEX + 1))
    local port name cfg rlog slog rep pid spid
    next_port
    port=$PORT
    name="bench-udp-$$-$RUN_INDEX"
    cfg=$WORK/$name.json rlog=$WORK/$name.$kind.log slog=$WORK/$name.sim.log rep=$WORK/$name.sim.json
    local in_place=true metrics=""
    [[ $kind == ourscopy ]] && in_place=false
    # The metrics port: the UDP port's number in TCP (nothing else here listens on TCP there).
    [[ $kind == oursmetrics ]] && metrics=",\"metrics\":{\"udp_recv_port\":$port}"
    cat >"$cfg" <<EOF
{"detector_name":"$name","detector_type":"jungfrau-raw","n_modules":1,"bit_depth":16,"image_pixel_height":512,"image_pixel_width":1024,"start_udp_port":$port,"module_positions":{"0":[0,0,1023,511]},"frame_buffer_slots":256,"stats_collection_period":1,"udp_receive_buffer_bytes":$RCVBUF,"udp_frame_timeout_ms":$FRAME_TIMEOUT_MS,"udp_receive_in_place":$in_place$metrics}
EOF
    T_OK=0 T_NOTE="" T_TX_FRAMES=0 T_TX_PACKETS=0 T_ACHIEVED=0 T_RX_PACKETS="" T_RX_FRAMES="" T_DROPS="" T_TICKS=0 T_UTICKS=0 T_STICKS=0 T_BUF="" T_COPIED="" T_WAKEUPS=0
    SHM_NAMES+=("$name")
    case $kind in
        ours | ourscopy | oursmetrics) dotnet "$RECV_DLL" "$cfg" 0 >"$rlog" 2>&1 & ;;
        ref) dotnet "$REF_DLL" "$cfg" 0 >"$rlog" 2>&1 & ;;
        c) "$CBIN" "$port" "$RCVBUF" >"$rlog" 2>&1 & ;;
        ccopy) "$CBIN" "$port" "$RCVBUF" --copy >"$rlog" 2>&1 & ;;
        cring) "$CBIN" "$port" "$RCVBUF" --ring >"$rlog" 2>&1 & ;;
        *) echo "unknown receiver '$kind' (ours, ourscopy, oursmetrics, ref, c, ccopy, cring)" >&2; exit 2 ;;
    esac
    pid=$!
    LIVE_PIDS+=("$pid")

    # Wait (bounded) until it has bound the port; ours also until its receive loop has started
    # (the shared-memory ring is created after the bind, and that CPU must not count as work).
    local ready=0 i
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null || is_zombie "$pid"; then break; fi
        if port_bound "$port"; then
            if [[ $kind != ours* && $kind != ref ]] || grep -q "udp port $port ->" "$rlog"; then ready=1; break; fi
        fi
        sleep 0.1
    done
    if ((!ready)); then
        T_NOTE="receiver did not start (see $rlog)"
        FAILED=1
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
        rm -f "/dev/shm/$name-0" "/tmp/$name-0"
        return 0
    fi
    T_BUF=$(grep -oE "receive buffer [0-9]+ bytes" "$rlog" | head -n1 | grep -oE "[0-9]+" || true)

    local cpu0 cpu1 net0 net1 vcs0 vcs1
    net0=$(net_drops)
    cpu0=$(cpu_ticks "$pid")
    vcs0=$(vol_switches "$pid")
    timeout --kill-after=5 $((DURATION + 60)) \
        dotnet "$SIM_DLL" sim "$cfg" --rate "$rate" --seconds "$DURATION" --modules 0 --report "$rep" >"$slog" 2>&1 &
    spid=$!
    LIVE_PIDS+=("$spid")
    # oursmetrics: a scraper reads /metrics every SCRAPE_S seconds while the sender runs (its CPU is
    # curl's; the exporter's work is in the receiver's process and counted).
    local scraper=""
    if [[ $kind == oursmetrics ]]; then
        (while kill -0 "$spid" 2>/dev/null; do
            curl -sf "http://127.0.0.1:$port/metrics" >/dev/null || echo "scrape failed" >>"$rlog"
            sleep "$SCRAPE_S"
        done) &
        scraper=$!
    fi
    local src=0
    wait "$spid" || src=$?
    forget_pid "$spid"
    [[ -z $scraper ]] || wait "$scraper" 2>/dev/null || true
    sleep "$DRAIN_SECONDS"
    cpu1=$(cpu_ticks "$pid" 2>/dev/null || echo "$cpu0")
    vcs1=$(vol_switches "$pid" 2>/dev/null || echo "$vcs0")
    T_WAKEUPS=$((vcs1 - vcs0))
    local -a c0 c1
    read -r -a c0 <<<"$cpu0"
    read -r -a c1 <<<"$cpu1"
    T_UTICKS=$((c1[0] - c0[0])) T_STICKS=$((c1[1] - c0[1]))
    T_TICKS=$((T_UTICKS + T_STICKS))
    net1=$(net_drops)
    local -a a b
    read -r -a a <<<"$net0"
    read -r -a b <<<"$net1"
    if ((b[0] - a[0] || b[1] - a[1] || b[2] - a[2])); then
        T_NOTE+="system-wide during run: udp InErrors +$((b[0] - a[0])) RcvbufErrors +$((b[1] - a[1])) softnet dropped +$((b[2] - a[2])); "
    fi

    # Stop the receiver: SIGTERM, bounded wait, SIGKILL if it hangs.
    kill -TERM "$pid" 2>/dev/null || true
    local exited=0
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null || is_zombie "$pid"; then exited=1; break; fi
        sleep 0.1
    done
    if ((!exited)); then
        kill -KILL "$pid" 2>/dev/null || true
        T_NOTE+="receiver HUNG on SIGTERM (killed after ${STOP_TIMEOUT}s); "
        FAILED=1
    fi
    local rrc=0
    wait "$pid" 2>/dev/null || rrc=$?
    forget_pid "$pid"
    rm -f "/dev/shm/$name-0" "/tmp/$name-0"
    if ((rrc != 0 && exited)); then T_NOTE+="receiver exit code $rrc; "; FAILED=1; fi

    if ((src != 0)) || [[ ! -s $rep ]]; then
        T_NOTE+="sender failed (exit $src, see $slog); "
        FAILED=1
        return 0
    fi
    T_TX_FRAMES=$(json_num frames "$rep")
    T_TX_PACKETS=$(json_num packets "$rep")
    local elapsed refused
    elapsed=$(json_num elapsed_seconds "$rep")
    refused=$(json_num refused "$rep")
    T_ACHIEVED=$(awk -v f="$T_TX_FRAMES" -v s="$elapsed" 'BEGIN { printf "%.1f", (s > 0 ? f / s : 0) }')
    [[ ${refused:-0} != 0 ]] && T_NOTE+="sender: $refused datagrams refused; "

    local line
    if [[ $kind == ours* || $kind == ref ]]; then
        line=$(grep "totals:" "$rlog" | tail -n1 || true)
        if [[ -z $line ]]; then
            T_NOTE+="no totals line from StdUdpRecv (see $rlog); "
            FAILED=1
            return 0
        fi
        T_RX_PACKETS=$(kv packets "$line")
        T_DROPS=$(kv kernel_drops "$line")
        local fc nfi mp
        fc=$(kv frames_complete "$line") nfi=$(kv frames_incomplete "$line") mp=$(kv missing_packets "$line")
        T_RX_FRAMES=$((fc + nfi))
        local mal
        mal=$(( $(kv malformed_size "$line") + $(kv malformed_packet_number "$line") + $(kv malformed_protocol "$line") ))
        local late
        late=$(kv late_packets "$line")
        ((nfi > 0 || mp > 0 || late > 0)) && T_NOTE+="frames_incomplete=$nfi missing_packets=$mp late_packets=$late; "
        ((mal > 0)) && T_NOTE+="malformed=$mal; "
        T_COPIED=$(kv copied_packets "$line")
        if [[ $T_RX_PACKETS == "$T_TX_PACKETS" && $T_DROPS == 0 ]] && ((nfi > 0 || mp > 0)); then
            T_NOTE+="ODD: all packets counted but frames incomplete; "
        fi
    else
        line=$(grep -E "^packets=" "$rlog" | tail -n1 || true)
        if [[ -z $line ]]; then
            T_NOTE+="no result line from the C counter (see $rlog); "
            FAILED=1
            return 0
        fi
        T_RX_PACKETS=$(kv packets "$line")
        T_DROPS=$(kv kernel_drops "$line")
        T_RX_FRAMES=$((T_RX_PACKETS / PACKETS_PER_FRAME))
    fi
    if [[ $T_RX_PACKETS == "$T_TX_PACKETS" && $T_DROPS == 0 && $T_TX_PACKETS -gt 0 ]]; then
        T_OK=1
    fi
    return 0
}

sender_limited() { # requested achieved -> true if the sender fell short
    awk -v r="$1" -v a="$2" -v f="$SENDER_LIMIT_FRACTION" 'BEGIN { exit !(a < f * r) }'
}

label() {
    case $1 in
        ours) echo "StdUdpRecv (ours)" ;;
        ourscopy) echo "StdUdpRecv, copy mode" ;;
        oursmetrics) echo "StdUdpRecv, /metrics scraped every $SCRAPE_S s" ;;
        ref) echo "StdUdpRecv, reference build" ;;
        cring) echo "C counter receiving into a ring" ;;
        c) echo "C recvmmsg counter" ;;
        *) echo "C counter + payload copy" ;;
    esac
}

# ---- setup -----------------------------------------------------------------------------------

log "== UDP receiver benchmark: StdUdpRecv vs C recvmmsg counter"
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
log "DURATION=$DURATION s, RATES=\"$RATES\", CPU_RATE=$CPU_RATE Hz, CPU_REPEATS=$CPU_REPEATS, RCVBUF=$RCVBUF, FRAME_TIMEOUT_MS=$FRAME_TIMEOUT_MS, logs in $WORK"

if [[ $BUILD == 1 ]]; then
    log "building Release (dotnet build -c Release src/StdDaqCli) ..."
    built=0
    for attempt in 1 2 3; do
        if (cd "$ROOT" && timeout 900 dotnet build -c Release src/StdDaqCli -nologo -v q >"$WORK/build.log" 2>&1); then
            built=1
            break
        fi
        warn "build attempt $attempt failed (tail of $WORK/build.log below); retrying in 60 s"
        tail -n 5 "$WORK/build.log" >&2
        [[ $attempt -lt 3 ]] && sleep 60
    done
    ((built)) || { FAILED=1; echo "build failed" >&2; exit 1; }
fi
[[ -f $RECV_DLL && -f $SIM_DLL ]] || { echo "missing $RECV_DLL or $SIM_DLL (build first)" >&2; exit 1; }
if [[ " $RECEIVERS " == *" ref "* && ! -f $REF_DLL ]]; then echo "RECEIVERS has ref but REF_DLL ('$REF_DLL') is not a file" >&2; exit 1; fi
cc -O2 -Wall -o "$CBIN" "$HERE/count_recvmmsg.c"
log "compiled $HERE/count_recvmmsg.c with cc -O2"

for key in net.core.rmem_max net.core.rmem_default; do
    cur=$(sysctl -n "$key")
    if [[ $(id -u) == 0 ]]; then
        if ((cur < RCVBUF)); then
            sysctl -q -w "$key=$RCVBUF" >/dev/null
            log "root: raised $key from $cur to $(sysctl -n "$key") with sysctl (left raised, as scripts/setup.sh does)"
        else
            log "root: $key is already $cur (>= $RCVBUF), not changed"
        fi
    else
        log "not root: cannot raise $key with sysctl; it is $cur (receivers fall back to SO_RCVBUF, capped by net.core.rmem_max)"
    fi
done

# ---- zero-loss sweeps ------------------------------------------------------------------------

declare -A BEST_REQ BEST_ACH END_REASON BUFS
SWEEP_ROWS=()
for kind in $RECEIVERS; do
    BEST_REQ[$kind]=0 BEST_ACH[$kind]=0 END_REASON[$kind]="rate list exhausted"
    [[ $SWEEP == 1 ]] || { END_REASON[$kind]="not run (SWEEP=0)"; continue; }
    short=0
    log ""
    log "== zero-loss sweep: $(label "$kind")"
    for rate in $RATES; do
        if ((SECONDS > MAX_SECONDS)); then END_REASON[$kind]="time budget (MAX_SECONDS=$MAX_SECONDS) used up"; break; fi
        tries=1
        ((CONFIRM_LOSS == 1)) && tries=2
        passed=0
        for ((t = 1; t <= tries; t++)); do
            run_trial "$kind" "$rate"
            [[ -n $T_BUF ]] && BUFS[$kind]=$T_BUF
            result=$([[ $T_OK == 1 ]] && echo "zero loss" || echo "LOSS")
            [[ -z $T_RX_PACKETS ]] && result="ERROR"
            ((t > 1)) && result+=" (rerun)"
            row="| $(label "$kind") | $rate | $T_ACHIEVED | $T_TX_PACKETS | ${T_RX_PACKETS:--} | ${T_DROPS:--} | $result | ${T_NOTE%; } |"
            SWEEP_ROWS+=("$row")
            log "  rate $rate Hz: sender achieved $T_ACHIEVED frames/s, sent $T_TX_PACKETS packets, received ${T_RX_PACKETS:--}, kernel_drops ${T_DROPS:--} -> $result ${T_NOTE:+[$T_NOTE]}"
            if [[ $T_OK == 1 ]]; then passed=1; break; fi
            [[ $result == ERROR* ]] && break
        done
        if ((!passed)); then END_REASON[$kind]="loss at $rate Hz (sender achieved $T_ACHIEVED)"; break; fi
        BEST_REQ[$kind]=$rate
        if awk -v a="$T_ACHIEVED" -v b="${BEST_ACH[$kind]}" 'BEGIN { exit !(a > b) }'; then BEST_ACH[$kind]=$T_ACHIEVED; fi
        if sender_limited "$rate" "$T_ACHIEVED"; then short=$((short + 1)); else short=0; fi
        if ((STOP_AT_SENDER_LIMIT > 0 && short >= STOP_AT_SENDER_LIMIT)); then
            END_REASON[$kind]="sender limit: $short runs in a row short of the requested rate (last: asked $rate Hz, sent $T_ACHIEVED)"
            break
        fi
    done
    log "  -> highest zero-loss rate: ${BEST_REQ[$kind]} Hz requested; highest rate actually sent with zero loss: ${BEST_ACH[$kind]} frames/s; sweep ended by: ${END_REASON[$kind]}"
done

# ---- CPU per frame at CPU_RATE ---------------------------------------------------------------

declare -A CPU_TICKS CPU_UTICKS CPU_FRAMES CPU_ACH CPU_NOTE CPU_RUNS
for kind in $RECEIVERS; do CPU_TICKS[$kind]=0 CPU_UTICKS[$kind]=0 CPU_FRAMES[$kind]=0 CPU_ACH[$kind]="" CPU_NOTE[$kind]="" CPU_RUNS[$kind]=""; done
log ""
log "== CPU per frame at $CPU_RATE Hz, $DURATION s ($CPU_REPEATS run(s) per receiver)"
for ((r = 1; r <= CPU_REPEATS; r++)); do
    for kind in $RECEIVERS; do
        run_trial "$kind" "$CPU_RATE"
        CPU_TICKS[$kind]=$((CPU_TICKS[$kind] + T_TICKS))
        CPU_UTICKS[$kind]=$((CPU_UTICKS[$kind] + T_UTICKS))
        [[ -n $T_BUF ]] && BUFS[$kind]=$T_BUF
        CPU_FRAMES[$kind]=$((CPU_FRAMES[$kind] + ${T_RX_FRAMES:-0}))
        CPU_ACH[$kind]+="${CPU_ACH[$kind]:+, }$T_ACHIEVED"
        [[ $T_OK == 1 ]] || CPU_NOTE[$kind]+="run $r lost packets (rx ${T_RX_PACKETS:--} of $T_TX_PACKETS, drops ${T_DROPS:--}); "
        [[ -n $T_NOTE ]] && CPU_NOTE[$kind]+="run $r: ${T_NOTE%; }; "
        us=$(awk -v t="$T_TICKS" -v h="$CLK_TCK" -v f="${T_RX_FRAMES:-0}" 'BEGIN { printf "%.1f", (f > 0 ? t / h * 1e6 / f : 0) }')
        CPU_RUNS[$kind]+="${CPU_RUNS[$kind]:+, }$us"
        log "  $(label "$kind") run $r: sender achieved $T_ACHIEVED frames/s, received ${T_RX_FRAMES:-0} frames, CPU $T_TICKS ticks (user $T_UTICKS, sys $T_STICKS; CLK_TCK=$CLK_TCK) -> $us us/frame, $(awk -v w="$T_WAKEUPS" -v f="${T_RX_FRAMES:-0}" 'BEGIN { printf "%.1f", (f > 0 ? w / f : 0) }') sleeps/frame${T_COPIED:+, packets copied (not received in place): $T_COPIED of ${T_RX_PACKETS:-0}} ${T_NOTE:+[$T_NOTE]}"
    done
done

# ---- report ----------------------------------------------------------------------------------

us_per_frame() { awk -v t="${CPU_TICKS[$1]:-0}" -v h="$CLK_TCK" -v f="${CPU_FRAMES[$1]:-0}" 'BEGIN { if (f > 0) printf "%.1f", t / h * 1e6 / f; else printf "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'; }

log ""
log "== Results (JUNGFRAU 1 module, 1 MiB frames = $PACKETS_PER_FRAME x 8240-byte packets, loopback, $DURATION s per run)"
log ""
if [[ $SWEEP == 1 ]]; then
    log "Zero-loss sweep:"
    log ""
    log "| receiver | requested Hz | sender achieved frames/s | sent packets | received packets | kernel drops | result | notes |"
    log "|---|---:|---:|---:|---:|---:|---|---|"
    for row in "${SWEEP_ROWS[@]}"; do log "$row"; done
    log ""
fi
log "Summary:"
log ""
log "| receiver | receive buffer (bytes) | highest zero-loss rate, requested Hz | highest zero-loss rate actually sent, frames/s | sweep ended by | CPU at $CPU_RATE Hz: sender achieved frames/s | frames received | CPU s (user + sys) | CPU us/frame (per run) | CPU us/frame | notes |"
log "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
for kind in $RECEIVERS; do
    cpu_s=$(awk -v t="${CPU_TICKS[$kind]}" -v u="${CPU_UTICKS[$kind]}" -v h="$CLK_TCK" 'BEGIN { printf "%.2f (%.2f + %.2f)", t / h, u / h, (t - u) / h }')
    n=${CPU_NOTE[$kind]}
    log "| $(label "$kind") | ${BUFS[$kind]:-?} | ${BEST_REQ[$kind]} | ${BEST_ACH[$kind]} | ${END_REASON[$kind]} | ${CPU_ACH[$kind]} | ${CPU_FRAMES[$kind]} | $cpu_s | ${CPU_RUNS[$kind]} | $(us_per_frame "$kind") | ${n%; } |"
done
if [[ " $RECEIVERS " == *" ours "* && " $RECEIVERS " == *" c "* ]]; then
    rr=$(ratio "${BEST_REQ[ours]}" "${BEST_REQ[c]}")
    ra=$(ratio "${BEST_ACH[ours]}" "${BEST_ACH[c]}")
    rc=$(ratio "$(us_per_frame ours)" "$(us_per_frame c)")
    verdict() { awk -v x="$1" -v t="$2" -v op="$3" 'BEGIN { if (x == "n/a") print "n/a"; else if ((op == ">=" && x >= t) || (op == "<=" && x <= t)) print "meets target"; else print "MISSES target" }'; }
    log ""
    log "Ratios:"
    [[ $SWEEP == 1 ]] && log "- zero-loss rate ours/C: $ra on rates actually sent (${BEST_ACH[ours]} / ${BEST_ACH[c]} frames/s; target >= 0.95: $(verdict "$ra" 0.95 ">=")), $rr on requested rates (${BEST_REQ[ours]} / ${BEST_REQ[c]} Hz)"
    log "- CPU per frame ours/C: $rc ($(us_per_frame ours) / $(us_per_frame c) us/frame); target <= 1.2: $(verdict "$rc" 1.2 "<=")"
    if [[ ${END_REASON[ours]} == sender* || ${END_REASON[c]} == sender* ]]; then
        log "- note: a sweep that ended at the sender's limit found no receiver limit: the sender (one thread, which on loopback also pays the kernel's delivery work) shares the 2 cores with the receiver, so its top rate also drops when the receiver uses more CPU."
    fi
fi
if [[ " $RECEIVERS " == *" ours "* && " $RECEIVERS " == *" ccopy "* ]]; then
    log "- CPU per frame ours/(C counter + payload copy): $(ratio "$(us_per_frame ours)" "$(us_per_frame ccopy)") ($(us_per_frame ours) / $(us_per_frame ccopy) us/frame; not a target, shows how much of the gap is the one payload copy)"
fi
if [[ " $RECEIVERS " == *" ours "* && " $RECEIVERS " == *" cring "* ]]; then
    log "- CPU per frame ours/(C counter receiving into a ring): $(ratio "$(us_per_frame ours)" "$(us_per_frame cring)") ($(us_per_frame ours) / $(us_per_frame cring) us/frame; the C lower bound for receiving in place)"
    log "- CPU per frame (C counter receiving into a ring)/(C counter): $(ratio "$(us_per_frame cring)" "$(us_per_frame c)") (what writing the frames to ring memory costs by itself)"
fi
if [[ " $RECEIVERS " == *" ours "* && " $RECEIVERS " == *" ref "* ]]; then
    log "- CPU per frame ours/(reference build): $(ratio "$(us_per_frame ours)" "$(us_per_frame ref)") ($(us_per_frame ours) / $(us_per_frame ref) us/frame; reference: $REF_DLL)"
fi
if [[ " $RECEIVERS " == *" ref "* && " $RECEIVERS " == *" cring "* ]]; then
    log "- CPU per frame (reference build)/(C counter receiving into a ring): $(ratio "$(us_per_frame ref)" "$(us_per_frame cring)") ($(us_per_frame ref) / $(us_per_frame cring) us/frame)"
fi
if [[ " $RECEIVERS " == *" ours "* && " $RECEIVERS " == *" oursmetrics "* ]]; then
    log "- CPU per frame (ours with /metrics scraped every $SCRAPE_S s)/ours: $(ratio "$(us_per_frame oursmetrics)" "$(us_per_frame ours)") ($(us_per_frame oursmetrics) / $(us_per_frame ours) us/frame; target < 1.02)"
fi
if [[ " $RECEIVERS " == *" ours "* && " $RECEIVERS " == *" ourscopy "* ]]; then
    log "- CPU per frame ours/(ours in copy mode): $(ratio "$(us_per_frame ours)" "$(us_per_frame ourscopy)") ($(us_per_frame ours) / $(us_per_frame ourscopy) us/frame; receiving in place against one copy per packet)"
fi
if ((FAILED)); then
    log ""
    log "Some runs failed (see notes above); logs kept in $WORK"
fi
