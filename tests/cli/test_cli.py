"""End-to-end tests of the dlcc command line.

Usage: test_cli.py PATH_TO_DLCC

Builds a small ONNX model (Add + Relu + MatMul, symbolic batch), compiles it
to a shared object and to C, runs the module through its dlcc_module_v1
descriptor with ctypes and compares with onnxruntime; checks exit codes of
the CLI and that the textual IR round-trips.
"""

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper

DLCC = None

DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16,
          6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16,
          11: np.float64, 12: np.uint32, 13: np.uint64}
MAX_RANK = 8


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("ndim", ctypes.c_int32), ("dtype", ctypes.c_int32)]


class IoDesc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32),
                ("ndim", ctypes.c_int32), ("dims", ctypes.c_int64 * MAX_RANK)]


BIND = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(Tensor),
                        ctypes.POINTER(ctypes.c_int64))
WSIZE = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.POINTER(ctypes.c_int64))
OSHAPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32,
                          ctypes.POINTER(ctypes.c_int64),
                          ctypes.POINTER(ctypes.c_int64))
RUN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(Tensor),
                       ctypes.POINTER(Tensor), ctypes.c_void_p,
                       ctypes.c_uint64, ctypes.c_void_p)


class ModuleDesc(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_int32), ("name", ctypes.c_char_p),
                ("num_inputs", ctypes.c_int32),
                ("num_outputs", ctypes.c_int32),
                ("num_syms", ctypes.c_int32),
                ("inputs", ctypes.POINTER(IoDesc)),
                ("outputs", ctypes.POINTER(IoDesc)),
                ("sym_names", ctypes.POINTER(ctypes.c_char_p)),
                ("sidecar_weights_bytes", ctypes.c_uint64),
                ("bind", BIND), ("workspace_size", WSIZE),
                ("output_shape", OSHAPE), ("run", RUN)]


def make_tensor(arr):
    shape = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
    t = Tensor(arr.ctypes.data_as(ctypes.c_void_p), shape, arr.ndim,
               {v: k for k, v in DTYPES.items()}[arr.dtype.type])
    return t, shape


def run_module(so_path, inputs, weights=None):
    """Runs a module through its descriptor; returns (status, outputs)."""
    lib = ctypes.CDLL(os.path.abspath(so_path))
    fn = lib.dlcc_module_v1
    fn.restype = ctypes.POINTER(ModuleDesc)
    d = fn().contents
    assert d.abi_version == 1
    assert d.num_inputs == len(inputs)
    keep = []
    ins = (Tensor * max(len(inputs), 1))()
    for i, a in enumerate(inputs):
        a = np.asarray(a)
        if not a.flags.c_contiguous:  # (ascontiguousarray makes 0-D 1-D)
            a = a.copy()
        keep.append(a)
        ins[i], shp = make_tensor(a)
        keep.append(shp)
    syms = (ctypes.c_int64 * max(d.num_syms, 1))()
    st = d.bind(ins, syms)
    if st:
        return st, None
    outs = (Tensor * max(d.num_outputs, 1))()
    results = []
    for o in range(d.num_outputs):
        od = d.outputs[o]
        dims = (ctypes.c_int64 * MAX_RANK)()
        assert d.output_shape(o, syms, dims) == 0
        arr = np.zeros([dims[k] for k in range(od.ndim)],
                       dtype=DTYPES[od.dtype])
        results.append(arr)
        outs[o], shp = make_tensor(arr)
        keep.append(shp)
    nws = d.workspace_size(syms)
    ws = np.zeros(nws + 64, dtype=np.uint8)
    base = ws.ctypes.data
    aligned = (base + 63) & ~63
    st = d.run(ins, outs, ctypes.c_void_p(aligned if nws else None), nws,
               weights)
    return st, results


def tiny_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    rng = np.random.default_rng(0)
    b = rng.standard_normal(4).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "b"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w"], ["y"], name="matmul")]
    g = helper.make_graph(nodes, "tiny", [x], [y],
                          [onnx.numpy_helper.from_array(b, "b"),
                           onnx.numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def dlcc(*args):
    return subprocess.run([DLCC, *args], capture_output=True, text=True)


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.model = os.path.join(cls.dir, "tiny.onnx")
        tiny_model(cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def reference(self, x):
        import onnxruntime as ort
        sess = ort.InferenceSession(self.model,
                                    providers=["CPUExecutionProvider"])
        return sess.run(None, {"x": x})[0]

    def test_shared_object_matches_onnxruntime(self):
        out = os.path.join(self.dir, "tiny.so")
        r = dlcc(self.model, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(out))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "tiny.h")))
        leftovers = [f for f in os.listdir(self.dir) if ".tmp" in f]
        self.assertEqual(leftovers, [])
        for batch in (1, 5, 0):
            x = np.random.default_rng(batch).standard_normal(
                (batch, 4)).astype(np.float32)
            st, res = run_module(out, [x])
            self.assertEqual(st, 0)
            np.testing.assert_allclose(res[0], self.reference(x), rtol=1e-5,
                                       atol=1e-5)
        # wrong dtype and wrong constant dim are rejected
        st, _ = run_module(out, [np.zeros((2, 4), np.float64)])
        self.assertEqual(st, 3)
        st, _ = run_module(out, [np.zeros((2, 5), np.float32)])
        self.assertEqual(st, 2)

    def test_sidecar_weights(self):
        out = os.path.join(self.dir, "side.so")
        r = dlcc(self.model, "-o", out, "--weights-sidecar-threshold=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        blob = read(out + ".weights", "rb")
        x = np.ones((2, 4), np.float32)
        st, _ = run_module(out, [x])
        self.assertEqual(st, 5)  # DLCC_ERR_WEIGHTS without the blob
        buf = ctypes.create_string_buffer(blob, len(blob))
        st, res = run_module(out, [x], ctypes.cast(buf, ctypes.c_void_p))
        self.assertEqual(st, 0)
        np.testing.assert_allclose(res[0], self.reference(x), rtol=1e-5,
                                   atol=1e-5)

    def test_emit_c_is_strict_c99(self):
        out = os.path.join(self.dir, "tinyc.c")
        r = dlcc(self.model, "--emit=c", "-o", out, "--name=tiny_c")
        self.assertEqual(r.returncode, 0, r.stderr)
        hdr = os.path.join(self.dir, "tinyc.h")
        self.assertTrue(os.path.exists(hdr))
        obj = os.path.join(self.dir, "tinyc.o")
        cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-c", out,
                             "-o", obj], capture_output=True, text=True)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        # the header works standalone and next to the C source
        app = os.path.join(self.dir, "app.c")
        with open(app, "w") as f:
            f.write('#include "tinyc.h"\n#include "tinyc.h"\n'
                    "int main(void) {\n"
                    "  const dlcc_module_desc *d = dlcc_module_v1();\n"
                    "  return d->num_inputs == TINY_C_NUM_INPUTS ? 0 : 1;\n"
                    "}\n")
        exe = os.path.join(self.dir, "app")
        cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", app, obj,
                             "-lm", "-o", exe], capture_output=True,
                            text=True)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        self.assertEqual(subprocess.run([exe]).returncode, 0)
        # and a shared object built from it runs like dlcc's own
        so = os.path.join(self.dir, "tinyc.so")
        cc = subprocess.run(["cc", "-O1", "-shared", "-fPIC", out, "-o", so,
                             "-lm"], capture_output=True, text=True)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        x = np.random.default_rng(7).standard_normal((3, 4)).astype(
            np.float32)
        st, res = run_module(so, [x])
        self.assertEqual(st, 0)
        np.testing.assert_allclose(res[0], self.reference(x), rtol=1e-5,
                                   atol=1e-5)

    def test_ir_round_trip(self):
        ir1 = os.path.join(self.dir, "a.ir")
        ir2 = os.path.join(self.dir, "b.ir")
        r = dlcc(self.model, "--emit=ir", "-o", ir1)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = dlcc(ir1, "--emit=ir", "-o", ir2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read(ir1), read(ir2))
        r = dlcc(ir1, "--emit=ir")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, read(ir1))

    def test_emit_kir(self):
        r = dlcc(self.model, "--emit=kir")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.strip())

    def test_emit_plan(self):
        # At -O0 the Relu runs in place over the Add's result: one slot.
        r = dlcc(self.model, "--emit=plan", "-O0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("slot 0: 16*batch bytes\n", r.stdout)
        self.assertIn("_Relu(r: slot 0, s: slot 0)", r.stdout)
        self.assertIn("in place: 1", r.stdout)

    def test_stats_sym(self):
        out = os.path.join(self.dir, "st.so")
        r = dlcc(self.model, "-O0", "--stats", "--stats-sym=batch=10",
                 "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        # s and r, [10, 4] floats each, share one 64-byte aligned slot
        self.assertEqual(st["intermediate_bytes"], 2 * 10 * 4 * 4)
        self.assertEqual(st["arena_bytes"], 192)
        out2 = os.path.join(self.dir, "st2.so")
        r = dlcc(self.model, "--stats", "--stats-sym=seq=3", "-o", out2)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no symbol 'seq'", r.stderr)
        self.assertFalse(os.path.exists(out2))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "st2.h")))
        self.assertEqual(dlcc(self.model, "--stats-sym=batch").returncode, 2)
        self.assertEqual(dlcc(self.model, "--stats-sym=batch=-1").returncode,
                         2)

    def test_flags(self):
        r = dlcc("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage", r.stdout)
        r = dlcc("--version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("dlcc", r.stdout)
        self.assertEqual(dlcc("--bogus", self.model).returncode, 2)
        self.assertEqual(dlcc(self.model, "-o").returncode, 2)
        self.assertEqual(dlcc(self.model, self.model).returncode, 2)
        self.assertEqual(dlcc().returncode, 2)
        self.assertEqual(dlcc(self.model, "--emit=wat").returncode, 2)
        r = dlcc(self.model, "--target=riscv64", "-o",
                 os.path.join(self.dir, "t.so"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not supported by this build", r.stderr)

    def test_errors_leave_nothing(self):
        bad = os.path.join(self.dir, "bad.onnx")
        with open(bad, "wb") as f:
            f.write(b"\x08\x07garbage that is not a model")
        out = os.path.join(self.dir, "bad.so")
        r = dlcc(bad, "-o", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("error", r.stderr)
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "bad.h")))
        r = dlcc(os.path.join(self.dir, "missing.onnx"), "-o", out)
        self.assertEqual(r.returncode, 1)
        leftovers = [f for f in os.listdir(self.dir) if ".tmp" in f]
        self.assertEqual(leftovers, [])


if __name__ == "__main__":
    DLCC = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else \
        os.environ.get("DLCC", "dlcc")
    unittest.main()
