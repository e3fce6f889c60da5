#!/usr/bin/env python3
"""Real models against ONNX Runtime.

Exports the models of export_models.py (cached in CACHE_DIR), compiles each
with dlcc, runs it through the module ABI and compares every output with ONNX
Runtime within 1e-4 absolute.  Models with symbolic dims are compiled once
and run at two different batch/sequence sizes.

Usage: test_real_models.py [--dlcc PATH] [--cache DIR] [--flags "..."] [NAME ...]
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
sys.path.insert(0, HERE)
import dlcc_py  # noqa: E402
import export_models  # noqa: E402

ATOL = 1e-4


def inputs_for(name, batch, seq, rng):
    if name in ("resnet18", "mobilenet_v2", "squeezenet1_1"):
        return [rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)]
    ids = rng.integers(0, 1000, size=(batch, seq)).astype(np.int64)
    if name == "bert":
        mask = np.ones((batch, seq), np.int64)
        mask[-1, seq // 2:] = 0
        return [ids, mask]
    return [ids]


SIZES = {"resnet18": [(1, 0), (2, 0)], "mobilenet_v2": [(1, 0), (3, 0)],
         "squeezenet1_1": [(1, 0), (2, 0)], "bert": [(2, 16), (1, 7)],
         "gpt2": [(2, 16), (3, 5)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "test-models"))
    ap.add_argument("--flags", default="")
    ap.add_argument("models", nargs="*", default=export_models.MODELS)
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    rng = np.random.default_rng(0)
    failed = 0
    checks = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models:
            path = os.path.join(a.cache, name + ".onnx")
            if not os.path.exists(path):
                export_models.export(name, a.cache)
            so = os.path.join(tmp, name + ".so")
            p = subprocess.run([a.dlcc, path, "-o", so] + shlex.split(a.flags),
                               capture_output=True, text=True)
            if p.returncode != 0:
                checks += 1
                print("FAIL %s: dlcc exited %d: %s" % (name, p.returncode, p.stderr.strip()[:2000]))
                failed += 1
                continue
            mod = dlcc_py.Module(so)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            for batch, seq in SIZES[name]:
                xs = inputs_for(name, batch, seq, rng)
                want = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
                try:
                    got = mod.run(xs)
                except dlcc_py.DlccError as e:
                    checks += 1
                    print("FAIL %s batch=%d seq=%d: %s" % (name, batch, seq, e))
                    failed += 1
                    continue
                for k, (g, w) in enumerate(zip(got, want)):
                    checks += 1
                    if g.shape != w.shape:
                        print("FAIL %s output %d: shape %s, want %s" % (name, k, g.shape, w.shape))
                        failed += 1
                        continue
                    err = float(np.max(np.abs(g.astype(np.float64) - w))) if w.size else 0.0
                    scale = float(np.max(np.abs(w))) if w.size else 0.0
                    ok = err <= ATOL
                    print("%s %s batch=%d seq=%d output %d %s: max abs err %.2e (max |ref| %.2f)" % (
                        "ok  " if ok else "FAIL", name, batch, seq, k, list(w.shape), err, scale))
                    failed += 0 if ok else 1
    print("%d passed, %d failed" % (checks - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
