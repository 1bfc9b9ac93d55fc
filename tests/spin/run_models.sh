#!/usr/bin/env bash
# Exhaustive SPIN checks of spindle's concurrency protocols (README.md here).
#
#   bash tests/spin/run_models.sh            every model and variant
#   bash tests/spin/run_models.sh --list     list models and variants
#   bash tests/spin/run_models.sh MODEL...   only those models
#
# For each variant: spin -a [flags] MODEL.pml; cc pan.c; ./pan, in a fresh
# temporary directory. A "pass" variant must report errors: 0 with the
# search complete (no depth or memory truncation); a "fail" variant (a
# planted bug, or a model of a real bug in today's C++) must report
# errors > 0. Exits non-zero on any other outcome.
# Environment: SPIN (default spin), CC (default gcc, else cc), SPIN_MEMLIM
# (MB, default 2048).
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
spin_bin="${SPIN:-spin}"
cc_bin="${CC:-}"
if [[ -z "$cc_bin" ]]; then
  if command -v gcc >/dev/null 2>&1; then cc_bin=gcc; else cc_bin=cc; fi
fi
memlim="${SPIN_MEMLIM:-2048}"

# model | kind | spin -D flags | pan options
#   model    the model as written: must verify (errors: 0, search complete)
#   planted  a planted bug: must be caught (errors > 0)
#   probe    a change that must NOT break the protocol (fences the model
#            shows redundant, a proposed fix): must verify
#   bug      the C++ as it is today where a model found a real bug: must
#            fail (keep it as a planted bug once the C++ is fixed)
# Every model compiles pan.c with -O2 -DSAFETY -DCOLLAPSE -DMEMLIM (exhaustive,
# no bitstate hashing anywhere).
variants() {
  cat <<'EOF'
task_word|model||-m10000 -w20
task_word|planted|-DPLANT_RELEASE_NO_REQUEUE|-m10000 -w20
task_word|planted|-DPLANT_RELEASE_BEFORE_SWITCH|-m10000 -w20
task_word|planted|-DPLANT_NOTIFY_RUNNING_SUBMITS|-m10000 -w20
task_word|planted|-DPLANT_SKIP_SUSPEND_IF_FIRED|-m10000 -w20
future_publish|model||-m10000 -w22
future_publish|planted|-DPLANT_OLD_CLAIM|-m10000 -w22
future_publish|planted|-DPLANT_NO_ABANDON|-m10000 -w22
future_publish|planted|-DPLANT_PUBLISH_NO_FIRE|-m10000 -w22
future_publish|planted|-DPLANT_LINK_NO_STATUS_CHECK|-m10000 -w22
future_publish|bug|-DCHECK_SETTABLE=1|-m10000 -w22
future_publish|probe|-DCHECK_SETTABLE=2|-m10000 -w22
run_queue|model||-m10000 -w25
run_queue|planted|-DPLANT_PLAIN_TAKE|-m10000 -w22
run_queue|planted|-DPLANT_PUSH_CHECKS_REAL|-m10000 -w22
run_queue|planted|-DPLANT_RECLAIM_IGNORES_STEALERS|-m10000 -w22
run_queue|planted|-DPLANT_RECLAIM_NO_HEAD_RECHECK|-m10000 -w22
idle_park|model||-m100000 -w23
idle_park|planted|-DPLANT_NO_RECHECK|-m100000 -w22
idle_park|planted|-DPLANT_NO_PERMIT|-m100000 -w22
idle_park|planted|-DPLANT_NOTIFY_NO_FENCE|-m100000 -w22
idle_park|probe|-DRELAXED_LEN|-m100000 -w22
idle_park|probe|-DNO_NOTIFY_FENCE -DNO_PARK_FENCE|-m100000 -w23
spawn_shutdown|model||-m10000 -w20
spawn_shutdown|planted|-DPLANT_NO_RECHECK|-m10000 -w20
spawn_shutdown|planted|-DPLANT_SHARD_BY_SHARD|-m10000 -w20
spawn_shutdown|planted|-DPLANT_RACY_NO_FENCE|-m10000 -w20
spawn_shutdown|planted|-DPLANT_RACY_RELEASE_CLOSE|-m10000 -w20
spawn_shutdown|probe|-DRACY_READ -DNO_CHILD|-m10000 -w20
spawn_shutdown|probe|-DNO_SPAWN_FENCE -DNO_SHUTDOWN_FENCE|-m10000 -w20
EOF
}

models() { variants | cut -d'|' -f1 | uniq; }

if [[ "${1:-}" == "--list" ]]; then
  variants | while IFS='|' read -r m kind flags _; do
    printf '%-16s %-8s %s\n' "$m" "$kind" "${flags:-(as written)}"
  done
  exit 0
fi

selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then
  mapfile -t selected < <(models)
fi
for m in "${selected[@]}"; do
  if ! models | grep -qx "$m"; then
    echo "run_models.sh: unknown model '$m' (try --list)" >&2
    exit 2
  fi
done
if ! command -v "$spin_bin" >/dev/null 2>&1; then
  echo "run_models.sh: '$spin_bin' not found (apt-get install spin)" >&2
  exit 2
fi
if ! command -v "$cc_bin" >/dev/null 2>&1; then
  echo "run_models.sh: C compiler '$cc_bin' not found" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/spindle-spin.XXXXXX")"
trap 'rm -rf "$work"' EXIT
bad=0
total_start=$(date +%s.%N)

for m in "${selected[@]}"; do
  while IFS='|' read -r vm kind flags panopts; do
    [[ "$vm" == "$m" ]] || continue
    expect=pass
    [[ "$kind" == planted || "$kind" == bug ]] && expect=fail
    dir="$(mktemp -d "$work/$m.XXXX")"
    label="$kind ${flags//-D/}"
    [[ -z "$flags" ]] && label="as written"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    if ! (cd "$dir" && "$spin_bin" -a $flags "$here/$m.pml" >spin.log 2>&1); then
      printf '%-15s %-42s UNEXPECTED: spin -a failed\n' "$m" "$label"
      sed 's/^/    /' "$dir/spin.log" | head -20
      bad=1
      continue
    fi
    if ! (cd "$dir" && "$cc_bin" -O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM="$memlim" -o pan pan.c \
            >cc.log 2>&1); then
      printf '%-15s %-42s UNEXPECTED: compiling pan.c failed\n' "$m" "$label"
      sed 's/^/    /' "$dir/cc.log" | head -20
      bad=1
      continue
    fi
    # shellcheck disable=SC2086
    (cd "$dir" && ./pan $panopts >pan.log 2>&1)
    end=$(date +%s.%N)
    log="$dir/pan.log"
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
    states=$(awk '/states, stored/ {print $1; exit}' "$log")
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
    truncated=""
    if grep -q "max search depth too small" "$log"; then truncated="depth limit hit"; fi
    if grep -q "reached -DMEMLIM bound\|out of memory" "$log"; then truncated="memory limit hit"; fi
    what=$(grep -m1 -E "^pan:1: |assertion violated|invalid end state" "$log" | sed 's/^pan:1: //' |
           sed 's/ (at depth [0-9]*)//' | cut -c1-60)
    verdict="ok"
    if [[ -z "$errors" ]]; then
      verdict="UNEXPECTED: no result from pan"
    elif [[ "$expect" == "pass" ]]; then
      if [[ "$errors" != "0" ]]; then
        verdict="UNEXPECTED: $errors error(s): $what"
      elif [[ -n "$truncated" ]]; then
        verdict="UNEXPECTED: incomplete search ($truncated)"
      fi
    else
      if [[ "$errors" == "0" ]]; then
        verdict="UNEXPECTED: planted bug not caught"
      fi
    fi
    note=""
    [[ "$expect" == "fail" && "$verdict" == "ok" ]] && note="caught: $what"
    printf '%-15s %-42s expect=%-4s errors=%-3s states=%-9s %6ss  %s %s\n' \
      "$m" "$label" "$expect" "${errors:-?}" "${states:-?}" "$secs" "$verdict" "$note"
    if [[ "$verdict" != "ok" ]]; then
      bad=1
      tail -25 "$log" | sed 's/^/    /'
    fi
    rm -rf "$dir"
  done < <(variants)
done

total_end=$(date +%s.%N)
total=$(awk -v a="$total_start" -v b="$total_end" 'BEGIN {printf "%.1f", b - a}')
if [[ $bad -ne 0 ]]; then
  echo "spin models: UNEXPECTED OUTCOMES (${total}s)"
  exit 1
fi
echo "spin models: all as expected (${total}s)"
