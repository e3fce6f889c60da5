#!/usr/bin/env python3
"""Scaled-dot-product attention recognized as one Attention op.

Small ONNX models built with onnx.helper: Softmax(scale * Q @ Kt [+ M]) @ V
with and without the scale (Div or Mul by a constant), with an additive
[b,1,1,s] or [Sq,Sk] mask (BERT style, -1e4, -1e9 and -inf entries, a
whole block of keys masked), with a causal
Where(mask, -inf, scores) (GPT-2 style), symbolic batch and sequence
length, Dv != D.  Each is compiled with the dlcc CLI at -O3 and -O0 (both
backends when more than one is built) and checked against ONNX Runtime
within 1e-4; at -O3 `--stats` must count exactly one Attention.  A model
whose scores are read twice must keep its MatMuls.

Usage: test_attention.py [--dlcc PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from onnxcheck import ATOL, Checks, vi  # noqa: E402
import dlcc_py  # noqa: E402

check = Checks()


def model(nodes, inputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", inputs, [vi("y", None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def scalar(name, v):
    return numpy_helper.from_array(np.array(v, np.float32), name)


def attention(q_shape, k_shape, v_shape, scale=None, div=False, mask=None,
              causal=False, kt_transpose=True, extra_reader=False):
    """Q, K, V inputs; K is transposed in the graph (Kt as MatMul operand)
    unless kt_transpose is False (then the input is Kt itself)."""
    rank = len(q_shape)
    nodes, inits = [], []
    inputs = [vi("q", q_shape), vi("k", k_shape), vi("v", v_shape)]
    kt = "k"
    if kt_transpose:
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        nodes.append(helper.make_node("Transpose", ["k"], ["kt"], perm=perm))
        kt = "kt"
    nodes.append(helper.make_node("MatMul", ["q", kt], ["s"]))
    s = "s"
    if scale is not None:
        if div:
            inits.append(scalar("c", 1.0 / scale))
            nodes.append(helper.make_node("Div", [s, "c"], ["ss"]))
        else:
            inits.append(scalar("c", scale))
            nodes.append(helper.make_node("Mul", ["c", s], ["ss"]))
        s = "ss"
    if mask is not None:
        inputs.append(vi("m", mask))
        nodes.append(helper.make_node("Add", [s, "m"], ["sm"]))
        s = "sm"
    if causal:
        inputs.append(vi("c_in", causal, TensorProto.BOOL))
        inits.append(scalar("ninf", -np.inf))
        nodes.append(helper.make_node("Not", ["c_in"], ["nc"]))
        nodes.append(helper.make_node("Where", ["nc", "ninf", s], ["sw"]))
        s = "sw"
    nodes.append(helper.make_node("Softmax", [s], ["p"], axis=-1))
    nodes.append(helper.make_node("MatMul", ["p", "v"], ["o"]))
    if extra_reader:
        nodes.append(helper.make_node("ReduceSum", [s], ["rs"], keepdims=0))
        nodes.append(helper.make_node("ReduceSum", ["o"], ["ro"], keepdims=0))
        nodes.append(helper.make_node("Add", ["rs", "ro"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", ["o"], ["y"]))
    return model(nodes, inputs, inits)


def rnd(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def cases(rng):
    """(name, model, inputs, attention count expected at -O3)."""
    out = []
    b, h, s, d = 2, 3, 7, 8
    q, k, v = rnd(rng, b, h, s, d), rnd(rng, b, h, s, d), rnd(rng, b, h, s, d)
    out.append(("plain", attention([b, h, s, d], [b, h, s, d], [b, h, s, d]),
                [q, k, v], 1))
    out.append(("scale_div", attention([b, h, s, d], [b, h, s, d],
                                       [b, h, s, d], scale=d ** -0.5,
                                       div=True), [q, k, v], 1))
    # BERT-style padding mask: -1e4 on padded keys; the last batch has a
    # -inf key in front (first score masked)
    m = np.zeros((b, 1, 1, s), np.float32)
    m[1, 0, 0, 4:] = -10000.0
    m[0, 0, 0, 0] = -np.inf
    out.append(("mask_bert", attention(
        ["batch", h, "seq", d], ["batch", h, "seq", d], ["batch", h, "seq", d],
        scale=d ** -0.5, div=True, mask=["batch", 1, 1, "seq"]),
        [q, k, v, m], 1))
    # the same model at other batch sizes and sequence lengths: the first
    # block of 8 keys masked entirely, a partial last block; a multiple of 8
    b2, s2 = 1, 11
    m2 = np.zeros((b2, 1, 1, s2), np.float32)
    m2[0, 0, 0, :9] = -np.inf
    out.append(("mask_bert_b1s11", out[-1][1],
                [rnd(rng, b2, h, s2, d), rnd(rng, b2, h, s2, d),
                 rnd(rng, b2, h, s2, d), m2], 1))
    m3 = np.zeros((3, 1, 1, 16), np.float32)
    m3[2, 0, 0, 10:] = -1e9
    out.append(("mask_bert_b3s16", out[-2][1],
                [rnd(rng, 3, h, 16, d), rnd(rng, 3, h, 16, d),
                 rnd(rng, 3, h, 16, d), m3], 1))
    # 21 keys (two blocks of 8 and a partial one), D = 16, Dv = 5
    m4 = (rng.standard_normal((5, 21)) * 3).astype(np.float32)
    out.append(("keys21", attention([1, 2, 5, 16], [1, 2, 21, 16],
                                    [1, 2, 21, 5], scale=0.25, mask=[5, 21]),
                [rnd(rng, 1, 2, 5, 16), rnd(rng, 1, 2, 21, 16),
                 rnd(rng, 1, 2, 21, 5), m4], 1))
    # Dv != D, Sq != Sk, rank 3, K given already transposed
    out.append(("dv_ne_d", attention([2, 5, 4], [2, 4, 6], [2, 6, 9],
                                     scale=0.3, kt_transpose=False),
                [rnd(rng, 2, 5, 4), rnd(rng, 2, 4, 6), rnd(rng, 2, 6, 9)], 1))
    # GPT-2 style causal mask: Where(Not(tril), -inf, scores)
    causal = np.tril(np.ones((s, s), np.bool_))
    out.append(("causal_gpt2", attention(
        ["batch", h, "seq", d], ["batch", h, "seq", d], ["batch", h, "seq", d],
        scale=d ** -0.5, causal=["seq", "seq"]), [q, k, v, causal], 1))
    # scores read twice: no Attention
    out.append(("declined_twice", attention(
        [b, h, s, d], [b, h, s, d], [b, h, s, d], scale=0.5,
        extra_reader=True), [q, k, v], 0))
    return out


def dlcc(a, path, flags, out):
    return subprocess.run([a.dlcc, path, "-o", out] + flags,
                          capture_output=True, text=True)


def backends(a):
    """The backends this dlcc has (the default and, if different, c)."""
    p = subprocess.run([a.dlcc, "--help"], capture_output=True, text=True)
    return [[], ["--backend=c"]] if "llvm" in p.stdout + p.stderr else [[]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    bk = backends(a)
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, inputs, natt in cases(rng):
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            sess = ort.InferenceSession(path,
                                        providers=["CPUExecutionProvider"])
            want = sess.run(None, {i.name: x for i, x in
                                   zip(sess.get_inputs(), inputs)})[0]
            for lvl in ("-O3", "-O0"):
                for extra in bk:
                    tag = " ".join([lvl] + extra)
                    so = os.path.join(tmp, "%s_%s%d.so" % (name, lvl, len(extra)))
                    p = dlcc(a, path, [lvl] + extra, so)
                    if p.returncode != 0:
                        check(False, "%s %s: dlcc exited %d: %s" %
                              (name, tag, p.returncode, p.stderr.strip()[:800]))
                        continue
                    got = dlcc_py.Module(so).run(inputs)[0]
                    err = float(np.max(np.abs(got - want)))
                    check(got.shape == want.shape and err <= ATOL,
                          "%s %s: max abs err %.2e" % (name, tag, err))
            p = dlcc(a, path, ["-O3", "--stats"], os.path.join(tmp, "s.so"))
            if p.returncode != 0:
                check(False, "%s --stats: %s" % (name, p.stderr.strip()[:500]))
                continue
            ops = json.loads(p.stdout)["ops_out"]
            check(ops.get("Attention", 0) == natt,
                  "%s: %d Attention at -O3 (%s)" % (name, natt, ops))
            if natt:
                check("Softmax" not in ops and "MatMul" not in ops,
                      "%s: no Softmax or MatMul left (%s)" % (name, ops))
    print("all passed" if not check.failed else "%d failed" % check.failed)


if __name__ == "__main__":
    main()
    sys.exit(1 if check.failed else 0)
