#!/bin/sh
# Cross conformance: builds dlcc-run for ARCH with tools/cross-build, then runs
# the conformance cases of the foundation ops compiled with --target=TARGET
# under qemu-user, checked against tests/cross/expected_cross.txt (cases that
# must pass on every target).  Exit 77 (skipped) without qemu or the cross gcc.
#
#   run_cross.sh DLCC ARCH TARGET BUILD_DIR [extra dlcc flags]
set -eu
dlcc=$1 arch=$2 target=$3 bdir=$4
flags=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case $arch in
  aarch64) qemu=qemu-aarch64; sysroot=/usr/aarch64-linux-gnu; cc=aarch64-linux-gnu-gcc ;;
  armv7) qemu=qemu-arm; sysroot=/usr/arm-linux-gnueabihf; cc=arm-linux-gnueabihf-gcc ;;
  *) echo "run_cross.sh: unknown arch $arch" >&2; exit 2 ;;
esac
for t in $qemu $cc; do
  if ! command -v $t >/dev/null 2>&1; then
    echo "run_cross.sh: $t not installed: skipped"
    exit 77
  fi
done
if [ ! -x "$bdir/bin/dlcc-run" ]; then
  "$root/tools/cross-build" "$arch" "$bdir" >/dev/null
fi
set --
while read -r pat; do
  case $pat in ''|'#'*) continue ;; esac
  set -- "$@" -k "$pat"
done < "$here/cross_cases.txt"
exec "$root/.venv/bin/python" "$root/tests/conformance/run_conformance.py" \
  --dlcc "$dlcc" --dlcc-run "$bdir/bin/dlcc-run" --suites node --no-report -j 2 \
  --dlcc-flags="--target=$target $flags" --run-prefix "$qemu -L $sysroot" \
  --expected "$here/expected_cross.txt" "$@"
