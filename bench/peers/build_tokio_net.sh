#!/usr/bin/env bash
# build_tokio_net.sh OUTDIR -- build the tokio::net / hyper server peers.
#
# Produces OUTDIR/peer_tokio_http, OUTDIR/peer_tokio_echo and
# OUTDIR/peer_hyper_http (release builds of bench/peers/tokio_net; see
# bench/peers/servers.md). Installs Debian packages only when missing
# (librust-tokio-dev, librust-hyper-dev, librust-bytes-dev, whose crate sources
# land in /usr/share/cargo/registry; cargo itself if no cargo is found). Every
# feature used (tokio: rt-multi-thread net io-util signal time; hyper: server
# http1 tcp) is provided by those packages themselves, no librust-*+FEATURE-dev
# package is needed. The build is offline against that registry
# (tokio_net/.cargo/config.toml), from a copy of the sources under OUTDIR so
# the generated Cargo.lock never lands in the checkout; CARGO_TARGET_DIR is
# under OUTDIR too. Cargo runs with -j2.
#
# hyper: Debian 12's librust-hyper-dev 0.14.19 (with h2 0.3.13, http 0.2.7,
# http-body 0.4.5, httparse 1.8.0, httpdate 1.0.2, want 0.3.0,
# tower-service 0.3.2, socket2 0.4.4) builds offline, so peer_hyper_http is
# built. If the hyper sources are absent, or the package fails to build as a
# whole (e.g. a dependency missing from the registry), the two tokio peers are
# rebuilt from a copy whose Cargo.toml has no hyper dependency and
# peer_hyper_http is left out with a warning.
#
# A peer that fails to build gets a warning on stderr; the script goes on
# with the others and exits 0. Re-running with nothing changed is a no-op build.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
registry=/usr/share/cargo/registry
tokio_bins=(peer_tokio_http peer_tokio_echo)
hyper_bin=peer_hyper_http

warn() { echo "build_tokio_net: WARNING: $*" >&2; }

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
for p in librust-tokio-dev librust-hyper-dev librust-bytes-dev; do
  have_pkg "$p" || missing+=("$p")
done
[[ -n "$(find_cargo)" ]] || missing+=(cargo)

if ((${#missing[@]})); then
  echo "build_tokio_net: installing ${missing[*]}" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$out/apt-tokio_net.log" 2>&1; then
    warn "apt-get install ${missing[*]} failed (see $out/apt-tokio_net.log)"
  fi
fi

# ---- sources --------------------------------------------------------------
# Copy with timestamps kept (cp -p), and only files that differ, so an
# unchanged tree does not rebuild.
sync_file() { # SRC DST
  if ! cmp -s "$1" "$2"; then
    mkdir -p "$(dirname "$2")" && cp -p "$1" "$2"
  fi
}

# sync_src DIR with_hyper|no_hyper
sync_src() {
  local dst="$1" mode="$2" f
  for f in .cargo/config.toml src/common.rs src/bin/peer_tokio_http.rs src/bin/peer_tokio_echo.rs; do
    sync_file "$here/tokio_net/$f" "$dst/$f" || return 1
  done
  if [[ $mode == with_hyper ]]; then
    sync_file "$here/tokio_net/Cargo.toml" "$dst/Cargo.toml" || return 1
    sync_file "$here/tokio_net/src/bin/$hyper_bin.rs" "$dst/src/bin/$hyper_bin.rs" || return 1
  else
    # Same manifest minus the hyper dependency; no hyper binary.
    grep -v '^hyper *=' "$here/tokio_net/Cargo.toml" >"$dst/Cargo.toml.new" || return 1
    if cmp -s "$dst/Cargo.toml.new" "$dst/Cargo.toml"; then
      rm -f "$dst/Cargo.toml.new"
    else
      mv -f "$dst/Cargo.toml.new" "$dst/Cargo.toml"
    fi
    rm -f "$dst/src/bin/$hyper_bin.rs"
  fi
}

# ---- build ----------------------------------------------------------------
# build_bin SRCDIR TARGETDIR BIN: build one binary, copy it to OUTDIR.
build_bin() {
  local src="$1" target="$2" bin="$3" cargo_bin
  cargo_bin="$(find_cargo)"
  [[ -n "$cargo_bin" ]] || { warn "no cargo"; return 1; }
  # Functions run from an `if` have errexit off, hence the explicit returns.
  (
    cd "$src" || exit 1
    # rustc/rustup proxies sit beside cargo when cargo is not on PATH.
    PATH="$(dirname "$cargo_bin"):$PATH"
    CARGO_TARGET_DIR="$target" "$cargo_bin" build --release --offline --quiet -j2 --bin "$bin"
  ) || return 1
  cp -p "$target/release/$bin" "$out/$bin.tmp" || return 1
  mv -f "$out/$bin.tmp" "$out/$bin"
}

status=()
ok() { status+=("$1 ok"); }
failed() { # BIN REASON
  warn "$1 failed to build ($2); $out/$1 not produced"
  rm -f "$out/$1"
  status+=("$1 FAILED")
}

full_src="$out/tokio_net-src" full_target="$out/tokio_net-target"
lean_src="$out/tokio_net-src-nohyper" lean_target="$out/tokio_net-target-nohyper"

if compgen -G "$registry/hyper-0.14.*" >/dev/null && sync_src "$full_src" with_hyper; then
  retry=()
  for b in "${tokio_bins[@]}"; do
    if build_bin "$full_src" "$full_target" "$b"; then ok "$b"; else retry+=("$b"); fi
  done
  if build_bin "$full_src" "$full_target" "$hyper_bin"; then ok "$hyper_bin"; else
    failed "$hyper_bin" "see the cargo errors above"
  fi
else
  failed "$hyper_bin" "no hyper 0.14 sources in $registry (librust-hyper-dev)"
  retry=("${tokio_bins[@]}")
fi

# Tokio peers that failed with hyper in the manifest: once more without it.
if ((${#retry[@]})); then
  if sync_src "$lean_src" no_hyper; then
    for b in "${retry[@]}"; do
      if build_bin "$lean_src" "$lean_target" "$b"; then ok "$b"; else
        failed "$b" "see the cargo errors above"
      fi
    done
  else
    for b in "${retry[@]}"; do failed "$b" "cannot copy sources to $lean_src"; done
  fi
fi

echo "build_tokio_net: ${status[*]} -> $out" >&2
exit 0
