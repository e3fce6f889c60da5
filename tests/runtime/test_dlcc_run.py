"""Tests of the dlcc-run command line against the hand-written addone module.

Usage: test_dlcc_run.py DLCC_RUN ADDONE.so SIDECAR.so WORKDIR
addone: x float32[N,4] -> y = x * w + 1 (w = 1, or the sidecar's 4 floats),
n int64[] = N.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

RUN, ADDONE, SIDECAR, WORK = sys.argv[1:5]
os.makedirs(WORK, exist_ok=True)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([RUN, *args], capture_output=True, text=True,
                          errors="replace")


def p(name):
    return os.path.join(WORK, name)


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


x = (np.arange(20, dtype=np.float32) / 4).reshape(5, 4)
np.save(p("x.npy"), x)
os.makedirs(p("in"), exist_ok=True)
with open(p("in/input_0.pb"), "wb") as f:
    f.write(numpy_helper.from_array(x, "x").SerializeToString())

# summary on stdout
r = run(ADDONE, "--input", "x=" + p("x.npy"))
check(r.returncode == 0, "summary run: " + r.stderr)
check("y: float32[5,4] = 1 1.25 1.5 1.75 2 2.25 2.5 2.75 ... (20 values)"
      in r.stdout, "summary y: " + r.stdout)
check("n: int64[] = 5" in r.stdout, "summary n: " + r.stdout)

# --input-dir (ONNX suite layout) and --output-dir with --npy
shutil.rmtree(p("out"), ignore_errors=True)
r = run(ADDONE, "--input-dir", p("in"), "--output-dir", p("out"), "--npy")
check(r.returncode == 0 and r.stdout == "", "output-dir run: " + r.stderr)
if r.returncode == 0:
    name, y = load_pb(p("out/output_0.pb"))
    check(name == "y" and np.array_equal(y, x + 1), "output_0.pb")
    name, n = load_pb(p("out/output_1.pb"))
    check(name == "n" and n.dtype == np.int64 and n.shape == () and n == 5,
          "output_1.pb")
    check(np.array_equal(np.load(p("out/output_0.npy")), x + 1),
          "output_0.npy")
    check(np.load(p("out/output_1.npy")) == 5, "output_1.npy")

# a named .pb input wins over --input-dir; --flag=value form
x2 = np.ones((2, 4), np.float32)
with open(p("x2.pb"), "wb") as f:
    f.write(numpy_helper.from_array(x2, "whatever").SerializeToString())
r = run(ADDONE, "--input-dir=" + p("in"), "--input=x=" + p("x2.pb"))
check(r.returncode == 0 and "y: float32[2,4] = 2 2 2 2 2 2 2 2" in r.stdout,
      "named pb input: " + r.stdout + r.stderr)

# --bench
r = run(ADDONE, "--input", "x=" + p("x.npy"), "--bench", "7", "--warmup",
        "2")
m = re.search(r"^median_ms=([0-9.]+) min_ms=([0-9.]+) mean_ms=([0-9.]+) "
              r"runs=7$", r.stdout, re.M)
check(r.returncode == 0 and m is not None, "bench line: " + r.stdout)
if m:
    check(float(m.group(2)) <= float(m.group(1)), "bench min <= median")

# sidecar weights: missing, then present
side = p("side.so")
shutil.copy(SIDECAR, side)
if os.path.exists(side + ".weights"):
    os.remove(side + ".weights")
r = run(side, "--input", "x=" + p("x.npy"))
check(r.returncode == 1 and r.stderr.startswith("dlcc-run: " + side +
                                                ".weights: "),
      "missing sidecar: " + r.stderr)
w = np.array([2, 0, -1, 0.5], np.float32)
w.tofile(side + ".weights")
r = run(side, "--input", "x=" + p("x.npy"), "--output-dir", p("side_out"))
check(r.returncode == 0, "sidecar run: " + r.stderr)
if r.returncode == 0:
    check(np.array_equal(load_pb(p("side_out/output_0.pb"))[1], x * w + 1),
          "sidecar values")


# errors: exit 1 and "dlcc-run: <file>: <message>"
def expect_error(args, file, what):
    r = run(*args)
    check(r.returncode == 1 and r.stderr.startswith("dlcc-run: %s: " % file)
          and "Sanitizer" not in r.stderr,
          "%s: rc=%d %s" % (what, r.returncode, r.stderr.strip()))


np.save(p("xi.npy"), x.astype(np.int64))
np.save(p("x3.npy"), np.zeros((5, 3), np.float32))
with open(p("junk.npy"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00\xff\x00{'descr'")
expect_error([ADDONE, "--input", "x=" + p("xi.npy")], p("xi.npy"),
             "wrong dtype")
expect_error([ADDONE, "--input", "x=" + p("x3.npy")], ADDONE, "wrong dim")
expect_error([ADDONE, "--input", "x=" + p("junk.npy")], p("junk.npy"),
             "malformed npy")
expect_error([ADDONE, "--input", "x=" + p("nope.npy")], p("nope.npy"),
             "missing file")
expect_error([ADDONE, "--input", "z=" + p("x.npy")], ADDONE, "unknown input")
expect_error([ADDONE], ADDONE, "no input given")
expect_error([ADDONE, "--input-dir", p("nodir")], p("nodir/input_0.pb"),
             "missing input dir")
expect_error([p("x.npy"), "--input", "x=" + p("x.npy")], p("x.npy"),
             "not a module")
with open(p("blocker"), "w") as f:
    f.write("a file, not a folder")
expect_error([ADDONE, "--input", "x=" + p("x.npy"), "--output-dir",
              p("blocker")], p("blocker"), "bad output dir")

# bad command lines: exit 2
for args in ([], [ADDONE, "--frob"], [ADDONE, "--input"],
             [ADDONE, "--input", "noequals"], [ADDONE, "--bench", "0"],
             [ADDONE, "--bench", "x"], [ADDONE, "--npy"],
             [ADDONE, ADDONE], [ADDONE, "--warmup", "3"]):
    r = run(*args)
    check(r.returncode == 2 and r.stderr.startswith("dlcc-run: "),
          "usage %s: rc=%d %s" % (args, r.returncode, r.stderr[:200]))
r = run("--help")
check(r.returncode == 0 and "usage:" in r.stdout, "--help")

print("dlcc-run: %d failures" % len(failures))
sys.exit(1 if failures else 0)
