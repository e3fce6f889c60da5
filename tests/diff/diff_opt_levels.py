#!/usr/bin/env python3
"""Differential test of the graph passes: -O0 against -O3.

For every case of the ONNX conformance data that dlcc compiles at -O0, and
for the real models of tests/models/export_models.py:

  1. print the graph after the passes at -O0 and at -O3 (--emit=ir, fast:
     no C compiler).  Identical graphs give identical modules: done.
  2. otherwise compile both into modules, run both on the case's inputs
     and compare the outputs with each other within the suite tolerance
     (rtol 1e-3; atol the suite's, at least 1e-5 since -O3 may reassociate
     sums: Gemm with bias, Div -> Mul by the reciprocal).

A case fails when -O0 compiles and -O3 does not, when either run fails
while the other succeeds, or when outputs differ.  Exits non-zero on any
failure.  Every run uses --verify-each-pass.

Usage: diff_opt_levels.py --dlcc DLCC --dlcc-run DLCC_RUN [--cache DIR]
                          [-k SUBSTR]... [--no-models] [-j N]
"""
import argparse
import concurrent.futures as cf
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
import run_conformance as rc  # noqa: E402

LEVELS = ("-O0", "-O3")
MIN_ATOL = 1e-5


def dlcc(args, model, *extra):
    cmd = [args.dlcc, model, "--verify-each-pass"] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)


def first_lines(p):
    return " | ".join((p.stderr.strip() or p.stdout.strip()).splitlines()[:3])[:300]


def run_sets(args, so, sets, work, tag):
    """Runs so on every input set; returns {set: [arrays]} or an error."""
    outs = {}
    for s in sets:
        out = os.path.join(work, "%s_%s" % (tag, os.path.basename(s)))
        os.makedirs(out)
        p = subprocess.run([args.dlcc_run, so, "--input-dir", s, "--output-dir", out],
                           capture_output=True, text=True, timeout=args.timeout)
        if p.returncode != 0:
            return None, "run %s (rc %d): %s" % (tag, p.returncode, first_lines(p))
        arrs, k = [], 0
        while os.path.exists(os.path.join(out, "output_%d.pb" % k)):
            arrs.append(rc.load_pb(os.path.join(out, "output_%d.pb" % k)))
            k += 1
        outs[s] = arrs
    return outs, None


def diff_case(args, suite, name):
    """Returns (suite, name, status, detail): status is one of skip (does
    not compile at -O0), same (same graph), pass, fail."""
    work = tempfile.mkdtemp(prefix="dlcc-diff-")
    try:
        if suite == "light":
            model = os.path.join(args.data, suite, name + ".onnx")
            sets = [os.path.join(work, "light_set")]
            os.makedirs(sets[0])
            rc.light_inputs(model, sets[0])
            rtol, atol = rc.LIGHT_TOL
        else:
            case_dir = os.path.join(args.data, suite, name)
            model = os.path.join(case_dir, "model.onnx")
            sets = sorted(os.path.join(case_dir, d) for d in os.listdir(case_dir)
                          if d.startswith("test_data_set_"))
            rtol, atol = rc.TOLERANCE.get(name, rc.TOLERANCE["default"])
        atol = max(atol, MIN_ATOL)
        irs = []
        for lv in LEVELS:
            p = dlcc(args, model, lv, "--emit=ir", "-o", os.path.join(work, lv + ".ir"))
            if p.returncode != 0:
                if lv == LEVELS[0]:
                    return (suite, name, "skip", "")
                if p.returncode < 0:
                    return (suite, name, "fail", "-O3 crashed: " + first_lines(p))
                return (suite, name, "fail", "-O3 does not compile: " + first_lines(p))
            with open(os.path.join(work, lv + ".ir")) as f:
                irs.append(f.read())
        if irs[0] == irs[1]:
            return (suite, name, "same", "")
        results = []
        for lv in LEVELS:
            so = os.path.join(work, "m%s.so" % lv)
            p = dlcc(args, model, lv, "-o", so)
            if p.returncode != 0:
                if lv == LEVELS[0]:
                    return (suite, name, "skip", "")
                return (suite, name, "fail", "-O3 does not build: " + first_lines(p))
            outs, err = run_sets(args, so, sets, work, lv)
            results.append((outs, err))
        (o0, e0), (o3, e3) = results
        if e0 and e3:
            return (suite, name, "skip", "")
        if e0 or e3:
            return (suite, name, "fail", e0 or e3)
        for s in sets:
            if len(o0[s]) != len(o3[s]):
                return (suite, name, "fail", "output counts differ")
            for k, (a, b) in enumerate(zip(o3[s], o0[s])):
                err = rc.compare(a, b, rtol, atol)
                if err:
                    return (suite, name, "fail", "%s output_%d: %s" % (os.path.basename(s), k, err))
        return (suite, name, "pass", "")
    except Exception as e:  # harness trouble is a failure of the case
        return (suite, name, "fail", "harness: %r" % (e,))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def diff_model(args, name, tmp):
    """One real model at both levels; returns (failed, line)."""
    try:
        return diff_model_(args, name, tmp)
    except Exception as e:  # harness trouble is a failure of the model
        return 1, "FAIL model %s: harness: %r" % (name, e)


def diff_model_(args, name, tmp):
    import export_models
    import dlcc_py
    from test_real_models import inputs_for, SIZES
    t0 = time.time()
    path = os.path.join(args.cache, name + ".onnx")
    if not os.path.exists(path):
        export_models.export(name, args.cache)
    mods = []
    for lv in LEVELS:
        so = os.path.join(tmp, "%s%s.so" % (name, lv))
        p = dlcc(args, path, lv, "-o", so)
        if p.returncode != 0:
            return 1, "FAIL model %s %s: dlcc exited %d: %s" % (name, lv, p.returncode, first_lines(p))
        mods.append(dlcc_py.Module(so))
    batch, seq = SIZES[name][-1]
    xs = inputs_for(name, batch, seq, np.random.default_rng(1))
    try:
        a, b = mods[0].run(xs), mods[1].run(xs)
    except dlcc_py.DlccError as e:
        return 1, "FAIL model %s: %s" % (name, e)
    worst = None
    for k, (x0, x3) in enumerate(zip(a, b)):
        err = rc.compare(np.asarray(x3), np.asarray(x0), 1e-3, 1e-4)
        if err:
            worst = "output %d: %s" % (k, err)
    return (1 if worst else 0), "%s model %s (%.1fs)%s" % (
        "FAIL" if worst else "ok  ", name, time.time() - t0, ": " + worst if worst else "")


def diff_models(args):
    """The real models: compiled at both levels, run through the module ABI
    (the models run side by side, args.jobs at a time)."""
    os.makedirs(args.cache, exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="dlcc-diff-models-") as tmp:
        # export first, one at a time (torch is not thread-safe to import)
        import export_models
        for name in args.models:
            if not os.path.exists(os.path.join(args.cache, name + ".onnx")):
                export_models.export(name, args.cache)
        with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            for bad, line in ex.map(lambda n: diff_model(args, n, tmp), args.models):
                print(line)
                failed += bad
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "onnx-tests"))
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    ap.add_argument("--dlcc-run", default=os.path.join(ROOT, "build", "bin", "dlcc-run"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "test-models"))
    # "light" (large zoo models) is left out by default: the real models
    # below cover whole networks at a fraction of the time.
    ap.add_argument("--suites", default=",".join(s for s in rc.SUITES if s != "light"))
    ap.add_argument("-k", dest="pattern", action="append", help="substring filter (repeatable)")
    ap.add_argument("--models", default="all",
                    help="comma-separated real models, 'all' or 'none'")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    import export_models
    args.models = (export_models.MODELS if args.models == "all" else
                   [] if args.models == "none" else args.models.split(","))

    t0 = time.time()
    cases = rc.list_cases(args.data, args.suites.split(","), args.pattern)
    counts = {"skip": 0, "same": 0, "pass": 0, "fail": 0}
    failures = []
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for suite, name, status, detail in ex.map(lambda c: diff_case(args, *c), cases):
            counts[status] += 1
            if status == "fail":
                failures.append("%s/%s: %s" % (suite, name, detail))
            if args.verbose and status in ("pass", "fail"):
                print("%-4s %s/%s %s" % (status, suite, name, detail))
    for f in failures:
        print("FAIL " + f)
    print("diff -O0/-O3: %d cases: %d same graph, %d differ and agree, %d fail, "
          "%d not compiled at -O0 (%.0fs)" % (len(cases), counts["same"], counts["pass"],
                                              counts["fail"], counts["skip"], time.time() - t0))
    failed = len(failures)
    if args.models:
        failed += diff_models(args)
    print("diff: %s (%.0fs)" % ("FAIL" if failed else "ok", time.time() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
