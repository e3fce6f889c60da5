"""Load and run a dlcc module from Python through its fixed C ABI.

Used by the tests and the benchmark tool.  Only ctypes and numpy: the module
is found through the one exported symbol `dlcc_module_v1` (see
include/dlcc/dlcc_module.h), exactly as the C runtime does.
"""
import ctypes
import os

import numpy as np

MAX_RANK = 8

DTYPES = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16,
    6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64,
    12: np.uint32, 13: np.uint64,
}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("ndim", ctypes.c_int32),
                ("dtype", ctypes.c_int32)]


class IODesc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p),
                ("dtype", ctypes.c_int32),
                ("ndim", ctypes.c_int32),
                ("dims", ctypes.c_int64 * MAX_RANK)]


BIND = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(Tensor),
                        ctypes.POINTER(ctypes.c_int64))
WSSIZE = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.POINTER(ctypes.c_int64))
OUTSHAPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32,
                            ctypes.POINTER(ctypes.c_int64),
                            ctypes.POINTER(ctypes.c_int64))
RUN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.POINTER(Tensor),
                       ctypes.POINTER(Tensor), ctypes.c_void_p,
                       ctypes.c_uint64, ctypes.c_void_p)


class ModuleDesc(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_int32),
                ("name", ctypes.c_char_p),
                ("num_inputs", ctypes.c_int32),
                ("num_outputs", ctypes.c_int32),
                ("num_syms", ctypes.c_int32),
                ("inputs", ctypes.POINTER(IODesc)),
                ("outputs", ctypes.POINTER(IODesc)),
                ("sym_names", ctypes.POINTER(ctypes.c_char_p)),
                ("sidecar_weights_bytes", ctypes.c_uint64),
                ("bind", BIND),
                ("workspace_size", WSSIZE),
                ("output_shape", OUTSHAPE),
                ("run", RUN)]


class DlccError(RuntimeError):
    pass


class Module:
    """One loaded module.  run() takes numpy arrays in input order."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.lib = ctypes.CDLL(self.path, mode=os.RTLD_LOCAL | os.RTLD_NOW)
        fn = self.lib.dlcc_module_v1
        fn.restype = ctypes.POINTER(ModuleDesc)
        self.desc = fn().contents
        if self.desc.abi_version != 1:
            raise DlccError("%s: ABI version %d" % (path, self.desc.abi_version))
        self.weights = None
        if self.desc.sidecar_weights_bytes:
            with open(self.path + ".weights", "rb") as f:
                blob = f.read()
            self.weights = ctypes.create_string_buffer(blob, len(blob))
        self._ws = None
        self._ws_bytes = 0

    @property
    def input_names(self):
        return [self.desc.inputs[i].name.decode()
                for i in range(self.desc.num_inputs)]

    @property
    def output_names(self):
        return [self.desc.outputs[i].name.decode()
                for i in range(self.desc.num_outputs)]

    def input_dtypes(self):
        return [DTYPES[self.desc.inputs[i].dtype]
                for i in range(self.desc.num_inputs)]

    def _tensors(self, arrays):
        keep = []
        ts = (Tensor * max(1, len(arrays)))()
        for i, a in enumerate(arrays):
            shape = (ctypes.c_int64 * max(1, a.ndim))(*a.shape)
            keep.append(shape)
            ts[i].data = a.ctypes.data
            ts[i].shape = shape
            ts[i].ndim = a.ndim
            ts[i].dtype = CODES[a.dtype]
        return ts, keep

    def prepare(self, arrays):
        """Binds shapes and allocates outputs and workspace; returns a
        callable that runs the module once and the list of outputs."""
        d = self.desc
        if len(arrays) != d.num_inputs:
            raise DlccError("expected %d inputs, got %d" %
                            (d.num_inputs, len(arrays)))
        arrays = [np.require(a, requirements='C') for a in arrays]
        ins, keep = self._tensors(arrays)
        syms = (ctypes.c_int64 * max(1, d.num_syms))()
        st = d.bind(ins, syms)
        if st:
            raise DlccError("bind failed with status %d" % st)
        outs = []
        for i in range(d.num_outputs):
            dims = (ctypes.c_int64 * MAX_RANK)()
            st = d.output_shape(i, syms, dims)
            if st:
                raise DlccError("output_shape failed with status %d" % st)
            o = d.outputs[i]
            outs.append(np.empty([dims[k] for k in range(o.ndim)],
                                 dtype=DTYPES[o.dtype]))
        outt, keep2 = self._tensors(outs)
        ws_bytes = d.workspace_size(syms)
        if ws_bytes > self._ws_bytes:
            self._ws = np.zeros(ws_bytes + 64, dtype=np.uint8)
            self._ws_bytes = ws_bytes
        base = self._ws.ctypes.data if self._ws is not None else 0
        ws = (base + 63) & ~63 if base else None
        weights = ctypes.addressof(self.weights) if self.weights else None
        run = d.run
        refs = (arrays, ins, keep, outt, keep2, self._ws)

        def call():
            _ = refs
            st = run(ins, outt, ws, ws_bytes, weights)
            if st:
                raise DlccError("run failed with status %d" % st)
        return call, outs

    def run(self, arrays):
        call, outs = self.prepare(arrays)
        call()
        return outs
