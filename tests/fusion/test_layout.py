#!/usr/bin/env python3
"""The layout pass (passes/layout.c): blocked OIhw16o Conv weights.

Small ONNX Conv models (1x1, 3x3 stride 2 pad 1, bias + Relu epilogue,
residual Add, groups=2, output channels not a multiple of 16, symbolic
batch, dilation, 1-D) compiled at -O3 with both backends (--backend=c and
the default llvm) and with the pass disabled, each checked against ONNX
Runtime within 1e-4.  --print-ir-after=layout shows whether the pass
fired: it must for the cases built for it, and must not for a depthwise
Conv, too few output or input channels, a row longer than 64, or a 1x1
stride-1 unpadded Conv.

Usage: test_layout.py [--dlcc PATH]
"""
import argparse
import os
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


def arr(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inputs, inits):
    g = helper.make_graph(nodes, "g", inputs, [vi("y", None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def conv_case(rng, name, xshape, o, k, fires, feed=None, group=1, bias=True,
              relu=False, residual=None, **attrs):
    """One Conv (+ bias, residual Add of shape `residual`, Relu):
    (name, model, inputs, whether the layout must fire)."""
    c = xshape[1]
    nsp = len(xshape) - 2
    w = arr(rng, o, c // group, *([k] * nsp), scale=1.0 / np.sqrt(c * k))
    inits = [const("w", w)]
    ins = ["x", "w"]
    if bias:
        inits.append(const("b", arr(rng, o)))
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c"], group=group, **attrs)]
    cur = "c"
    if residual:
        nodes.append(helper.make_node("Add", [cur, "r"], ["s"]))
        cur = "s"
    if relu:
        nodes.append(helper.make_node("Relu", [cur], ["a"]))
        cur = "a"
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    inputs = [vi("x", xshape)] + ([vi("r", residual)] if residual else [])
    m = model(nodes, inputs, inits)
    feed = feed or [d if isinstance(d, int) else 2 for d in xshape]
    data = [arr(rng, *feed)] + ([arr(rng, *residual)] if residual else [])
    return (name, m, data, fires)


def cases(rng):
    return [
        # 3x3 stride 2 pad 1: 14x14 -> 7x7
        conv_case(rng, "3x3_s2_p1", [1, 16, 14, 14], 32, 3, True,
                  strides=[2, 2], pads=[1, 1, 1, 1]),
        # bias + Relu epilogue
        conv_case(rng, "bias_relu", [1, 24, 7, 7], 32, 3, True, relu=True,
                  pads=[1, 1, 1, 1]),
        # residual Add + Relu, no bias
        conv_case(rng, "residual_relu", [2, 16, 7, 7], 32, 3, True,
                  bias=False, relu=True, residual=[2, 32, 7, 7], pads=[1, 1, 1, 1]),
        # groups=2, 24 output channels per group (a partial block each)
        conv_case(rng, "groups2", [1, 32, 8, 8], 48, 3, True, group=2,
                  relu=True, pads=[1, 1, 1, 1]),
        # output channels not a multiple of 16
        conv_case(rng, "o20", [1, 8, 9, 9], 20, 3, True, pads=[0, 1, 2, 1]),
        # symbolic batch (run with batch 3), 1x1 stride 2
        conv_case(rng, "symbolic_batch", ["N", 16, 12, 12], 32, 1, True,
                  feed=[3, 16, 12, 12], strides=[2, 2]),
        # dilation 2 with padding, asymmetric geometry
        conv_case(rng, "dilated", [1, 16, 11, 9], 16, 3, True,
                  dilations=[2, 2], pads=[2, 1, 2, 1], relu=True),
        # 1-D convolution
        conv_case(rng, "conv1d", [2, 16, 20], 32, 3, True, pads=[1, 1]),
        # 1x1 stride 1 unpadded with 64 output channels on a small map
        conv_case(rng, "1x1_s1_pad1", [1, 32, 5, 5], 64, 1, True,
                  pads=[1, 1, 1, 1]),
        # declines: depthwise, 8 output channels, 3 input channels (an RGB
        # stem), a row longer than 64, a 1x1 stride-1 unpadded conv
        conv_case(rng, "depthwise_declines", [1, 32, 7, 7], 32, 3, False,
                  group=32, pads=[1, 1, 1, 1]),
        conv_case(rng, "few_channels_declines", [1, 16, 7, 7], 8, 3, False,
                  pads=[1, 1, 1, 1]),
        conv_case(rng, "rgb_stem_declines", [1, 3, 16, 16], 32, 3, False,
                  strides=[2, 2], pads=[1, 1, 1, 1]),
        conv_case(rng, "wide_row_declines", [1, 16, 4, 70], 32, 3, False,
                  pads=[1, 1, 1, 1]),
        conv_case(rng, "pointwise_declines", [1, 32, 5, 5], 64, 1, False),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, data, fires in cases(rng):
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            want = sess.run(None, {i.name: x for i, x in
                                   zip(sess.get_inputs(), data)})
            p = subprocess.run([a.dlcc, path, "-O3", "--emit=ir", "-o",
                                os.devnull, "--print-ir-after=layout"],
                               capture_output=True, text=True)
            fired = p.returncode == 0 and '"dlcc.layout" = "OIhw16o"' in p.stderr
            check(p.returncode == 0 and fired == fires,
                  "%s: layout %s" % (name, "fired" if fired else "declined"))
            for tag, flags in (("c", ["--backend=c"]), ("llvm", []),
                               ("c_nolayout", ["--backend=c",
                                               "--disable-pass=layout"])):
                so = os.path.join(tmp, "%s_%s.so" % (name, tag))
                p = subprocess.run([a.dlcc, path, "-O3", "-o", so] + flags,
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    check(False, "%s %s: dlcc exited %d: %s" %
                          (name, tag, p.returncode, p.stderr.strip()[:1000]))
                    continue
                got = dlcc_py.Module(so).run(data)
                for i, (g, w) in enumerate(zip(got, want)):
                    err = float(np.max(np.abs(g - w))) if w.size else 0.0
                    check(g.shape == w.shape and err <= ATOL,
                          "%s %s output %d %s: max abs err %.2e" %
                          (name, tag, i, list(w.shape), err))
    print("%s" % ("all passed" if not check.failed else "%d failed" % check.failed))


if __name__ == "__main__":
    main()
    sys.exit(1 if check.failed else 0)
