#!/usr/bin/env bash
# Compiles the bundled digits classifier with dlcc and classifies each test
# image with dlcc-run:
#
#   examples/digits/run.sh [BUILD_DIR]      (default: build)
#
# prints lines like "image digit_3_label_2.npy -> predicted 2 (p=0.98)".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
dlcc="$build/bin/dlcc"
run="$build/bin/dlcc-run"
for t in "$dlcc" "$run"; do
  if [ ! -x "$t" ]; then
    echo "run.sh: $t not found; build first:" >&2
    echo "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$dlcc" "$here/digits.onnx" -o "$work/digits.so"

correct=0
total=0
for img in "$here"/images/*.npy; do
  name="$(basename "$img")"
  # dlcc-run prints "probs: float32[1,10] = p0 p1 ... p9"
  line="$("$run" "$work/digits.so" --input "image=$img" | grep '^probs:')"
  read -r pred p < <(echo "${line#*= }" | awk '{
      best = 1; for (i = 2; i <= NF; i++) if ($i + 0 > $best + 0) best = i;
      printf "%d %.2f\n", best - 1, $best }')
  echo "image $name -> predicted $pred (p=$p)"
  label="${name##*_label_}"
  label="${label%.npy}"
  total=$((total + 1))
  if [ "$pred" = "$label" ]; then correct=$((correct + 1)); fi
done
echo "$correct of $total images classified correctly"
