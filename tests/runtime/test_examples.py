"""Builds and runs the examples against a compiled digits module and checks
every result against onnxruntime.

Usage: test_examples.py --dlcc DLCC --dlcc-run DLCC_RUN --runtime-lib LIB.so
                        --build-dir BUILD --work DIR
Covers: dlcc-run (embedded and sidecar weights), examples/link_direct (the
generated header, linked directly), examples/load_runtime (the runtime
library) and examples/digits/run.sh.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ap = argparse.ArgumentParser()
for a in ("--dlcc", "--dlcc-run", "--runtime-lib", "--build-dir", "--work"):
    ap.add_argument(a, required=True)
args = ap.parse_args()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EX = os.path.join(ROOT, "examples")
MODEL = os.path.join(EX, "digits", "digits.onnx")
IMAGES = sorted(glob.glob(os.path.join(EX, "digits", "images", "*.npy")))
WORK = args.work
CC = os.environ.get("CC", "cc")
# A sanitized build's runtime library must be linked with the sanitizers.
SAN = os.environ.get("DLCC_EXAMPLE_CFLAGS", "").split()
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                       **kw)
    if r.returncode != 0:
        print("$ " + " ".join(cmd) + "\n" + r.stdout + r.stderr)
    return r


def compiler_warnings(stderr):
    """Warnings about the example's own code (not the toolchain's notes about
    its libraries, e.g. libasan's link-time warning)."""
    return [l for l in stderr.splitlines()
            if "warning" in l and "libasan" not in l]


def close(a, b):
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-6)


sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
ref = {img: sess.run(None, {"image": np.load(img)})[0] for img in IMAGES}
check(len(IMAGES) == 10, "ten example images")

# compile
so = os.path.join(WORK, "digits.so")
r = sh([args.dlcc, MODEL, "-o", so])
check(r.returncode == 0 and os.path.exists(os.path.join(WORK, "digits.h")),
      "dlcc compiles digits.onnx")
if r.returncode != 0:
    sys.exit(1)

# dlcc-run, outputs written as TensorProto and .npy
for img in IMAGES:
    out = os.path.join(WORK, "run_" + os.path.basename(img))
    r = sh([args.dlcc_run, so, "--input", "image=" + img, "--output-dir", out,
            "--npy"])
    check(r.returncode == 0, "dlcc-run " + img)
    if r.returncode == 0:
        t = onnx.TensorProto()
        with open(os.path.join(out, "output_0.pb"), "rb") as f:
            t.ParseFromString(f.read())
        got = numpy_helper.to_array(t)
        check(t.name == "probs" and close(got, ref[img]),
              "dlcc-run %s: %s vs %s" % (img, got, ref[img]))
        check(np.array_equal(np.load(os.path.join(out, "output_0.npy")), got),
              "dlcc-run .npy == .pb for " + img)
r = sh([args.dlcc_run, so, "--input", "image=" + IMAGES[0], "--bench", "20"])
check(r.returncode == 0 and re.search(r"^median_ms=\S+ min_ms=\S+ mean_ms=\S+ "
                                      r"runs=20$", r.stdout, re.M),
      "dlcc-run --bench on digits")

# weights in a sidecar file, mapped by the runtime
side_dir = os.path.join(WORK, "sidecar")
os.makedirs(side_dir)
side = os.path.join(side_dir, "digits.so")
r = sh([args.dlcc, MODEL, "-o", side, "--weights-sidecar-threshold=0"])
check(r.returncode == 0 and os.path.exists(side + ".weights"),
      "dlcc writes a sidecar with --weights-sidecar-threshold=0")
if r.returncode == 0 and os.path.exists(side + ".weights"):
    img = IMAGES[1]
    r = sh([args.dlcc_run, side, "--input", "image=" + img, "--output-dir",
            os.path.join(side_dir, "out"), "--npy"])
    check(r.returncode == 0 and close(
        np.load(os.path.join(side_dir, "out", "output_0.npy")), ref[img]),
        "sidecar module matches onnxruntime")
    os.rename(side + ".weights", side + ".moved")
    r = subprocess.run([args.dlcc_run, side, "--input", "image=" + img],
                       capture_output=True, text=True)
    check(r.returncode == 1 and ".weights" in r.stderr,
          "missing sidecar is an error: " + r.stderr)

# examples/link_direct: the generated header, the module linked directly
exe = os.path.join(WORK, "link_direct")
r = sh([CC] + SAN + ["-std=c11", "-O2", "-Wall", "-Wextra", "-I", WORK,
        os.path.join(EX, "link_direct", "main.c"), "-L", WORK, "-l:digits.so",
        "-Wl,-rpath," + WORK, "-o", exe])
check(r.returncode == 0 and not compiler_warnings(r.stderr),
      "link_direct builds cleanly: " + r.stderr)
if r.returncode == 0:
    r = sh([exe] + IMAGES)
    check(r.returncode == 0, "link_direct runs")
    lines = r.stdout.splitlines()
    check(len(lines) == len(IMAGES), "link_direct prints one line per image")
    for img, line in zip(IMAGES, lines):
        probs = np.array([float(v) for v in line.split("probs:")[1].split()],
                         np.float32).reshape(1, 10)
        pred = int(line.split(" -> ")[1].split()[0])
        check(close(probs, ref[img]) and pred == int(ref[img].argmax()),
              "link_direct %s: %s" % (img, line))

# examples/load_runtime: any module through the runtime library
exe = os.path.join(WORK, "load_runtime")
libdir = os.path.dirname(os.path.abspath(args.runtime_lib))
r = sh([CC] + SAN + ["-std=c11", "-O2", "-Wall", "-Wextra", "-I",
        os.path.join(ROOT, "include"), os.path.join(EX, "load_runtime",
                                                    "main.c"),
        args.runtime_lib, "-Wl,-rpath," + libdir, "-o", exe])
check(r.returncode == 0 and not compiler_warnings(r.stderr),
      "load_runtime builds cleanly: " + r.stderr)
if r.returncode == 0:
    r = sh([exe, so])
    check(r.returncode == 0 and "image float32[1,1,8,8]" in r.stdout and
          "probs float32[1,10]" in r.stdout, "load_runtime signature: " +
          r.stdout)
    for img in IMAGES:
        r = sh([exe, so, img])
        m = re.search(r"^probs float32\[1,10\]:(.*)$", r.stdout, re.M)
        check(r.returncode == 0 and m is not None, "load_runtime " + img)
        if m:
            probs = np.array([float(v) for v in m.group(1).split()],
                             np.float32).reshape(1, 10)
            check(close(probs, ref[img]), "load_runtime %s values" % img)
    r = subprocess.run([exe, so, os.path.join(WORK, "missing.npy")],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "missing.npy" in r.stderr,
          "load_runtime reports a missing file")

# examples/digits/run.sh
r = sh(["bash", os.path.join(EX, "digits", "run.sh"), args.build_dir])
check(r.returncode == 0, "run.sh")
preds = re.findall(r"^image (\S+) -> predicted (\d) \(p=[0-9.]+\)$",
                   r.stdout, re.M)
check(len(preds) == len(IMAGES), "run.sh prints a line per image")
for name, pred in preds:
    img = os.path.join(EX, "digits", "images", name)
    check(int(pred) == int(ref[img].argmax()), "run.sh prediction " + name)

print("examples: %d failures" % len(failures))
sys.exit(1 if failures else 0)
