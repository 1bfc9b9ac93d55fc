#!/usr/bin/env bash
# spindle's developer driver: installs what the project needs (Debian
# packages, only when missing), configures, builds and runs. The build
# configurations are CMakePresets.json's; this script only picks them.
#
#   bash tools/dev.sh test            build + run the whole test suite: a
#                                     clang build that checks the lock
#                                     annotations (-Wthread-safety -Werror,
#                                     compiled, not run), the
#                                     normal build, ThreadSanitizer and
#                                     AddressSanitizer+UBSan builds, and an
#                                     AArch64 cross build whose unit,
#                                     conformance and model layers run under
#                                     qemu-user
#   bash tools/dev.sh bench [--quick] build Release + the peers (Go, Tokio,
#                                     Boost.Fiber, oneTBB, raw epoll C,
#                                     hyper) and print the task comparison
#                                     table, then the server table
#   bash tools/dev.sh setup           only install the dependencies
#   bash tools/dev.sh build [MODE]    MODE: a configure preset of
#                                     CMakePresets.json: test (default),
#                                     tsa, tsan, asan, aarch64, release, debug
#   bash tools/dev.sh micro           Google Benchmark microbenchmarks
#   bash tools/dev.sh soak [MINUTES]  run the stress, perturbation, random-
#                                     program and fault suites again and
#                                     again under TSan and ASan (default 30
#                                     minutes); prints each failure's seed
#
# Environment: SPINDLE_TEST_MODES="tsa test tsan asan aarch64" picks the test
# builds; SPINDLE_STRESS_SCALE scales the stress tests (default 1); JOBS
# caps build and test parallelism (default: the CPU count).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc)}"

BUILD_PACKAGES=(libboost-context1.81-dev libconcurrentqueue-dev libgtest-dev libbenchmark-dev
                cmake ninja-build g++ gcc pkg-config spin python3 clang-format-14 wrk)
# The aarch64 mode: a cross compiler, the arm64 builds of the libraries it
# links (Debian multiarch, /usr/lib/aarch64-linux-gnu) and qemu-user to run
# the tests. libconcurrentqueue-dev is header-only and serves both.
AARCH64_PACKAGES=(g++-aarch64-linux-gnu qemu-user libboost-context1.81-dev:arm64
                  libgtest-dev:arm64)
# The tsa mode: clang, for its thread-safety analysis.
TSA_PACKAGES=(clang-14)

log() { printf '\n== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "dev.sh: need root to run: $*" >&2; return 1; fi
}

# Installs the named Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing: ${missing[*]}"
  # The arm64 packages need arm64 enabled as a foreign architecture first.
  if [[ " ${missing[*]}" == *":arm64"* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64
  then
    as_root dpkg --add-architecture arm64
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # --no-remove: an arm64 library whose amd64 twin is at another version
  # must upgrade the twin, never remove it.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    --no-remove "${missing[@]}" >/dev/null
}

# Installs what building and testing MODEs need.
ensure_mode_packages() {
  local pkgs=("${BUILD_PACKAGES[@]}")
  for mode in "$@"; do
    if [ "$mode" = aarch64 ]; then pkgs+=("${AARCH64_PACKAGES[@]}"); fi
    if [ "$mode" = tsa ]; then pkgs+=("${TSA_PACKAGES[@]}"); fi
  done
  ensure_packages "${pkgs[@]}"
}

build_dir() { echo "$ROOT/build/$1"; }

# A mode is a configure preset of CMakePresets.json (binary dir build/MODE),
# with a build preset and, for the test modes, a test preset of that name.
check_mode() {
  if ! cmake --list-presets=configure | grep -qx "  \"$1\""; then
    echo "dev.sh: unknown build mode '$1' (see cmake --list-presets)" >&2; exit 2
  fi
}

configure_and_build() {
  local mode="$1"
  check_mode "$mode"
  log "configure + build: $mode ($(build_dir "$mode"))"
  cmake --preset "$mode" >/dev/null
  cmake --build --preset "$mode" -j "$JOBS"
}

# run_tests MODE [ctest args]: the test preset MODE (its filter, and the
# sanitizer options and suppressions it puts in the environment). A mode
# without a test preset (tsa) is checked by compiling it.
run_tests() {
  local mode="$1"
  shift
  if ! ctest --list-presets 2>/dev/null | grep -qx "  \"$mode\""; then
    log "tests: $mode is checked by its build, which passed"
    return 0
  fi
  log "tests: $mode"
  ctest --preset "$mode" -j "$JOBS" "$@"
}

cmd="${1:-test}"
shift || true
case "$cmd" in
  setup)
    ensure_mode_packages ${SPINDLE_TEST_MODES:-tsa test tsan asan aarch64}
    ;;
  build)
    ensure_mode_packages "${1:-test}"
    configure_and_build "${1:-test}"
    ;;
  test)
    ensure_mode_packages ${SPINDLE_TEST_MODES:-tsa test tsan asan aarch64}
    start=$(date +%s)
    for mode in ${SPINDLE_TEST_MODES:-tsa test tsan asan aarch64}; do
      configure_and_build "$mode"
      run_tests "$mode"
    done
    log "all test builds passed in $(( $(date +%s) - start )) s"
    ;;
  micro)
    ensure_packages "${BUILD_PACKAGES[@]}"
    configure_and_build release
    "$(build_dir release)/bench/spindle_bench" --benchmark_repetitions="${REPS:-5}" \
      --benchmark_report_aggregates_only=true "$@"
    ;;
  bench)
    ensure_packages "${BUILD_PACKAGES[@]}" python3
    configure_and_build release
    peers="$(build_dir peers)"
    mkdir -p "$peers"
    log "building peers (Go, Tokio, Boost.Fiber, oneTBB) into $peers"
    bash bench/peers/build_go_tokio.sh "$peers" || echo "dev.sh: Go/Tokio peers did not build" >&2
    bash bench/peers/build_cpp_peers.sh "$peers" || echo "dev.sh: C++ peers did not build" >&2
    out="$(build_dir release)/compare"
    python3 bench/compare/compare.py --baseline spindle \
      --runtime spindle="$(build_dir release)/bench/spindle_workloads" \
      --runtime go="$peers/peer_go" --runtime tokio="$peers/peer_tokio" \
      --runtime boost_fiber="$peers/peer_boost_fiber" --runtime tbb="$peers/peer_tbb" \
      --out-dir "$out" "$@"
    # The server table: spindle's tools/net programs against the raw epoll C
    # server, Tokio, hyper and Go (bench/compare/servers.py).
    bash bench/peers/build_net_peers.sh "$peers" || echo "dev.sh: C/Go server peers did not build" >&2
    bash bench/peers/build_tokio_net.sh "$peers" || echo "dev.sh: Tokio server peers did not build" >&2
    quick=()
    if [[ " $* " == *" --quick "* ]]; then quick=(--quick); fi
    python3 bench/compare/servers.py --peers-dir "$peers" \
      --spindle-dir "$(build_dir release)/tools/net" --out-dir "$out" "${quick[@]}" ||
      echo "dev.sh: the server comparison failed" >&2
    ;;
  soak)
    ensure_packages "${BUILD_PACKAGES[@]}"
    minutes="${1:-30}"
    end=$(( $(date +%s) + minutes * 60 ))
    logs="$ROOT/build/soak"
    mkdir -p "$logs"
    for mode in tsan asan; do configure_and_build "$mode"; done
    round=0 failed=0
    while [ "$(date +%s)" -lt "$end" ]; do
      for mode in tsan asan; do
        round=$((round + 1))
        log="$logs/round$round-$mode.log"
        # More seeds and programs per round than the test command runs;
        # every failure names its seed (perturbation, random programs) or
        # its fault site and call number.
        if SPINDLE_PERTURB_SEEDS=200 SPINDLE_RANDOM_PROGRAMS=400 SPINDLE_STRESS_SCALE=2 \
           run_tests "$mode" -L 'stress|model' >"$log" 2>&1; then
          echo "soak round $round ($mode): passed"
        else
          failed=$((failed + 1))
          echo "soak round $round ($mode): FAILED, log $log"
          grep -E "seed=|HANG|FAILED|ERROR: |WARNING: ThreadSanitizer" "$log" | head -20
        fi
        [ "$(date +%s)" -lt "$end" ] || break
      done
    done
    log "soak: $round rounds in $minutes min, $failed failed (logs in $logs)"
    [ "$failed" -eq 0 ]
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d'
    exit 2
    ;;
esac
