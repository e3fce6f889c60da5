"""Round-trip and hostile-input tests of the runtime's tensor file readers.

Usage: test_tensor_io.py TOOL WORKDIR
TOOL is rt_tensor_tool (read FILE | convert IN OUT).  Every dtype and a range
of shapes go .npy -> .pb -> onnx and TensorProto (raw and typed fields,
packed and not) -> .npy -> numpy, compared exactly; malformed files must give
exit status 1 with a message naming the file, never a crash.
"""
import os
import random
import struct
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

TOOL, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def tool(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True,
                          errors="replace")


def path(name):
    return os.path.join(WORK, name)


def read_pb(p):
    t = onnx.TensorProto()
    with open(p, "rb") as f:
        t.ParseFromString(f.read())
    return t


DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16,
          np.int8, np.uint64, np.uint32, np.uint16, np.uint8, np.bool_]
SHAPES = [(), (0,), (5,), (2, 3), (1, 2, 3, 4), (2, 0, 3),
          (1, 1, 1, 1, 1, 1, 2, 2)]


def sample(dtype, shape, rng):
    n = int(np.prod(shape)) if shape else 1
    if dtype == np.bool_:
        a = rng.integers(0, 2, n).astype(np.bool_)
    elif np.issubdtype(dtype, np.floating):
        a = (rng.standard_normal(n) * 100).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    return a.reshape(shape)


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and \
        a.tobytes() == b.tobytes()


# ---- round trips -----------------------------------------------------------
rng = np.random.default_rng(7)
count = 0
for dt in DTYPES:
    for shape in SHAPES:
        a = sample(dt, shape, rng)
        tag = "%s_%s" % (np.dtype(dt).name, "x".join(map(str, shape)) or "s")
        # numpy .npy -> our .pb -> onnx
        np.save(path(tag + ".npy"), a)
        r = tool("convert", path(tag + ".npy"), path(tag + "_out.pb"))
        check(r.returncode == 0, "npy->pb %s: %s" % (tag, r.stderr))
        if r.returncode == 0:
            t = read_pb(path(tag + "_out.pb"))
            check(same(numpy_helper.to_array(t), a) and t.name == "t",
                  "npy->pb %s values" % tag)
        # our .npy writer is byte-identical to numpy's
        r = tool("convert", path(tag + ".npy"), path(tag + "_out.npy"))
        check(r.returncode == 0, "npy->npy %s: %s" % (tag, r.stderr))
        if r.returncode == 0:
            with open(path(tag + ".npy"), "rb") as f1, \
                    open(path(tag + "_out.npy"), "rb") as f2:
                check(f1.read() == f2.read(), "npy->npy %s bytes" % tag)
        # onnx raw_data .pb -> our .npy -> numpy
        t = numpy_helper.from_array(a, "raw_" + tag)
        with open(path(tag + "_raw.pb"), "wb") as f:
            f.write(t.SerializeToString())
        r = tool("convert", path(tag + "_raw.pb"), path(tag + "_raw.npy"))
        check(r.returncode == 0, "raw pb->npy %s: %s" % (tag, r.stderr))
        if r.returncode == 0:
            check(same(np.load(path(tag + "_raw.npy")), a),
                  "raw pb->npy %s values" % tag)
        r = tool("read", path(tag + "_raw.pb"))
        check(r.stdout.split()[-1] == "raw_" + tag, "pb name %s" % tag)
        # onnx typed fields (float_data, int32_data, ...) -> our .npy
        onnx_type = helper.np_dtype_to_tensor_dtype(a.dtype)
        vals = a.flatten()
        if dt == np.float16:
            vals = vals.view(np.uint16).astype(np.int32)
            t = onnx.TensorProto(name="typed", data_type=onnx_type)
            t.dims.extend(a.shape)
            t.int32_data.extend(vals.tolist())
        else:
            t = helper.make_tensor("typed", onnx_type, a.shape, vals.tolist(),
                                   raw=False)
        with open(path(tag + "_typed.pb"), "wb") as f:
            f.write(t.SerializeToString())
        r = tool("convert", path(tag + "_typed.pb"), path(tag + "_typed.npy"))
        check(r.returncode == 0, "typed pb->npy %s: %s" % (tag, r.stderr))
        if r.returncode == 0:
            check(same(np.load(path(tag + "_typed.npy")), a),
                  "typed pb->npy %s values" % tag)
        count += 1

# npy version 2.0 header
a = sample(np.float32, (3, 4), rng)
with open(path("v2.npy"), "wb") as f:
    np.lib.format.write_array(f, a, version=(2, 0))
r = tool("convert", path("v2.npy"), path("v2_out.npy"))
check(r.returncode == 0 and same(np.load(path("v2_out.npy")), a), "npy v2.0")


# ---- hand-encoded TensorProto: packed fields -------------------------------
def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def key(field, wt):
    return varint(field << 3 | wt)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def packed_varints(field, vals):
    return ld(field, b"".join(varint(v) for v in vals))


def convert_pb_bytes(name, data):
    with open(path(name + ".pb"), "wb") as f:
        f.write(data)
    r = tool("convert", path(name + ".pb"), path(name + ".npy"))
    return r, (np.load(path(name + ".npy")) if r.returncode == 0 else None)


dims = packed_varints(1, [2, 3])
f = np.arange(6, dtype=np.float32) - 2.5
r, got = convert_pb_bytes("packed_f32", dims + key(2, 0) + varint(1) +
                          ld(4, f.tobytes()))
check(got is not None and same(got, f.reshape(2, 3)), "packed float_data")
i64 = np.array([-5, 0, 7, 1 << 40, -(1 << 50), 3], np.int64)
r, got = convert_pb_bytes("packed_i64", dims + key(2, 0) + varint(7) +
                          packed_varints(7, [int(v) for v in i64]))
check(got is not None and same(got, i64.reshape(2, 3)), "packed int64_data")
i32 = np.array([-1, 2, -3, 4, -2147483648, 2147483647], np.int32)
r, got = convert_pb_bytes("packed_i32", dims + key(2, 0) + varint(6) +
                          packed_varints(5, [int(v) for v in i32]))
check(got is not None and same(got, i32.reshape(2, 3)), "packed int32_data")
d = np.linspace(-1, 1, 6)
r, got = convert_pb_bytes("packed_f64", dims + key(2, 0) + varint(11) +
                          ld(10, d.tobytes()))
check(got is not None and same(got, d.reshape(2, 3)), "packed double_data")
u64 = np.array([0, 1, 2, 3, 1 << 63, (1 << 64) - 1], np.uint64)
r, got = convert_pb_bytes("packed_u64", dims + key(2, 0) + varint(13) +
                          packed_varints(11, [int(v) for v in u64]))
check(got is not None and same(got, u64.reshape(2, 3)), "packed uint64_data")
# split repeated fields: values in two runs, dims one packed one single
r, got = convert_pb_bytes("split", packed_varints(1, [2]) + key(1, 0) +
                          varint(3) + key(2, 0) + varint(1) +
                          ld(4, f[:2].tobytes()) + ld(4, f[2:].tobytes()))
check(got is not None and same(got, f.reshape(2, 3)), "split repeated fields")


# ---- hostile files ---------------------------------------------------------
def expect_error(name, data, ext=".pb", why=""):
    p = path("bad_" + name + ext)
    with open(p, "wb") as fh:
        fh.write(data)
    r = tool("read", p)
    ok = r.returncode == 1 and p in r.stderr and \
        "Sanitizer" not in r.stderr and "runtime error" not in r.stderr
    check(ok, "hostile %s%s: rc=%d %s" % (name, why, r.returncode,
                                           r.stderr.strip()[:300]))


def expect_no_crash(name, data, ext):
    p = path("fuzz_" + name + ext)
    with open(p, "wb") as fh:
        fh.write(data)
    r = tool("read", p)
    check(r.returncode in (0, 1) and "Sanitizer" not in r.stderr and
          "runtime error" not in r.stderr,
          "fuzz %s: rc=%d %s" % (name, r.returncode, r.stderr[-300:]))


good_npy = open(path("float32_2x3.npy"), "rb").read()
good_pb = open(path("float32_2x3_raw.pb"), "rb").read()
for n in sorted(set([0, 1, 5, 9, 10, 11, 20, 60, 127, 128, 129] +
                    [len(good_npy) - k for k in (1, 4, 23)])):
    expect_error("npy_trunc%d" % n, good_npy[:n], ".npy")
for n in range(len(good_pb)):
    if n == 0:
        continue  # an empty message: handled below
    expect_error("pb_trunc%d" % n, good_pb[:n], why=" (truncated)")
expect_error("pb_empty", b"", why=" (no data_type)")


def npy_with_header(h, payload=b""):
    h = h.encode()
    pad = (-(10 + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + payload


expect_error("npy_huge", npy_with_header(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, "
    "1099511627776), }"), ".npy")
expect_error("npy_overflow", npy_with_header(
    "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,"
    " 4611686018427387904, 4), }"), ".npy")
expect_error("npy_bigdim", npy_with_header(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999"
    "9999,), }"), ".npy")
expect_error("npy_short", npy_with_header(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }",
    b"\0" * 4), ".npy")
expect_error("npy_long", npy_with_header(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
    ".npy")
expect_error("npy_fortran", npy_with_header(
    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
    b"\0" * 16), ".npy")
expect_error("npy_bigendian", npy_with_header(
    "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
    ".npy")
expect_error("npy_complex", npy_with_header(
    "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
    ".npy")
expect_error("npy_struct", npy_with_header(
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
    b"\0" * 8), ".npy")
expect_error("npy_rank9", npy_with_header(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)"
    ", }", b"\0" * 4), ".npy")
expect_error("npy_garbage_header", npy_with_header("{'descr': '<f4', ((((("),
             ".npy")
expect_error("npy_hlen", b"\x93NUMPY\x01\x00\xff\xff{", ".npy")
expect_error("npy_hlen_v2", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{", ".npy")
expect_error("npy_version", b"\x93NUMPY\x09\x00\x10\x00" + b" " * 16, ".npy")
expect_error("npy_not", b"PK\x03\x04 this is a zip", ".npy")

f32 = key(2, 0) + varint(1)
expect_error("pb_huge_dims", packed_varints(1, [1 << 40, 1 << 40]) + f32 +
             ld(9, b"\0" * 16))
expect_error("pb_overflow_dims", packed_varints(1, [1 << 62, 1 << 62, 16]) +
             f32 + ld(9, b""))
expect_error("pb_rank9", packed_varints(1, [1] * 9) + f32 + ld(9, b"\0" * 4))
expect_error("pb_neg_dim", packed_varints(1, [-1]) + f32 + ld(9, b""))
expect_error("pb_raw_short", packed_varints(1, [10]) + f32 + ld(9, b"\0" * 8))
expect_error("pb_typed_short", packed_varints(1, [10]) + f32 +
             ld(4, b"\0" * 8))
expect_error("pb_raw_len", packed_varints(1, [2]) + f32 + key(9, 2) +
             varint(1 << 60) + b"\0" * 8)
expect_error("pb_long_varint", key(1, 0) + b"\xff" * 11)
expect_error("pb_string", packed_varints(1, [1]) + key(2, 0) + varint(8) +
             ld(6, b"abc"))
expect_error("pb_bfloat16", packed_varints(1, [1]) + key(2, 0) +
             varint(16) + ld(9, b"\0\0"))
expect_error("pb_external", packed_varints(1, [1]) + f32 + key(14, 0) +
             varint(1))
expect_error("pb_group", key(5, 3) + key(5, 4))
expect_error("pb_wrong_wt", key(4, 0) + varint(3) + f32)
expect_error("pb_packed_frac", packed_varints(1, [1]) + f32 + ld(4, b"\0" * 5))
expect_error("pb_npy_as_pb", good_npy)

rnd = random.Random(11)
for k in range(60):
    base = bytearray(good_pb if k % 2 else good_npy)
    for _ in range(rnd.randint(1, 8)):
        base[rnd.randrange(len(base))] = rnd.randrange(256)
    expect_no_crash("mut%d" % k, bytes(base), ".pb" if k % 2 else ".npy")
for k in range(20):
    expect_no_crash("rand%d" % k, bytes(rnd.randrange(256) for _ in
                                        range(rnd.randint(0, 200))), ".pb")

print("tensor io: %d dtype/shape round trips, %d failures" %
      (count, len(failures)))
sys.exit(1 if failures else 0)
