#!/usr/bin/env bash
# Build airparadis/_fastpath.c with AddressSanitizer and UndefinedBehaviorSanitizer into a
# temporary copy of the airparadis package, then run the tests that hold the compiled path to
# the pure one against that build. Any memory error or undefined behaviour aborts the run.
#
#   scripts/sanitize_fastpath.sh [PYTHON] [extra pytest arguments...]
#
# Needs gcc (or CC) with libasan/libubsan and the Python headers. Python itself is not
# instrumented, so leaks are not reported (CPython keeps memory until exit by design);
# PYTHONMALLOC=malloc sends every allocation through the sanitizer's allocator.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${1:-${PYTHON:-python3}}"
shift || true
cc="${CC:-gcc}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
mkdir -p "$work/airparadis"
# The package as the repository has it, without any extension built in place.
cp -r "$repo/airparadis/." "$work/airparadis/"
find "$work/airparadis" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
"$cc" -shared -fPIC -g -O1 -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Wno-unused-parameter -Werror \
    -I"$include" "$repo/airparadis/_fastpath.c" -o "$work/airparadis/_fastpath$suffix" -lm

asan="$("$cc" -print-file-name=libasan.so)"
ubsan="$("$cc" -print-file-name=libubsan.so)"
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
# The sanitized copy first: pytest runs from the work dir, whose airparadis shadows the repo's.
export PYTHONPATH="$work:$repo${PYTHONPATH:+:$PYTHONPATH}"
unset AIRPARADIS_PURE_PYTHON

# A plugin that fails the run unless the tests really ran on the sanitized build.
cat >"$work/sanitized_build_check.py" <<PLUGIN
import sys


def pytest_sessionfinish(session, exitstatus):
    module = sys.modules.get("airparadis._fastpath")
    if module is None or not module.__file__.startswith("$work"):
        raise RuntimeError(f"the tests did not run on the sanitized build: {module}")
PLUGIN
cd "$work"
"$python" -c "
import airparadis._fastpath as f, sys
assert f.__file__.startswith('$work'), f.__file__
print('sanitized build:', f.__file__)
"
# --import-mode=append: pytest must not put the repository (and its own build) first.
# --capture=sys: sanitizer reports go to file descriptor 2, which must stay the terminal.
"$python" -m pytest -p no:cacheprovider -p sanitized_build_check --import-mode=append --capture=sys \
    --rootdir "$repo" -c "$repo/pyproject.toml" -q \
    "$repo/tests/training/test_text.py" "$repo/tests/server/test_fast_path.py" \
    "$repo/tests/core/test_fastpath.py" -k "not without_the_extension" "$@"
