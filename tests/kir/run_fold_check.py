#!/usr/bin/env python3
"""Checks constant folding (op lowering + kernel interpreter) against the
ONNX backend test suite.

For every node case (default-domain opset dlcc accepts), the graph inputs
become initializers holding test_data_set_0's inputs, the model is folded
by test_kir_fold, and each folded output is compared with the expected
output (rtol 1e-3, atol 1e-5 for floats, exact otherwise).

Cases dlcc rejects (unsupported ops, dtypes, attributes) are counted, not
failed.  Fails on: a wrong value or shape, an output left unfolded, a crash
or a timeout.

usage: run_fold_check.py TEST_KIR_FOLD [CASES_DIR] [-k SUBSTRING] [-v]
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

OPSET_MAX = 23
NP = {'f32': np.float32, 'f64': np.float64, 'f16': np.float16,
      'i8': np.int8, 'u8': np.uint8, 'i16': np.int16, 'u16': np.uint16,
      'i32': np.int32, 'u32': np.uint32, 'i64': np.int64, 'u64': np.uint64,
      'bool': np.bool_}


def load_tensor(path):
    t = onnx.TensorProto()
    with open(path, 'rb') as f:
        t.ParseFromString(f.read())
    return t


def prepare(case, out_model):
    """Writes the case with inputs as initializers; False to skip it."""
    m = onnx.load(os.path.join(case, 'model.onnx'))
    ver = [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')]
    if not ver or ver[0] > OPSET_MAX:
        return False
    data = os.path.join(case, 'test_data_set_0')
    if not os.path.isdir(data):
        return False
    inits = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    for k, inp in enumerate(inputs):
        p = os.path.join(data, 'input_%d.pb' % k)
        if not os.path.exists(p):
            return False
        t = load_tensor(p)
        if t.data_type == 0:
            return False  # sequences, optionals
        t.name = inp.name
        m.graph.initializer.append(t)
    del m.graph.input[:]
    onnx.save(m, out_model)
    return True


def compare(case, stdout, outdir):
    for line in stdout.strip().splitlines():
        parts = line.split()
        i, dt, shape = int(parts[0]), parts[1], [int(x) for x in parts[3:]]
        p = os.path.join(case, 'test_data_set_0', 'output_%d.pb' % i)
        if not os.path.exists(p) or dt not in NP:
            continue
        want = numpy_helper.to_array(load_tensor(p))
        got = np.fromfile(os.path.join(outdir, 'out_%d.bin' % i),
                          dtype=NP[dt]).reshape(shape)
        if got.shape != want.shape:
            return 'output %d: shape %s, expected %s' % (i, got.shape,
                                                          want.shape)
        if want.dtype.kind in 'fc':
            g64, w64 = got.astype(np.float64), want.astype(np.float64)
            if not np.allclose(g64, w64, rtol=1e-3, atol=1e-5,
                               equal_nan=True):
                return 'output %d: max abs diff %g' % (
                    i, np.nanmax(np.abs(g64 - w64)))
        elif not np.array_equal(got, want.astype(got.dtype)):
            return 'output %d: values differ' % i
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('tool')
    ap.add_argument('cases', nargs='?',
                    default='/work/shared/onnx-tests/node')
    ap.add_argument('-k', default='')
    ap.add_argument('-v', action='store_true')
    a = ap.parse_args()
    if not os.path.isdir(a.cases):
        print('no test data at %s: skipped' % a.cases)
        return 0
    ok = skipped = rejected = 0
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, 'm.onnx')
        for case in sorted(glob.glob(os.path.join(a.cases, '*', ''))):
            name = os.path.basename(case.rstrip('/'))
            if a.k not in name:
                continue
            try:
                if not prepare(case, model):
                    skipped += 1
                    continue
            except Exception:  # models onnx itself cannot load or save
                skipped += 1
                continue
            for f in glob.glob(os.path.join(tmp, 'out_*.bin')):
                os.remove(f)
            try:
                r = subprocess.run([a.tool, model, tmp], capture_output=True,
                                   text=True, timeout=60)
            except subprocess.TimeoutExpired:
                bad.append((name, 'timeout'))
                continue
            if r.returncode == 2:
                rejected += 1
                if a.v:
                    print('rejected %s: %s' % (name, r.stderr.strip()))
                continue
            if r.returncode != 0:
                bad.append((name, 'exit %d: %s' % (
                    r.returncode, r.stderr.strip()[-300:])))
                continue
            why = compare(case, r.stdout, tmp)
            if why:
                bad.append((name, why))
            else:
                ok += 1
    for name, why in bad:
        print('FAIL %s: %s' % (name, why))
    print('fold check: %d folded correctly, %d rejected by dlcc, %d skipped, '
          '%d failed' % (ok, rejected, skipped, len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
