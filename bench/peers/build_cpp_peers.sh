#!/usr/bin/env bash
# Build the C++ peer programs for the spindle benchmark comparison.
#
#   bench/peers/build_cpp_peers.sh OUTDIR
#
# Produces OUTDIR/peer_boost_fiber (Boost.Fiber 1.81, work_stealing) and
# OUTDIR/peer_tbb (oneTBB 2021). Installs the Debian packages only when they are
# missing (needs root then). A peer that fails to build is reported on stderr and
# skipped; the script still exits 0. A binary newer than its source and this
# script is not rebuilt.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
outdir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$outdir"

cxx=${CXX:-g++}
cxxflags=(-O2 -DNDEBUG -std=c++20 -pthread)

# ---- packages -------------------------------------------------------------
needed=(libboost-fiber1.81-dev libboost-context1.81-dev libtbb-dev)
missing=()
for p in "${needed[@]}"; do
    if ! dpkg -s "$p" >/dev/null 2>&1; then missing+=("$p"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "build_cpp_peers: installing ${missing[*]}" >&2
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    if ! { "${sudo[@]}" apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "build_cpp_peers: warning: could not install ${missing[*]}; builds may fail" >&2
    fi
fi

# ---- builds ---------------------------------------------------------------
# build NAME SOURCE LIBS...
build() {
    local name=$1 src=$2
    shift 2
    local out=$outdir/$name
    if [[ -x $out && $out -nt $src && $out -nt ${BASH_SOURCE[0]} ]]; then
        echo "build_cpp_peers: $name up to date" >&2
        return 0
    fi
    echo "build_cpp_peers: building $name" >&2
    if "$cxx" "${cxxflags[@]}" "$src" -o "$out.tmp" "$@"; then
        mv -f "$out.tmp" "$out"
    else
        rm -f "$out.tmp"
        echo "build_cpp_peers: warning: $name failed to build; skipping it" >&2
    fi
}

build peer_boost_fiber "$here/boost_fiber/peer_boost_fiber.cpp" -lboost_fiber -lboost_context
build peer_tbb "$here/tbb/peer_tbb.cpp" -ltbb
exit 0
