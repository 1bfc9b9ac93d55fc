#!/usr/bin/env bash
# Fails if a C++ source of spindle is not formatted by .clang-format.
#   bash tools/check_format.sh [--fix] [CLANG_FORMAT]
# CLANG_FORMAT defaults to clang-format-14, the version the tree is kept
# formatted with (another version formats a few constructs differently).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fix=0
if [ "${1:-}" = --fix ]; then fix=1; shift; fi
tool="${1:-clang-format-14}"
# A git checkout lists its tracked files and new ones it does not ignore; an
# unpacked tarball has no .git.
if [ -d .git ] || [ -f .git ]; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' '*.h' '*.cc')
else
  mapfile -t files < <(find . -path ./build -prune -o \
    \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \) -print | sort)
fi
if [ "$fix" -eq 1 ]; then
  exec "$tool" -i "${files[@]}"
fi
if ! "$tool" --dry-run --Werror "${files[@]}"; then
  echo "check_format: the files above are not formatted; run: bash tools/check_format.sh --fix" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
