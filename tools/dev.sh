#!/usr/bin/env bash
# spindle's developer driver: installs what the project needs (Debian
# packages, only when missing), configures, builds and runs.
#
#   bash tools/dev.sh test            build + run the whole test suite: the
#                                     normal build, ThreadSanitizer and
#                                     AddressSanitizer+UBSan builds
#   bash tools/dev.sh bench [--quick] build Release + the peers (Go, Tokio,
#                                     Boost.Fiber, oneTBB) and print the
#                                     comparison table
#   bash tools/dev.sh setup           only install the dependencies
#   bash tools/dev.sh build [MODE]    MODE: test (default), tsan, asan, release
#   bash tools/dev.sh micro           Google Benchmark microbenchmarks
#   bash tools/dev.sh soak [MINUTES]  run the stress, perturbation, random-
#                                     program and fault suites again and
#                                     again under TSan and ASan (default 30
#                                     minutes); prints each failure's seed
#
# Environment: SPINDLE_TEST_MODES="test tsan asan" picks the test builds;
# SPINDLE_STRESS_SCALE scales the stress tests (default 1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc)}"

BUILD_PACKAGES=(libboost-context1.81-dev libconcurrentqueue-dev libgtest-dev libbenchmark-dev
                cmake ninja-build g++ gcc pkg-config spin)

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
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

build_dir() { echo "$ROOT/build/$1"; }

configure_and_build() {
  local mode="$1" dir; dir="$(build_dir "$mode")"
  local args=(-G Ninja -S "$ROOT" -B "$dir")
  case "$mode" in
    test)    args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINDLE_BUILD_BENCHMARKS=OFF) ;;
    tsan)    args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINDLE_SANITIZER=thread
                    -DSPINDLE_BUILD_BENCHMARKS=OFF -DSPINDLE_INSTALL=OFF) ;;
    asan)    args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DSPINDLE_SANITIZER=address;undefined"
                    -DSPINDLE_BUILD_BENCHMARKS=OFF -DSPINDLE_INSTALL=OFF) ;;
    release) args+=(-DCMAKE_BUILD_TYPE=Release -DSPINDLE_BUILD_TESTS=OFF
                    -DSPINDLE_BUILD_BENCHMARKS=ON) ;;
    *) echo "dev.sh: unknown build mode '$mode'" >&2; exit 2 ;;
  esac
  log "configure + build: $mode ($dir)"
  cmake "${args[@]}" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

run_tests() {
  local mode="$1" dir; dir="$(build_dir "$mode")"
  log "tests: $mode"
  local env_vars=()
  case "$mode" in
    tsan) env_vars=(TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tools/tsan.supp") ;;
    asan) env_vars=(ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0"
                    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1") ;;
  esac
  shift
  env "${env_vars[@]}" ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 600 "$@"
}

cmd="${1:-test}"
shift || true
case "$cmd" in
  setup)
    ensure_packages "${BUILD_PACKAGES[@]}"
    ;;
  build)
    ensure_packages "${BUILD_PACKAGES[@]}"
    configure_and_build "${1:-test}"
    ;;
  test)
    ensure_packages "${BUILD_PACKAGES[@]}"
    start=$(date +%s)
    for mode in ${SPINDLE_TEST_MODES:-test tsan asan}; do
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
    sed -n '2,25p' "$0"
    exit 2
    ;;
esac
