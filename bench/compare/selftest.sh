#!/bin/sh
# Exercise compare.py against fake runtimes: one unsupported cell (tbb/yield,
# built in), a failed check, a hang past the timeout, a flaky crash, and a
# runtime that is "not built".  Usage: bench/compare/selftest.sh [OUT_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(mktemp -d /tmp/compare-selftest.XXXXXX)}
bin=$(mktemp -d /tmp/compare-fakes.XXXXXX)
trap 'rm -rf "$bin"' EXIT
for rt in spindle go tokio boost_fiber tbb; do
    ln -s "$here/fake_runtime.py" "$bin/fake_$rt"
done

export FAKE_BEHAVIOUR='boost_fiber:queue_mpmc=badcheck,go:sleepers:1=hang,tokio:pingpong=flaky'
rc=0; python3 "$here/compare.py" --quick --timeout 3 --out-dir "$out" \
    --runtime spindle="$bin/fake_spindle" --runtime go="$bin/fake_go" \
    --runtime tokio="$bin/fake_tokio" --runtime boost_fiber="$bin/fake_boost_fiber" \
    --runtime tbb="$bin/fake_tbb" --runtime ghost="$bin/does_not_exist" || rc=$?
python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$out/compare.svg"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out/compare.json"
echo "selftest: runner exit $rc, outputs valid, in $out"
