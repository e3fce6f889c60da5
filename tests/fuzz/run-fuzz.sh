#!/bin/sh
# run-fuzz.sh DIR SECONDS - builds the ONNX importer fuzzer with clang into
# DIR and runs it for SECONDS on a copy of the seed corpus.  Exits non-zero
# when the fuzzer finds a crash (the reproducer is left in DIR).
set -eu
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
dir=$1
secs=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CC:-}
if [ -z "$cc" ]; then
  for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
  done
fi
[ -n "$cc" ] || { echo "run-fuzz.sh: clang not found" >&2; exit 2; }
cmake -S "$src" -B "$dir" -DDLCC_FUZZ=ON -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" --target fuzz_import -j2
mkdir -p "$dir/fuzz-corpus" "$dir/fuzz-artifacts"
cp "$src"/tests/fuzz/corpus/* "$dir/fuzz-corpus/"
cd "$dir"
./bin/fuzz_import -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 -artifact_prefix=fuzz-artifacts/ \
  fuzz-corpus
