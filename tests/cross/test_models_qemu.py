#!/usr/bin/env python3
"""Real models cross-compiled for another machine, run under qemu-user.

For each model (tests/models/export_models.py, cached in --cache): compile
with `dlcc --target=T`, write the inputs as .npy, run the target's dlcc-run
under the emulator (--run-prefix, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu")
and compare every output with ONNX Runtime on the host within 1e-4 absolute.
One size per model keeps the emulated run short.

Usage: test_models_qemu.py --dlcc PATH --dlcc-run TARGET_DLCC_RUN
         --target T --run-prefix "..." [--flags "..."] [NAME ...]
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
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import export_models  # noqa: E402
from test_real_models import ATOL, SIZES, inputs_for  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", required=True)
    ap.add_argument("--dlcc-run", required=True, help="dlcc-run built for the target")
    ap.add_argument("--target", required=True)
    ap.add_argument("--run-prefix", default="")
    ap.add_argument("--flags", default="")
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "test-models"))
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("models", nargs="*", default=["resnet18", "bert"])
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    rng = np.random.default_rng(0)
    failed = checks = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models:
            path = os.path.join(a.cache, name + ".onnx")
            if not os.path.exists(path):
                export_models.export(name, a.cache)
            so = os.path.join(tmp, name + ".so")
            cmd = [a.dlcc, path, "-o", so, "--target=" + a.target] + shlex.split(a.flags)
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                checks += 1
                failed += 1
                print("FAIL %s: dlcc exited %d: %s" % (name, p.returncode, p.stderr.strip()[:2000]))
                continue
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            batch, seq = SIZES[name][0]
            xs = inputs_for(name, batch, seq, rng)
            want = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})
            out = os.path.join(tmp, name + ".out")
            os.makedirs(out)
            run = shlex.split(a.run_prefix) + [a.dlcc_run, so, "--output-dir", out, "--npy"]
            for i, x in zip(sess.get_inputs(), xs):
                f = os.path.join(tmp, "%s.%s.npy" % (name, i.name))
                np.save(f, x)
                run += ["--input", "%s=%s" % (i.name, f)]
            try:
                p = subprocess.run(run, capture_output=True, text=True, timeout=a.timeout)
            except subprocess.TimeoutExpired:
                checks += 1
                failed += 1
                print("FAIL %s: timed out after %d s" % (name, a.timeout))
                continue
            if p.returncode != 0:
                checks += 1
                failed += 1
                print("FAIL %s: dlcc-run exited %d: %s" % (name, p.returncode,
                                                         (p.stderr + p.stdout).strip()[:2000]))
                continue
            for k, w in enumerate(want):
                checks += 1
                g = np.load(os.path.join(out, "output_%d.npy" % k))
                if g.shape != w.shape:
                    print("FAIL %s output %d: shape %s, want %s" % (name, k, g.shape, w.shape))
                    failed += 1
                    continue
                err = float(np.max(np.abs(g.astype(np.float64) - w))) if w.size else 0.0
                ok = err <= ATOL
                print("%s %s --target=%s batch=%d seq=%d output %d %s: max abs err %.2e" % (
                    "ok  " if ok else "FAIL", name, a.target, batch, seq, k, list(w.shape), err))
                failed += 0 if ok else 1
    print("%d passed, %d failed" % (checks - failed, failed))
    return 1 if failed or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
