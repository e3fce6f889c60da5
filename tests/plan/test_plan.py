#!/usr/bin/env python3
"""Static memory planning: slot reuse, in-place ops and aliased copies.

Small ONNX models whose values die at known points (chains, branches that
live long, reshapes into and out of graph inputs and outputs, a Split with
an unused output, symbolic sizes that share a slot) are compiled at -O0
and -O3 with both backends and run with the workspace filled with NaN
before every run, so a value read after its slot was reused, or never
written, shows up against ONNX Runtime.  --stats must show the plan at
work: fewer workspace bytes than the sum of the intermediates, elementwise
ops in place, copies turned into aliases; the header's static workspace
size must be what the module asks for.

Golden files: every tests/plan/NAME.ir holds a graph, its dlcc flags on
the first line ("// RUN: -O0"), and after "// EXPECT:" the plan that
`dlcc --emit=plan` must print.  --update rewrites the expected parts.

Usage: test_plan.py [--dlcc PATH] [--update]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from onnxcheck import ATOL, Checks, const, vi  # noqa: E402
import dlcc_py  # noqa: E402

check = Checks()


def model(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def N(op, ins, outs, **kw):
    return helper.make_node(op, ins, outs, **kw)


def models(rng):
    """(name, model, [input sets], expectations) for each case."""
    out = []
    w1 = (rng.standard_normal((16, 32)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((32, 16)) * 0.3).astype(np.float32)

    # A chain of elementwise ops and a LayerNormalization after a MatMul:
    # at -O0 each can run in place in the slot of the value it consumes.
    out.append(("chain", model(
        [N("MatMul", ["x", "w1"], ["a"]), N("Relu", ["a"], ["b"]),
         N("Tanh", ["b"], ["c"]), N("Neg", ["c"], ["d"]),
         N("Sigmoid", ["d"], ["e0"]),
         N("LayerNormalization", ["e0", "sc", "bi"], ["e"], axis=-1),
         N("MatMul", ["e", "w2"], ["f"]), N("Abs", ["f"], ["y"])],
        [vi("x", [4, 16])], [vi("y", [4, 16])],
        [const("w1", w1), const("w2", w2),
         const("sc", rng.standard_normal(32).astype(np.float32)),
         const("bi", rng.standard_normal(32).astype(np.float32))]),
        [[rng.standard_normal((4, 16)).astype(np.float32)]],
        {"O0": {"inplace": 4, "smaller": True}}))

    # A value that lives across a long branch (residual), next to short
    # lived ones: its slot must not be reused while the branch runs.
    out.append(("residual", model(
        [N("MatMul", ["x", "w1"], ["h"]), N("Relu", ["h"], ["r"]),
         N("MatMul", ["r", "w2"], ["p"]), N("Exp", ["p"], ["q"]),
         N("MatMul", ["q", "w1"], ["s"]), N("Sigmoid", ["s"], ["t"]),
         N("Add", ["t", "h"], ["u"]), N("MatMul", ["u", "w2"], ["y"])],
        [vi("x", [3, 16])], [vi("y", [3, 16])],
        [const("w1", w1), const("w2", w2 * 0.1)]),
        [[rng.standard_normal((3, 16)).astype(np.float32)]],
        {"O0": {"smaller": True}, "O3": {"smaller": True}}))

    # Reshapes: of an intermediate (alias), of the graph input (alias to
    # the caller's buffer), into a graph output (the value is computed in
    # the output buffer), and input -> output (a copy must stay).
    out.append(("reshapes", model(
        [N("Relu", ["x"], ["a"]),
         N("Reshape", ["a", "s1"], ["b"]),
         N("Transpose", ["b"], ["c"], perm=[1, 0]),
         N("Flatten", ["c"], ["d"], axis=1),
         N("Unsqueeze", ["d", "ax0"], ["e"]),
         N("Squeeze", ["e", "ax0"], ["f"]),
         N("Reshape", ["x", "s1"], ["g"]),
         N("Add", ["f", "gt"], ["h"]),
         N("Transpose", ["g"], ["gt"], perm=[1, 0]),
         N("Reshape", ["h", "s2"], ["y0"]),
         N("Reshape", ["x", "s2"], ["y1"]),
         N("Identity", ["h"], ["k"]), N("Tanh", ["k"], ["y2"])],
        [vi("x", [4, 6])],
        [vi("y0", [24]), vi("y1", [24]), vi("y2", [8, 3])],
        [const("s1", np.array([3, 8], np.int64)),
         const("s2", np.array([24], np.int64)),
         const("ax0", np.array([0], np.int64))]),
        [[rng.standard_normal((4, 6)).astype(np.float32)]],
        {"O0": {"aliased": 3}}))

    # Symbolic batch: slots hold values of different symbolic and constant
    # sizes; run at batch sizes below and above the planner's guess.
    out.append(("symbolic", model(
        [N("MatMul", ["x", "w1"], ["a"]), N("Relu", ["a"], ["b"]),
         N("ReduceSum", ["b", "ax1"], ["c"], keepdims=1),
         N("Mul", ["b", "c"], ["d"]), N("MatMul", ["d", "w2"], ["e"]),
         N("Softmax", ["e"], ["f"], axis=-1),
         N("ReduceMean", ["f"], ["g"], axes=[0], keepdims=1),
         N("Sub", ["f", "g"], ["y"])],
        [vi("x", ["batch", 16])], [vi("y", ["batch", 16])],
        [const("w1", w1), const("w2", w2),
         const("ax1", np.array([1], np.int64))]),
        [[rng.standard_normal((n, 16)).astype(np.float32)]
         for n in (1, 5, 200)],
        {"O0": {"smaller": True}}))

    # A Split with an unused output, and a graph output that is also read
    # by later kernels.
    out.append(("split_outputs", model(
        [N("Relu", ["x"], ["r"]),
         N("Split", ["r", "sp"], ["s0", "s1", "s2"], axis=1),
         N("Exp", ["s0"], ["e"]), N("Mul", ["e", "s2"], ["m"]),
         N("Sigmoid", ["m"], ["y0"]), N("Add", ["y0", "s2"], ["y1"])],
        [vi("x", [2, 9])], [vi("y0", [2, 3]), vi("y1", [2, 3])],
        [const("sp", np.array([3, 3, 3], np.int64))]),
        [[rng.standard_normal((2, 9)).astype(np.float32)]],
        {}))
    return out


def run_poisoned(so, inputs):
    """Runs with the workspace full of NaN before the run."""
    m = dlcc_py.Module(so)
    call, outs = m.prepare(inputs)
    if m._ws is not None:
        m._ws.fill(0xFF)
    for o in outs:
        o.fill(np.nan)
    call()
    return outs


def header_ws(h):
    m = re.search(r"_WORKSPACE_SIZE UINT64_C\((\d+)\)", open(h).read())
    return int(m.group(1)) if m else None


def goldens(a, tmp):
    marker = "// EXPECT:\n"
    for name in sorted(os.listdir(HERE)):
        if not name.endswith(".ir"):
            continue
        path = os.path.join(HERE, name)
        text = open(path).read()
        src, _, want = text.partition(marker)
        first = src.splitlines()[0]
        flags = first[len("// RUN:"):].split() if first.startswith(
            "// RUN:") else []
        inp = os.path.join(tmp, name)
        with open(inp, "w") as f:
            f.write(src)
        p = subprocess.run([a.dlcc, inp, "--emit=plan"] + flags,
                           capture_output=True, text=True)
        got = p.stdout if p.returncode == 0 else "error: " + p.stderr
        if a.update:
            with open(path, "w") as f:
                f.write(src + marker + got)
            print("updated " + name)
            continue
        check(got == want, "golden %s" % name)
        if got != want:
            print("--- expected\n%s--- got\n%s" % (want, got))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin",
                                                   "dlcc"))
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        goldens(a, tmp)
        if a.update:
            return 0
        for name, m, sets, expect in models(rng):
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            sess = ort.InferenceSession(path,
                                        providers=["CPUExecutionProvider"])
            wants = [sess.run(None, {"x": s[0]}) for s in sets]
            for level in ("O0", "O3"):
                for be in ("llvm", "c"):
                    tag = "%s -%s %s" % (name, level, be)
                    so = os.path.join(tmp, "%s_%s_%s.so" % (name, level, be))
                    p = subprocess.run(
                        [a.dlcc, path, "-" + level, "--backend=" + be,
                         "--stats", "-o", so],
                        capture_output=True, text=True)
                    if p.returncode != 0:
                        check(False, "%s: dlcc exited %d: %s" %
                              (tag, p.returncode, p.stderr.strip()[:800]))
                        continue
                    st = json.loads(p.stdout)
                    for s, want in zip(sets, wants):
                        got = run_poisoned(so, s)
                        for i, (g, w) in enumerate(zip(got, want)):
                            err = (float(np.max(np.abs(g - w)))
                                   if w.size else 0.0)
                            check(g.shape == w.shape and err <= ATOL,
                                  "%s batch %d output %d: max abs err %.2e"
                                  % (tag, s[0].shape[0], i, err))
                    if be != "llvm":
                        continue
                    e = expect.get(level, {})
                    info = ("arena %d, intermediates %d, slots %d, in "
                            "place %d, aliased %d" %
                            (st["arena_bytes"], st["intermediate_bytes"],
                             st["workspace_slots"], st["inplace"],
                             st["aliased_copies"]))
                    if e.get("smaller"):
                        check(st["arena_bytes"] < st["intermediate_bytes"],
                              "%s: workspace below the intermediates (%s)" %
                              (tag, info))
                    if "inplace" in e:
                        check(st["inplace"] >= e["inplace"],
                              "%s: >= %d ops in place (%s)" %
                              (tag, e["inplace"], info))
                    if "aliased" in e:
                        check(st["aliased_copies"] >= e["aliased"],
                              "%s: >= %d copies aliased (%s)" %
                              (tag, e["aliased"], info))
                    h = so[:-3] + ".h"
                    if not st["symbolic"] and os.path.exists(h):
                        mod = dlcc_py.Module(so)
                        want_ws = mod.desc.workspace_size(None)
                        check(header_ws(h) == want_ws,
                              "%s: header workspace size %s == module's %d"
                              % (tag, header_ws(h), want_ws))
    print("%d failed" % check.failed)
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
