#!/bin/sh
# The C and LLVM backends checked against each other at the host on every
# conformance case: every case the C backend passes must pass with
# --backend=llvm too, and the LLVM run must keep tests/conformance/
# expected_pass.txt.
#
#   compare_backends.sh DLCC DLCC_RUN WORKDIR [extra runner args, e.g. -k node/]
set -eu
dlcc=$1 run=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=$root/.venv/bin/python
runner=$root/tests/conformance/run_conformance.py
mkdir -p "$work"
cpass=$work/c_backend_pass.txt
rm -f "$cpass"
echo "== C backend (cases it passes -> $cpass)"
"$py" "$runner" --dlcc "$dlcc" --dlcc-run "$run" --no-report -j 2 \
  --dlcc-flags=--backend=c --update-expected --expected "$cpass" "$@"
echo "== LLVM backend against the C backend's passes"
"$py" "$runner" --dlcc "$dlcc" --dlcc-run "$run" --no-report -j 2 \
  --dlcc-flags=--backend=llvm --expected "$cpass" "$@"
# The LLVM backend against tests/conformance/expected_pass.txt is the
# `conformance` test itself (LLVM is the default backend).
