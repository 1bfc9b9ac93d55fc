#!/usr/bin/env bash
# build_go_tokio.sh OUTDIR -- build the Go and Tokio benchmark peers.
#
# Produces OUTDIR/peer_go and OUTDIR/peer_tokio (release builds). Installs
# Debian packages only when missing (golang-go; librust-tokio-dev and
# librust-async-channel-dev, whose crate sources land in
# /usr/share/cargo/registry; cargo itself if no cargo is found). The Tokio peer
# builds offline against that registry (tokio/.cargo/config.toml), from a copy
# of its sources under OUTDIR so the generated Cargo.lock never lands in the
# checkout. All caches (GOCACHE, GOPATH, CARGO_TARGET_DIR) live under OUTDIR.
#
# A peer that fails to build gets a warning on stderr; the script goes on
# with the other and exits 0. Re-running with nothing changed is a no-op build.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

warn() { echo "build_go_tokio: WARNING: $*" >&2; }

# ---- packages -------------------------------------------------------------
# A Debian package counts as present only if dpkg says "install ok installed".
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

find_cargo() {
  if command -v cargo >/dev/null 2>&1; then
    command -v cargo
  elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    echo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo"
  fi
}

missing=()
command -v go >/dev/null 2>&1 || have_pkg golang-go || missing+=(golang-go)
have_pkg librust-tokio-dev || missing+=(librust-tokio-dev)
have_pkg librust-async-channel-dev || missing+=(librust-async-channel-dev)
[[ -n "$(find_cargo)" ]] || missing+=(cargo)

if ((${#missing[@]})); then
  echo "build_go_tokio: installing ${missing[*]}" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$out/apt.log" 2>&1; then
    warn "apt-get install ${missing[*]} failed (see $out/apt.log)"
  fi
fi

# ---- Go -------------------------------------------------------------------
build_go() {
  local go_bin
  go_bin="$(command -v go || true)"
  [[ -n "$go_bin" ]] || go_bin=/usr/lib/go/bin/go
  [[ -x "$go_bin" ]] || { warn "no go toolchain"; return 1; }
  # Functions run from an `if` have errexit off, hence the explicit returns.
  (
    cd "$here/go" || exit 1
    export GOCACHE="$out/go-cache" GOPATH="$out/go-path" GOTOOLCHAIN=local CGO_ENABLED=0
    "$go_bin" build -trimpath -o "$out/peer_go" .
  ) || return 1
}

# ---- Tokio ----------------------------------------------------------------
build_tokio() {
  local cargo_bin src="$out/tokio-src"
  cargo_bin="$(find_cargo)"
  [[ -n "$cargo_bin" ]] || { warn "no cargo"; return 1; }
  # Copy with timestamps kept (cp -p) so an unchanged tree does not rebuild.
  mkdir -p "$src/src" "$src/.cargo"
  for f in Cargo.toml src/main.rs .cargo/config.toml; do
    if ! cmp -s "$here/tokio/$f" "$src/$f"; then
      cp -p "$here/tokio/$f" "$src/$f" || return 1
    fi
  done
  (
    cd "$src" || exit 1
    # rustc/rustup proxies sit beside cargo when cargo is not on PATH.
    PATH="$(dirname "$cargo_bin"):$PATH"
    CARGO_TARGET_DIR="$out/tokio-target" "$cargo_bin" build --release --offline --quiet
  ) || return 1
  cp -p "$out/tokio-target/release/peer_tokio" "$out/peer_tokio.tmp" || return 1
  mv -f "$out/peer_tokio.tmp" "$out/peer_tokio"
}

status=()
if build_go; then status+=("peer_go ok"); else
  warn "Go peer failed to build; $out/peer_go not produced"
  rm -f "$out/peer_go"
  status+=("peer_go FAILED")
fi
if build_tokio; then status+=("peer_tokio ok"); else
  warn "Tokio peer failed to build; $out/peer_tokio not produced"
  rm -f "$out/peer_tokio"
  status+=("peer_tokio FAILED")
fi
echo "build_go_tokio: ${status[*]} -> $out" >&2
exit 0
