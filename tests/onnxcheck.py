"""Helpers shared by the Python tests: pass/fail bookkeeping and the small
ONNX building blocks every model-building test uses.

A test script puts tests/ on sys.path, then:

    from onnxcheck import ATOL, Checks, const, vi
    check = Checks()
    check(err <= ATOL, "case: max abs err %.2e" % err)
    ...
    return 1 if check.failed else 0

Importing this module also makes tools/python/dlcc_py.py importable.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))

# Agreement with ONNX Runtime required of every compiled model.
ATOL = 1e-4


class Checks:
    """Prints one ok/FAIL line per check and counts the failures."""

    def __init__(self):
        self.failed = 0

    def __call__(self, cond, msg):
        print(("ok   " if cond else "FAIL ") + msg)
        if not cond:
            self.failed += 1
        return cond


def vi(name, shape, t=TensorProto.FLOAT):
    """A graph input/output of element type t (float by default)."""
    return helper.make_tensor_value_info(name, t, shape)


def const(name, arr):
    """An initializer from anything numpy can turn into an array."""
    return numpy_helper.from_array(np.asarray(arr), name)
