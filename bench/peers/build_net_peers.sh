#!/usr/bin/env bash
# build_net_peers.sh OUTDIR -- build the C and Go server peers for spindle's
# server comparison (bench/peers/servers.md).
#
# Produces in OUTDIR:
#   peer_c_http, peer_c_echo, peer_c_echo_client   (c_net/, gcc -O2, pthreads)
#   peer_go_http, peer_go_echo                      (go_net/, standard library)
# Installs golang-go with apt-get only when no go toolchain is found. The Go
# build is offline (GOTOOLCHAIN=local, GOPROXY=off, CGO_ENABLED=0); its caches
# (GOCACHE, GOPATH) live under OUTDIR.
#
# A peer that fails to build gets a warning on stderr; the script goes on
# with the others and exits 0. Re-running with nothing changed rebuilds
# nothing: a C peer is recompiled only when its source, epoll_loop.h or this
# script is newer than the binary; go build is a cache hit, and a Go binary
# is replaced only when it differs (so its mtime stays put).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

warn() { echo "build_net_peers: WARNING: $*" >&2; }

# ---- packages -------------------------------------------------------------
# A Debian package counts as present only if dpkg says "install ok installed".
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

find_go() {
  if command -v go >/dev/null 2>&1; then
    command -v go
  elif [[ -x /usr/lib/go/bin/go ]]; then
    echo /usr/lib/go/bin/go
  fi
}

missing=()
[[ -n "$(find_go)" ]] || have_pkg golang-go || missing+=(golang-go)
command -v gcc >/dev/null 2>&1 || have_pkg gcc || missing+=(gcc)

if ((${#missing[@]})); then
  echo "build_net_peers: installing ${missing[*]}" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$out/apt.log" 2>&1; then
    warn "apt-get install ${missing[*]} failed (see $out/apt.log)"
  fi
fi

# ---- C ----------------------------------------------------------------------
# build_c NAME: c_net/NAME.c -> OUTDIR/NAME, only when out of date.
build_c() {
  local name="$1" src="$here/c_net/$1.c" bin="$out/$1"
  command -v gcc >/dev/null 2>&1 || { warn "no gcc"; return 1; }
  if [[ -x "$bin" && "$bin" -nt "$src" && "$bin" -nt "$here/c_net/epoll_loop.h" &&
    "$bin" -nt "$self" ]]; then
    return 0
  fi
  # Functions run from an `if` have errexit off, hence the explicit returns.
  gcc -O2 -Wall -Wextra -pthread -o "$bin.tmp" "$src" || { rm -f "$bin.tmp"; return 1; }
  mv -f "$bin.tmp" "$bin"
}

# ---- Go -------------------------------------------------------------------
# build_go NAME DIR: go_net/DIR -> OUTDIR/NAME.
build_go() {
  local name="$1" dir="$2" go_bin
  go_bin="$(find_go)"
  [[ -n "$go_bin" ]] || { warn "no go toolchain"; return 1; }
  (
    cd "$here/go_net" || exit 1
    export GOCACHE="$out/go-cache" GOPATH="$out/go-path" GOTOOLCHAIN=local \
      CGO_ENABLED=0 GOPROXY=off
    "$go_bin" build -trimpath -o "$out/$name.tmp" "./$dir"
  ) || { rm -f "$out/$name.tmp"; return 1; }
  # go build rewrites its output even on a cache hit; keep the old file then.
  if cmp -s "$out/$name.tmp" "$out/$name"; then
    rm -f "$out/$name.tmp"
  else
    mv -f "$out/$name.tmp" "$out/$name"
  fi
}

status=()
for name in peer_c_http peer_c_echo peer_c_echo_client; do
  if build_c "$name"; then status+=("$name ok"); else
    warn "$name failed to build; $out/$name not produced"
    rm -f "$out/$name"
    status+=("$name FAILED")
  fi
done
for pair in peer_go_http:http peer_go_echo:echo; do
  name="${pair%%:*}"
  if build_go "$name" "${pair#*:}"; then status+=("$name ok"); else
    warn "$name failed to build; $out/$name not produced"
    rm -f "$out/$name"
    status+=("$name FAILED")
  fi
done
summary="$(printf '%s, ' "${status[@]}")"
echo "build_net_peers: ${summary%, } -> $out" >&2
exit 0
