#!/bin/sh
# Apple targets: a model compiled with --target=apple-m1 must be a Mach-O
# arm64 dylib that exports _dlcc_module_v1 and the prefixed entry points (and
# nothing else), and loads libSystem.
#
#   check_macho.sh DLCC MODEL.onnx WORKDIR
set -eu
dlcc=$1 model=$2 work=$3
objdump=$(command -v llvm-objdump-19 || command -v llvm-objdump || true)
nm=$(command -v llvm-nm-19 || command -v llvm-nm || true)
if [ -z "$objdump" ] || [ -z "$nm" ]; then
  echo "check_macho.sh: llvm-objdump/llvm-nm not installed: skipped"
  exit 77
fi
mkdir -p "$work"
fail=0
for t in apple-m1 apple-m4; do
  out=$work/mach_$(echo $t | tr - _).dylib
  rm -f "$out"
  "$dlcc" "$model" --target=$t -o "$out"
  hdr=$("$objdump" --macho --private-headers "$out")
  echo "$hdr" | grep -q "MH_MAGIC_64 *ARM64 .*DYLIB" || { echo "FAIL $t: not a Mach-O arm64 dylib"; fail=1; }
  "$objdump" --macho --dylibs-used "$out" | grep -q /usr/lib/libSystem.B.dylib ||
    { echo "FAIL $t: does not load libSystem"; fail=1; }
  p=$(basename "$out" .dylib)
  exports=$("$nm" --extern-only --defined-only --just-symbol-name "$out" | sort | tr '\n' ' ')
  want=$(printf "%s\n" _${p}_bind _${p}_output_shape _${p}_run _${p}_workspace_size _dlcc_module_v1 | sort | tr "\n" " ")
  if [ "$exports" != "$want" ]; then
    echo "FAIL $t: exports '$exports', want '$want'"
    fail=1
  else
    echo "ok   $t: Mach-O arm64 dylib exporting $exports"
  fi
done
exit $fail
