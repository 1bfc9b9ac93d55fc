#!/usr/bin/env bash
# Installs spindle from BUILD_DIR into a temporary prefix, then builds and
# runs a consumer against it twice: with find_package(spindle) and with
# `pkg-config --static spindle`.
set -euo pipefail
build_dir="$1"
src_dir="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null

echo "-- consumer via find_package"
cmake -S "$src_dir/consumer" -B "$work/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/consumer"

echo "-- consumer via pkg-config --static"
libdir=$(ls -d "$work"/prefix/lib*/pkgconfig | head -n1)
export PKG_CONFIG_PATH="$libdir"
# shellcheck disable=SC2046
c++ -o "$work/pc-consumer" "$src_dir/consumer/main.cpp" $(pkg-config --cflags --libs --static spindle)
"$work/pc-consumer"
