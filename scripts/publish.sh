#!/usr/bin/env bash
# Publishes the six services and the std-daq CLI into one folder, self-contained (no .NET runtime
# needed on the host; they share the runtime files). The container image and the systemd install
# use it:  scripts/publish.sh /opt/std-daq     (scripts/publish.sh --restore: the packages only)
#   RID  the runtime identifier (default: this machine's, linux-x64 or linux-arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: scripts/publish.sh <output folder> | --restore" >&2; exit 2; }
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
rid=${RID:-linux-$arch}
projects=(src/StdDaqCli/StdDaqCli.csproj src/StdUdpRecv/StdUdpRecv.csproj
  src/StdAssembler/StdAssembler.csproj src/StdH5Writer/StdH5Writer.csproj
  src/WriterAgent/WriterAgent.csproj src/StdStreamSend/StdStreamSend.csproj
  src/StdStreamRecv/StdStreamRecv.csproj)
if [ "$1" = --restore ]; then
  for p in "${projects[@]}"; do dotnet restore "$p" -r "$rid" --nologo -v q; done
  exit 0
fi
out=$1
# Each program is published into a folder of its own, then the folders are merged, each program's
# own files last: the CLI references the services' projects and carries their files too, but
# framework-dependent ones.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in "${projects[@]}"; do
  dotnet publish "$p" -c Release -r "$rid" --self-contained --nologo -v q -o "$tmp/$(basename "$p" .csproj)" \
    -p:ErrorOnDuplicatePublishOutputFiles=false
done
mkdir -p "$out"
for p in "${projects[@]}"; do cp -a "$tmp/$(basename "$p" .csproj)/." "$out/"; done
for p in "${projects[@]}"; do
  dir=$tmp/$(basename "$p" .csproj)
  name=$(basename "$(find "$dir" -maxdepth 1 -name '*.runtimeconfig.json')" .runtimeconfig.json)
  for f in "$name" "$name.dll" "$name.runtimeconfig.json" "$name.deps.json" "$name.pdb"; do
    [ ! -e "$dir/$f" ] || cp -a "$dir/$f" "$out/"
  done
done
