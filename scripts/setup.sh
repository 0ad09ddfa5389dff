#!/usr/bin/env bash
# Installs what StdDaq needs on a Debian machine (dotnet itself is assumed present) and, when
# run as root, raises the kernel's UDP receive-buffer limit. Sourced by demo.sh and test.sh.
set -euo pipefail

if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET SDK (dotnet, version 10) is not on PATH; install it first: https://dot.net" >&2
  exit 1
fi

need=()
[ -e /usr/lib/x86_64-linux-gnu/libzmq.so.5 ] || [ -e /usr/lib/aarch64-linux-gnu/libzmq.so.5 ] || need+=(libzmq5)
command -v cc >/dev/null 2>&1 || need+=(gcc)
# The tests decode the assembler's ImageMetadata with pyzmq in a separate process.
{ [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import zmq" >/dev/null 2>&1; } || need+=(python3-zmq)
# libhdf5 (serial, 1.10) through our bindings; h5py and h5dump read our files back independently.
[ -e /usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103 ] || [ -e /usr/lib/aarch64-linux-gnu/libhdf5_serial.so.103 ] || need+=(libhdf5-dev)
{ [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import h5py" >/dev/null 2>&1; } || need+=(python3-h5py)
# std-daq's own clients are Python pika programs; tests run one against our WriterAgent.
{ [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import pika" >/dev/null 2>&1; } || need+=(python3-pika)
command -v h5dump >/dev/null 2>&1 || need+=(hdf5-tools)
# Debian's bitshuffle HDF5 plugin (filter 32008) reads our compressed files back, and its
# bshuf_compress_lz4 is the reference the compression benchmark compares against.
[ -e /usr/lib/x86_64-linux-gnu/hdf5/serial/plugins/libh5bshuf.so ] || [ -e /usr/lib/aarch64-linux-gnu/hdf5/serial/plugins/libh5bshuf.so ] || need+=(bitshuffle)
# bitshuffle-LZ4 compresses with the system liblz4 (on every Debian; the bitshuffle plugin links it too).
[ -e /usr/lib/x86_64-linux-gnu/liblz4.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/liblz4.so.1 ] || need+=(liblz4-1)
# The NXmx tests read our files as users' software does: silx finds the default plot, DIALS
# (dials.import, dials.show) imports the files; python3-dials is a 2.3 GB install (~4 min).
{ [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import silx" >/dev/null 2>&1; } || need+=(python3-silx)
[ -x /usr/bin/dials.import ] && [ -x /usr/bin/dials.show ] || need+=(python3-dials)
# The replication tests make two "servers" of network and mount namespaces (ip netns, nsenter, unshare).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
{ command -v nsenter >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1; } || need+=(util-linux)
# The services publish heartbeats to Redis and may take their config from it; tests start a private redis-server.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# The deployment tests build the service image and run docker/compose.yaml with podman (runc,
# podman-compose), on base images made with debootstrap (no registry is needed).
for tool in podman podman-compose runc debootstrap; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
# systemd-analyze checks the systemd units.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# The metrics tests lint every service's /metrics with promtool (Prometheus' own checker), test the
# alert rules with it, and run a Prometheus server against a live pipeline.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The writer tests and the demo start a private RabbitMQ broker on loopback (no system service).
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${need[*]} (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "error: missing Debian packages: ${need[*]}; run: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

# Loopback bursts of 8 KB datagrams overflow the default 4 MiB socket buffer.
want=268435456
have=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
  if [ "$(id -u)" -eq 0 ] && sysctl -q -w net.core.rmem_max=$want net.core.rmem_default=$want 2>/dev/null; then
    echo "setup: raised net.core.rmem_max and rmem_default from $have to $want (root)"
  else
    echo "setup: net.core.rmem_max is $have (not root, or sysctl refused); receivers as root use SO_RCVBUFFORCE, others may drop bursts"
  fi
fi
