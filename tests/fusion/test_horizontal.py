#!/usr/bin/env python3
"""Horizontal fusion (passes/horizontal.c): numbers and structure.

Small ONNX models where 1x1 Convs, MatMuls or Gemms share an input: two
and three branches, with and without bias, with and without a Relu (or
LeakyRelu, Tanh) on every branch, plus cases the pass must leave alone (a
3x3 Conv beside a 1x1 one, different strides, activations that differ).
MatMul groups whose widths are all multiples of 16 take the direct form
(one MatMul with an output per branch, no Split; symbolic batch dims);
a width of 8 keeps the Split.  Each model is compiled at -O3 (LLVM and C
backends) and with --disable-pass=horizontal and checked against ONNX
Runtime within 1e-4; `dlcc --stats` at -O3 must show
the expected number of Conv/MatMul/Gemm kernels and Splits after the merge
(and no activation left over where it was carried into the merged
product).

Usage: test_horizontal.py [--dlcc PATH]
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
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
import dlcc_py  # noqa: E402

ATOL = 1e-4
failed = 0


def check(cond, msg):
    global failed
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failed += 1


def arr(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_branches(rng, cin, widths, bias, act, shape, extra=None):
    """Convs on x with the given output widths; bias[i] / act (a list of
    (op, attrs) or None per branch) choose the tails.  extra: more
    (node, init) pairs."""
    nodes, inits, outs = [], [], []
    for i, m in enumerate(widths):
        ins = ["x", "w%d" % i]
        inits.append(numpy_helper.from_array(arr(rng, m, cin, 1, 1), "w%d" % i))
        if bias[i]:
            ins.append("b%d" % i)
            inits.append(numpy_helper.from_array(arr(rng, m), "b%d" % i))
        nodes.append(helper.make_node("Conv", ins, ["c%d" % i],
                                      kernel_shape=[1, 1]))
        y = "c%d" % i
        if act[i]:
            op, attrs = act[i]
            nodes.append(helper.make_node(op, [y], ["y%d" % i], **attrs))
            y = "y%d" % i
        outs.append(y)
    for n, init in extra or []:
        nodes.append(n)
        if init is not None:
            inits.append(init)
        outs.append(n.output[0])
    return model(nodes, [vi("x", shape)], [vi(o, None) for o in outs], inits)


RELU = ("Relu", {})


def cases(rng):
    """(name, model, inputs, expected ops_out counts at -O3)."""
    out = []
    x = arr(rng, 1, 64, 7, 7, scale=1.0)
    out.append(("two_conv_relu",
                conv_branches(rng, 64, [16, 8], [True, True], [RELU, RELU],
                              [1, 64, 7, 7]),
                [x], {"Conv": 1, "Split": 1, "Relu": 0}))
    out.append(("two_conv_nobias",
                conv_branches(rng, 64, [8, 12], [False, False], [None, None],
                              [1, 64, 7, 7]),
                [x], {"Conv": 1, "Split": 1}))
    x3 = arr(rng, 2, 96, 5, 5, scale=1.0)
    out.append(("three_conv_mixed_bias_relu",
                conv_branches(rng, 96, [16, 24, 4], [True, False, True],
                              [RELU, RELU, RELU], [2, 96, 5, 5]),
                [x3], {"Conv": 1, "Split": 1, "Relu": 0}))
    out.append(("three_conv_mixed_bias",
                conv_branches(rng, 96, [16, 24, 4], [False, True, True],
                              [None, None, None], [2, 96, 5, 5]),
                [x3], {"Conv": 1, "Split": 1}))
    leaky = ("LeakyRelu", {"alpha": 0.1})
    out.append(("three_conv_leaky",
                conv_branches(rng, 96, [8, 8, 16], [True, True, False],
                              [leaky, leaky, leaky], [2, 96, 5, 5]),
                [x3], {"Conv": 1, "Split": 1, "LeakyRelu": 0}))
    # a Relu on one branch only: the two without merge, the Relu'd one stays
    out.append(("act_differs",
                conv_branches(rng, 96, [8, 8, 16], [True, True, True],
                              [RELU, None, None], [2, 96, 5, 5]),
                [x3], {"Conv": 2, "Split": 1, "Relu": 0}))
    # SqueezeNet's expand: a 1x1 and a 3x3 Conv on one input stay apart
    w3 = numpy_helper.from_array(arr(rng, 16, 64, 3, 3), "w3x3")
    out.append(("conv_1x1_and_3x3",
                conv_branches(rng, 64, [16], [True], [RELU], [1, 64, 7, 7],
                              extra=[(helper.make_node(
                                  "Conv", ["x", "w3x3"], ["c3x3"],
                                  pads=[1, 1, 1, 1]), w3)]),
                [x], {"Conv": 2, "Split": 0}))
    # different strides stay apart
    w4 = numpy_helper.from_array(arr(rng, 16, 64, 1, 1), "ws2")
    out.append(("conv_strides_differ",
                conv_branches(rng, 64, [16], [False], [None], [1, 64, 7, 7],
                              extra=[(helper.make_node(
                                  "Conv", ["x", "ws2"], ["cs2"],
                                  strides=[2, 2]), w4)]),
                [x], {"Conv": 2, "Split": 0}))
    # MatMuls on a 3-D input (stay MatMuls): a bias Add on one, Relu on both
    xm = arr(rng, 2, 5, 96, scale=1.0)
    out.append(("two_matmul_relu", model(
        [helper.make_node("MatMul", ["x", "wa"], ["a"]),
         helper.make_node("Add", ["a", "ba"], ["ab"]),
         helper.make_node("Relu", ["ab"], ["ya"]),
         helper.make_node("MatMul", ["x", "wb"], ["b"]),
         helper.make_node("Relu", ["b"], ["yb"])],
        [vi("x", [2, 5, 96])], [vi("ya", None), vi("yb", None)],
        [numpy_helper.from_array(arr(rng, 96, 8), "wa"),
         numpy_helper.from_array(arr(rng, 8), "ba"),
         numpy_helper.from_array(arr(rng, 96, 8), "wb")]),
        [xm], {"MatMul": 1, "Split": 1, "Relu": 0, "Add": 0}))
    # Gemms with transB, alpha and a bias C, Tanh on both
    out.append(("two_gemm_tanh", model(
        [helper.make_node("Gemm", ["x", "w1", "c1"], ["g1"], transB=1,
                          alpha=0.5),
         helper.make_node("Gemm", ["x", "w2", "c2"], ["g2"], transB=1,
                          alpha=0.5),
         helper.make_node("Tanh", ["g1"], ["y1"]),
         helper.make_node("Tanh", ["g2"], ["y2"])],
        [vi("x", [5, 96])], [vi("y1", None), vi("y2", None)],
        [numpy_helper.from_array(arr(rng, 8, 96), "w1"),
         numpy_helper.from_array(arr(rng, 8), "c1"),
         numpy_helper.from_array(arr(rng, 4, 96), "w2"),
         numpy_helper.from_array(arr(rng, 4), "c2")]),
        [arr(rng, 5, 96, scale=1.0)], {"Gemm": 1, "Split": 1, "Tanh": 0}))
    # MatMul branches whose widths are multiples of 16 (the register block):
    # the merged MatMul writes each branch's output itself (no Split)
    out.append(("two_matmul_direct_bias_relu", matmul_branches(
        rng, 64, [16, 32], [True, True], [RELU, RELU], ["N", 5, 64]),
        [arr(rng, 3, 5, 64, scale=1.0)],
        {"MatMul": 1, "Split": 0, "Relu": 0, "Add": 0}))
    out.append(("three_matmul_direct_bias", matmul_branches(
        rng, 64, [16, 32, 48], [True, False, True], [None, None, None],
        ["B", "S", 64]),
        [arr(rng, 2, 7, 64, scale=1.0)], {"MatMul": 1, "Split": 0, "Add": 0}))
    # 2-D, no bias (a bias would make each branch a Gemm first)
    out.append(("three_matmul_direct_leaky_2d", matmul_branches(
        rng, 32, [48, 16, 32], [False, False, False], [leaky, leaky, leaky],
        ["N", 32]),
        [arr(rng, 9, 32, scale=1.0)],
        {"MatMul": 1, "Gemm": 0, "Split": 0, "LeakyRelu": 0}))
    # a width that is not a multiple of 16 keeps the Split form
    out.append(("two_matmul_split_bias_relu", matmul_branches(
        rng, 64, [16, 8], [True, True], [RELU, RELU], ["N", 5, 64]),
        [arr(rng, 3, 5, 64, scale=1.0)],
        {"MatMul": 1, "Split": 1, "Relu": 0, "Add": 0}))
    return out


def matmul_branches(rng, k, widths, bias, act, shape):
    """MatMuls of x [..., k] by constant [k, width] weights; bias[i] adds a
    constant [width], act[i] is (op, attrs) or None."""
    nodes, inits, outs = [], [], []
    for i, n in enumerate(widths):
        inits.append(numpy_helper.from_array(arr(rng, k, n), "w%d" % i))
        nodes.append(helper.make_node("MatMul", ["x", "w%d" % i],
                                      ["m%d" % i]))
        y = "m%d" % i
        if bias[i]:
            inits.append(numpy_helper.from_array(arr(rng, n), "b%d" % i))
            nodes.append(helper.make_node("Add", [y, "b%d" % i],
                                          ["a%d" % i]))
            y = "a%d" % i
        if act[i]:
            op, attrs = act[i]
            nodes.append(helper.make_node(op, [y], ["y%d" % i], **attrs))
            y = "y%d" % i
        outs.append(y)
    return model(nodes, [vi("x", shape)], [vi(o, None) for o in outs], inits)


def stats(a, path, tmp, flags):
    p = subprocess.run([a.dlcc, path, "-o", os.path.join(tmp, "s.so"),
                        "--stats"] + flags, capture_output=True, text=True)
    if p.returncode != 0:
        check(False, "dlcc --stats %s: %s" % (path, p.stderr.strip()[:500]))
        return None
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, inputs, expect in cases(rng):
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            want = sess.run(None, {i.name: x for i, x in
                                   zip(sess.get_inputs(), inputs)})
            for tag, flags in (("O3", ["-O3"]),
                               ("O3_c", ["-O3", "--backend=c"]),
                               ("nohz", ["-O3", "--disable-pass=horizontal"])):
                so = os.path.join(tmp, "%s_%s.so" % (name, tag))
                p = subprocess.run([a.dlcc, path, "-o", so] + flags,
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    check(False, "%s %s: dlcc exited %d: %s" %
                          (name, tag, p.returncode, p.stderr.strip()[:1000]))
                    continue
                got = dlcc_py.Module(so).run(inputs)
                for i, (g, w) in enumerate(zip(got, want)):
                    err = float(np.max(np.abs(g - w)))
                    check(g.shape == w.shape and err <= ATOL,
                          "%s %s output %d %s: max abs err %.2e" %
                          (name, tag, i, list(w.shape), err))
            s = stats(a, path, tmp, ["-O3"])
            if s:
                ops = s["ops_out"]
                check(all(ops.get(k, 0) == v for k, v in expect.items()),
                      "%s: %s after the passes (%s)" % (
                          name, ", ".join("%d %s" % (v, k)
                                          for k, v in expect.items()), ops))
    print("%s" % ("all passed" if not failed else "%d failed" % failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
