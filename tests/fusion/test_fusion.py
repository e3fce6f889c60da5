#!/usr/bin/env python3
"""Fusion passes: numbers and structure.

1. Small ONNX models, one per fusion pattern (Conv + BatchNormalization +
   SiLU, depthwise Conv + Clip, pointwise Conv + bias + residual + Relu,
   MatMul + erf-GELU, batched MatMul + HardSwish, Gemm with and without
   transB + LeakyRelu / Tanh / HardSigmoid, three MatMuls on one input,
   a tree of elementwise ops, a decomposed LayerNorm, erf-GELU, Softmax),
   compiled at the default -O2 and with the fusion passes disabled, each
   checked against ONNX Runtime within 1e-4.
2. ResNet-18 and BERT of tests/models/export_models.py, the same way, plus
   their structure after the passes (dlcc --stats and --emit=ir): ResNet-18
   has one kernel per convolution and no Relu, Add or BatchNormalization
   left; in BERT the Q, K and V projections of every block are one MatMul.

Usage: test_fusion.py [--dlcc PATH] [--cache DIR] [--no-models]
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
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
from onnxcheck import ATOL, Checks, const, vi  # noqa: E402
import dlcc_py  # noqa: E402

FUSION_PASSES = ["recognize", "fold_bn", "horizontal", "fuse_epilogue",
                 "fuse_elementwise"]
check = Checks()


def rng_arr(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    m = onnx.shape_inference.infer_shapes(m)
    return m


def small_models(rng):
    """(name, model, inputs) for each pattern."""
    out = []
    # Conv + BN + SiLU, then a 3x3 Conv with padding + bias + Relu
    w = rng_arr(rng, 8, 3, 3, 3, scale=0.3)
    w2 = rng_arr(rng, 8, 8, 3, 3, scale=0.2)
    bn = [np.abs(rng_arr(rng, 8)) + 0.5, rng_arr(rng, 8), rng_arr(rng, 8),
          np.abs(rng_arr(rng, 8)) + 0.1]
    out.append(("conv_bn_silu", model(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"],
                          epsilon=1e-3),
         helper.make_node("Sigmoid", ["n"], ["sg"]),
         helper.make_node("Mul", ["n", "sg"], ["silu"]),
         helper.make_node("Conv", ["silu", "w2", "b2"], ["c2"], strides=[2, 2],
                          pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c2"], ["y"])],
        [vi("x", [2, 3, 9, 9])], [vi("y", None)],
        [const("w", w), const("s", bn[0]), const("b", bn[1]),
         const("m", bn[2]), const("v", bn[3]), const("w2", w2),
         const("b2", rng_arr(rng, 8))]),
        [rng_arr(rng, 2, 3, 9, 9)]))
    # BN after a Concat folds into the following 1x1 Conv (no padding,
    # grouped); before the padded 3x3 Conv it stays
    bnc = [np.abs(rng_arr(rng, 6)) + 0.5, rng_arr(rng, 6), rng_arr(rng, 6),
           np.abs(rng_arr(rng, 6)) + 0.1]
    out.append(("concat_bn_conv", model(
        [helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
         helper.make_node("BatchNormalization", ["cat", "s", "sh", "m", "v"],
                          ["n"]),
         helper.make_node("Conv", ["n", "w", "cb"], ["y"], group=2),
         helper.make_node("BatchNormalization", ["cat", "s", "sh", "m", "v"],
                          ["n2"], epsilon=1e-3),
         helper.make_node("Conv", ["n2", "w3"], ["y2"], pads=[1, 1, 1, 1])],
        [vi("a", [1, 2, 5, 5]), vi("b", [1, 4, 5, 5])],
        [vi("y", None), vi("y2", None)],
        [const("s", bnc[0]), const("sh", bnc[1]), const("m", bnc[2]),
         const("v", bnc[3]), const("w", rng_arr(rng, 4, 3, 1, 1)),
         const("cb", rng_arr(rng, 4)), const("w3", rng_arr(rng, 2, 6, 3, 3))]),
        [rng_arr(rng, 1, 2, 5, 5), rng_arr(rng, 1, 4, 5, 5)]))
    # depthwise Conv + bias + Clip (ReLU6); pointwise Conv + residual + Relu
    out.append(("conv_dw_pw_residual", model(
        [helper.make_node("Conv", ["x", "wd", "bd"], ["d"], group=4,
                          pads=[1, 1, 1, 1]),
         helper.make_node("Clip", ["d", "lo", "hi"], ["d6"]),
         helper.make_node("Conv", ["d6", "wp"], ["p"]),
         helper.make_node("Add", ["p", "bp"], ["pb"]),
         helper.make_node("Add", ["x", "pb"], ["r"]),
         helper.make_node("Relu", ["r"], ["y"])],
        [vi("x", [1, 4, 6, 6])], [vi("y", None)],
        [const("wd", rng_arr(rng, 4, 1, 3, 3)), const("bd", rng_arr(rng, 4)),
         const("lo", np.float32(0)), const("hi", np.float32(0.5)),
         const("wp", rng_arr(rng, 4, 4, 1, 1)),
         const("bp", rng_arr(rng, 4, 1, 1))]),
        [rng_arr(rng, 1, 4, 6, 6)]))
    # MatMul + bias + erf-GELU; batched MatMul (both operands) + HardSwish
    out.append(("matmul_gelu_hardswish", model(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["mb"]),
         helper.make_node("Div", ["mb", "sq2"], ["d"]),
         helper.make_node("Erf", ["d"], ["e"]),
         helper.make_node("Add", ["e", "one"], ["e1"]),
         helper.make_node("Mul", ["mb", "e1"], ["g"]),
         helper.make_node("Mul", ["g", "half"], ["gelu"]),
         helper.make_node("MatMul", ["gelu", "z"], ["bm"]),
         helper.make_node("HardSwish", ["bm"], ["y"])],
        [vi("x", [2, 5, 16]), vi("z", [2, 24, 7])], [vi("y", None)],
        [const("w", rng_arr(rng, 16, 24, scale=0.3)),
         const("b", rng_arr(rng, 24)), const("sq2", np.float32(np.sqrt(2))),
         const("one", np.float32(1)), const("half", np.float32(0.5))]),
        [rng_arr(rng, 2, 5, 16), rng_arr(rng, 2, 24, 7)]))
    # Gemm (transB) + LeakyRelu, Gemm + Tanh, Gemm + BN + HardSigmoid
    out.append(("gemm_activations", model(
        [helper.make_node("Gemm", ["x", "w1", "c1"], ["g1"], transB=1,
                          alpha=0.5, beta=2.0),
         helper.make_node("LeakyRelu", ["g1"], ["a1"], alpha=0.2),
         helper.make_node("Gemm", ["a1", "w2"], ["g2"]),
         helper.make_node("Tanh", ["g2"], ["a2"]),
         helper.make_node("Gemm", ["a2", "w3", "c3"], ["g3"]),
         helper.make_node("BatchNormalization", ["g3", "s", "b", "m", "v"],
                          ["n3"]),
         helper.make_node("HardSigmoid", ["n3"], ["y"])],
        [vi("x", [3, 12])], [vi("y", None)],
        [const("w1", rng_arr(rng, 20, 12)), const("c1", rng_arr(rng, 20)),
         const("w2", rng_arr(rng, 20, 9)), const("w3", rng_arr(rng, 9, 6)),
         const("c3", rng_arr(rng, 1, 6)),
         const("s", rng_arr(rng, 6)), const("b", rng_arr(rng, 6)),
         const("m", rng_arr(rng, 6)),
         const("v", np.abs(rng_arr(rng, 6)) + 0.2)]),
        [rng_arr(rng, 3, 12)]))
    # Q, K, V on one input (bias on two of them), then their elementwise sum
    out.append(("horizontal_qkv", model(
        [helper.make_node("MatMul", ["x", "wq"], ["q"]),
         helper.make_node("Add", ["q", "bq"], ["qb"]),
         helper.make_node("MatMul", ["x", "wk"], ["k"]),
         helper.make_node("Add", ["bk", "k"], ["kb"]),
         helper.make_node("MatMul", ["x", "wv"], ["v"]),
         helper.make_node("Mul", ["qb", "kb"], ["qk"]),
         helper.make_node("Sub", ["qk", "v"], ["y"])],
        [vi("x", [2, 3, 32])], [vi("y", None)],
        [const("wq", rng_arr(rng, 32, 16)), const("bq", rng_arr(rng, 16)),
         const("wk", rng_arr(rng, 32, 16)), const("bk", rng_arr(rng, 16)),
         const("wv", rng_arr(rng, 32, 16))]),
        [rng_arr(rng, 2, 3, 32)]))
    # decomposed LayerNorm (opset 14: axes attribute) and erf-GELU
    out.append(("layernorm_gelu_decomposed", model(
        [helper.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]),
         helper.make_node("Sub", ["x", "mu"], ["d"]),
         helper.make_node("Pow", ["d", "two"], ["d2"]),
         helper.make_node("ReduceMean", ["d2"], ["var"], axes=[-1]),
         helper.make_node("Add", ["var", "eps"], ["ve"]),
         helper.make_node("Sqrt", ["ve"], ["sd"]),
         helper.make_node("Div", ["d", "sd"], ["nrm"]),
         helper.make_node("Mul", ["nrm", "gamma"], ["sc"]),
         helper.make_node("Add", ["sc", "beta"], ["ln"]),
         helper.make_node("Mul", ["ln", "half"], ["h"]),
         helper.make_node("Mul", ["ln", "rsq2"], ["t"]),
         helper.make_node("Erf", ["t"], ["e"]),
         helper.make_node("Add", ["one", "e"], ["e1"]),
         helper.make_node("Mul", ["h", "e1"], ["y"])],
        [vi("x", [3, 2, 10])], [vi("y", None)],
        [const("two", np.float32(2)), const("eps", np.float32(1e-5)),
         const("gamma", rng_arr(rng, 10)), const("beta", rng_arr(rng, 10)),
         const("half", np.float32(0.5)),
         const("rsq2", np.float32(np.sqrt(0.5))),
         const("one", np.float32(1))], opset=14),
        [rng_arr(rng, 3, 2, 10, scale=3.0)]))
    # decomposed Softmax over axis 1, with and without the max subtraction
    out.append(("softmax_decomposed", model(
        [helper.make_node("ReduceMax", ["x"], ["mx"], axes=[1]),
         helper.make_node("Sub", ["x", "mx"], ["d"]),
         helper.make_node("Exp", ["d"], ["e"]),
         helper.make_node("ReduceSum", ["e", "ax"], ["s"]),
         helper.make_node("Div", ["e", "s"], ["y"]),
         helper.make_node("Exp", ["x"], ["e2"]),
         helper.make_node("ReduceSum", ["e2", "ax"], ["s2"]),
         helper.make_node("Div", ["e2", "s2"], ["y2"])],
        [vi("x", [2, 5, 3])], [vi("y", None), vi("y2", None)],
        [const("ax", np.array([1], np.int64))]),
        [rng_arr(rng, 2, 5, 3)]))
    # a tree of elementwise ops with broadcasting
    out.append(("elementwise_tree", model(
        [helper.make_node("Exp", ["a"], ["ea"]),
         helper.make_node("Sqrt", ["b"], ["sb"]),
         helper.make_node("Mul", ["ea", "sb"], ["m"]),
         helper.make_node("Sub", ["m", "c"], ["s"]),
         helper.make_node("Max", ["s", "zero"], ["y"])],
        [vi("a", [4, 1]), vi("b", [1, 5]), vi("c", [4, 5])], [vi("y", None)],
        [const("zero", np.float32(0))]),
        [rng_arr(rng, 4, 1), np.abs(rng_arr(rng, 1, 5)), rng_arr(rng, 4, 5)]))
    return out


def dlcc(args_dlcc, path, extra, out):
    return subprocess.run([args_dlcc, path, "-o", out] + extra,
                          capture_output=True, text=True)


def run_both(a, tmp, name, path, inputs, want):
    """Compiles with and without the fusion passes; compares with want."""
    variants = [("O2", []),
                ("nofusion", ["--disable-pass=" + p for p in FUSION_PASSES])]
    for tag, flags in variants:
        so = os.path.join(tmp, "%s_%s.so" % (name, tag))
        p = dlcc(a.dlcc, path, flags, so)
        if p.returncode != 0:
            check(False, "%s %s: dlcc exited %d: %s" %
                  (name, tag, p.returncode, p.stderr.strip()[:1000]))
            continue
        got = dlcc_py.Module(so).run(inputs)
        for i, (g, w) in enumerate(zip(got, want)):
            err = float(np.max(np.abs(g - w))) if w.size else 0.0
            check(g.shape == w.shape and err <= ATOL,
                  "%s %s output %d %s: max abs err %.2e" %
                  (name, tag, i, list(w.shape), err))


def stats(a, path, tmp, flags=()):
    p = subprocess.run([a.dlcc, path, "-o", os.path.join(tmp, "s.so"),
                        "--stats"] + list(flags), capture_output=True,
                       text=True)
    if p.returncode != 0:
        check(False, "dlcc --stats %s: %s" % (path, p.stderr.strip()[:500]))
        return None
    return json.loads(p.stdout)


def emit_ir(a, path):
    p = subprocess.run([a.dlcc, path, "--emit=ir"],
                       capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "test-models"))
    ap.add_argument("--no-models", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, inputs in small_models(rng):
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            want = sess.run(None, {i.name: x for i, x in
                                   zip(sess.get_inputs(), inputs)})
            run_both(a, tmp, name, path, inputs, want)
            if name == "conv_bn_silu":
                s = stats(a, path, tmp)
                if s:
                    check(s["kernels"] == 2 and "Conv" in s["ops_out"],
                          "conv_bn_silu: 2 kernels (%s)" % s["ops_out"])
            if name == "concat_bn_conv":
                s = stats(a, path, tmp)
                if s:
                    check(s["ops_out"].get("BatchNormalization") == 1 and
                          s["kernels"] == 4,
                          "concat_bn_conv: one BN folded, one kept (%s)" %
                          s["ops_out"])
            if name == "horizontal_qkv":
                s = stats(a, path, tmp)
                if s:
                    check(s["ops_out"].get("MatMul") == 1,
                          "horizontal_qkv: one MatMul (%s)" % s["ops_out"])
            if name == "layernorm_gelu_decomposed":
                s = stats(a, path, tmp)
                if s:
                    check(s["ops_out"] == {"LayerNormalization": 1, "Gelu": 1},
                          "layernorm_gelu_decomposed: recognized (%s)" %
                          s["ops_out"])
            if name == "softmax_decomposed":
                s = stats(a, path, tmp)
                if s:
                    check(s["ops_out"] == {"Softmax": 2},
                          "softmax_decomposed: recognized (%s)" % s["ops_out"])
            if name == "elementwise_tree":
                s = stats(a, path, tmp)
                if s:
                    check(s["kernels"] == 1,
                          "elementwise_tree: one kernel (%s)" % s["ops_out"])
        if a.no_models:
            return
        import export_models
        os.makedirs(a.cache, exist_ok=True)
        for name in ("resnet18", "bert"):
            path = os.path.join(a.cache, name + ".onnx")
            if not os.path.exists(path):
                export_models.export(name, a.cache)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            if name == "resnet18":
                inputs = [rng_arr(rng, 1, 3, 224, 224)]
            else:
                ids = rng.integers(0, 1000, size=(2, 9)).astype(np.int64)
                mask = np.ones((2, 9), np.int64)
                mask[-1, 5:] = 0
                inputs = [ids, mask]
            want = sess.run(None, {i.name: x for i, x in
                                   zip(sess.get_inputs(), inputs)})
            run_both(a, tmp, name, path, inputs, want)
            s = stats(a, path, tmp)
            if not s:
                continue
            ops = s["ops_out"]
            if name == "resnet18":
                nconv = sum(n.op_type == "Conv" for n in
                            onnx.load(path, load_external_data=False).graph.node)
                # Conv kernels + MaxPool, GlobalAveragePool, Flatten, Gemm
                check(ops.get("Conv") == nconv and s["kernels"] <= nconv + 4,
                      "resnet18: %d kernels for %d convolutions" %
                      (s["kernels"], nconv))
                check(not any(k in ops for k in
                              ("Relu", "Add", "BatchNormalization")),
                      "resnet18: no Relu/Add/BatchNormalization left (%s)" % ops)
            else:
                base = stats(a, path, tmp, ["--disable-pass=horizontal"])
                ir = emit_ir(a, path)
                # Q, K, V: 128 -> 3 x 128 in one MatMul per block, which
                # writes the three outputs itself (no Split)
                out128 = r"%\S+ : f32\[batch,seq,128\]"
                merged = re.findall(r"%s, %s, %s = MatMul\(" %
                                    (out128, out128, out128), ir)
                blocks = len(merged)
                check(blocks >= 1 and ops.get("Split", 0) == 0 and base and
                      base["ops_out"].get("MatMul", 0) - ops.get("MatMul", 0)
                      == 2 * blocks,
                      "bert: Q/K/V one MatMul in each of %d blocks (MatMuls "
                      "%s -> %s)" % (blocks, base and base["ops_out"].get("MatMul"),
                                     ops.get("MatMul")))
    print("%s" % ("all passed" if not check.failed else "%d failed" % check.failed))


if __name__ == "__main__":
    main()
    sys.exit(1 if check.failed else 0)
