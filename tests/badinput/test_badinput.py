#!/usr/bin/env python3
"""Bad inputs for the dlcc command line.

Each case writes a broken model into a temporary folder and runs
`dlcc MODEL -o OUT.so`.  dlcc must exit with a non-zero status (not a
crash), print a message naming the model file (and the node at fault where
there is one) and leave no output files behind.

The dlcc binary is taken from $DLCC (default build/bin/dlcc).
"""
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DLCC = os.environ.get("DLCC", os.path.join(ROOT, "build", "bin", "dlcc"))
OPSET = [helper.make_opsetid("", 17)]


def make_model(nodes, inputs, outputs, initializers=(), name="bad"):
    graph = helper.make_graph(nodes, name, inputs, outputs,
                              initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    return model


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def small_valid_model():
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    b = numpy_helper.from_array(np.ones(4, dtype=np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul"),
        helper.make_node("Add", ["xw", "b"], ["y0"], name="bias"),
        helper.make_node("Relu", ["y0"], ["y"], name="relu"),
    ]
    return make_model(nodes, [vi("x", [2, 3])], [vi("y", [2, 4])], [w, b],
                      name="valid")


class Case:
    def __init__(self, name, writer, must_mention=()):
        self.name = name
        self.writer = writer  # writer(path) -> None; None = no file at all
        self.must_mention = must_mention


def write_bytes(data):
    def w(path):
        with open(path, "wb") as f:
            f.write(data)
    return w


def write_model(model):
    return write_bytes(model.SerializeToString())


def cases():
    out = []
    out.append(Case("missing_file", None))
    out.append(Case("empty_file", write_bytes(b"")))
    rng = random.Random(1234)
    for n in (1, 7, 64, 1000):
        out.append(Case("random_%d" % n,
                        write_bytes(bytes(rng.randrange(256) for _ in range(n)))))
    valid = small_valid_model().SerializeToString()
    for frac in (0.05, 0.25, 0.5, 0.75, 0.95):
        cut = max(1, int(len(valid) * frac))
        out.append(Case("truncated_%d" % int(frac * 100), write_bytes(valid[:cut])))
    out.append(Case("truncated_minus1", write_bytes(valid[:-1])))

    # two ops dlcc does not support: both must be reported at once
    nodes = [
        helper.make_node("Hardmax", ["x"], ["h"], name="first_unsupported"),
        helper.make_node("Det", ["h"], ["y"], name="second_unsupported"),
    ]
    out.append(Case("two_unsupported_ops",
                    write_model(make_model(nodes, [vi("x", [3, 3])], [vi("y", [])])),
                    ("Hardmax", "Det", "first_unsupported", "second_unsupported")))

    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    out.append(Case("undefined_input",
                    write_model(make_model(nodes, [vi("x", [4])], [vi("y", [4])])),
                    ("adder", "ghost")))

    short = TensorProto()
    short.name = "weights_short"
    short.data_type = TensorProto.FLOAT
    short.dims.extend([2, 3])
    short.raw_data = b"\0" * 20  # 24 needed
    nodes = [helper.make_node("Add", ["x", "weights_short"], ["y"], name="add_w")]
    out.append(Case("short_raw_data",
                    write_model(make_model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])],
                                           [short])),
                    ("weights_short",)))

    def external(location):
        t = TensorProto()
        t.name = "ext_w"
        t.data_type = TensorProto.FLOAT
        t.dims.extend([4])
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", "16")):
            e = t.external_data.add()
            e.key, e.value = k, v
        nodes = [helper.make_node("Add", ["x", "ext_w"], ["y"], name="add_ext")]
        return make_model(nodes, [vi("x", [4])], [vi("y", [4])], [t])

    out.append(Case("missing_external_data",
                    write_model(external("no_such_weights.bin")),
                    ("no_such_weights.bin", "ext_w")))
    out.append(Case("external_data_dotdot",
                    write_model(external("../outside.bin")),
                    ("ext_w",)))

    nodes = [
        helper.make_node("Relu", ["b"], ["a"], name="cycle_one"),
        helper.make_node("Relu", ["a"], ["b"], name="cycle_two"),
        helper.make_node("Add", ["x", "a"], ["y"], name="use_cycle"),
    ]
    out.append(Case("node_cycle",
                    write_model(make_model(nodes, [vi("x", [4])], [vi("y", [4])])),
                    ("cycle_",)))
    return out


def run_case(case, tmp):
    work = os.path.join(tmp, case.name)
    outdir = os.path.join(work, "out")
    os.makedirs(outdir)
    model = os.path.join(work, "model.onnx")
    if case.name == "external_data_dotdot":
        with open(os.path.join(tmp, "outside.bin"), "wb") as f:
            f.write(b"\0" * 16)  # exists, so only the '..' check can refuse it
    if case.writer is not None:
        case.writer(model)
    out = os.path.join(outdir, "model.so")
    p = subprocess.run([DLCC, model, "-o", out], capture_output=True, text=True,
                       errors="replace", timeout=120)
    msg = p.stdout + p.stderr
    problems = []
    if p.returncode == 0:
        problems.append("exited 0")
    elif p.returncode < 0 or p.returncode >= 128:
        problems.append("crashed (status %d)" % p.returncode)
    if model not in msg:
        problems.append("message does not name the file %s" % model)
    for word in case.must_mention:
        if word not in msg:
            problems.append("message does not mention '%s'" % word)
    left = os.listdir(outdir)
    if left:
        problems.append("left files behind: %s" % ", ".join(sorted(left)))
    return problems, msg


def main():
    if not os.access(DLCC, os.X_OK):
        print("test_badinput: dlcc not found at %s (set DLCC)" % DLCC)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="dlcc-badinput-") as tmp:
        for case in cases():
            problems, msg = run_case(case, tmp)
            if problems:
                failed += 1
                print("FAIL %s: %s" % (case.name, "; ".join(problems)))
                for line in msg.strip().splitlines()[:10]:
                    print("    | " + line)
            else:
                first = msg.strip().splitlines()[0] if msg.strip() else ""
                print("ok   %s: %s" % (case.name, first))
    print("%d bad-input case(s) failed" % failed if failed else "all bad-input cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
