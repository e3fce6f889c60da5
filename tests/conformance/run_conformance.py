#!/usr/bin/env python3
"""Conformance runner over the ONNX backend suite's data.

For every case: compile model.onnx with dlcc, run every test_data_set with
dlcc-run, and compare each output with the suite's reference within the
suite's tolerances.  A case is "pass", "fail" (compiled but wrong, or crashed,
or failed to compile for a reason other than an unsupported op) or
"unsupported" (dlcc refused it with an unsupported-op/feature message).

Writes a per-op report (docs/conformance.md by default) and exits non-zero
when a case listed in the expected-pass file does not pass.
"""
import argparse
import collections
import concurrent.futures as cf
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITES = ["node", "pytorch-converted", "pytorch-operator", "simple", "light"]

# Per-case tolerances the ONNX suite itself uses (onnx/backend/test/runner),
# plus cases whose reference data is computed in float64.
TOLERANCE = {
    "default": (1e-3, 1e-7),
}
LIGHT_TOL = (1e-3, 1e-5)

# Inputs at these positions set a shape, axes or extents.  When a case gives
# them as graph inputs, dlcc cannot compile it as is (exit 3); the runner
# then compiles it again with those inputs frozen to the case's values
# (dlcc --freeze-input), as a user specializing the model would, and
# reports the case as "pass (frozen)".
SHAPE_ARGS = {
    "Reshape": [1], "Expand": [1], "Tile": [1], "Slice": [1, 2, 3, 4],
    "Pad": [1, 3], "Squeeze": [1], "Unsqueeze": [1], "Split": [1],
    "ConstantOfShape": [0], "Range": [0, 1, 2], "Dropout": [1, 2],
    "ReduceSum": [1], "ReduceMean": [1], "ReduceMax": [1], "ReduceMin": [1],
    "ReduceProd": [1], "ReduceSumSquare": [1], "ReduceL2": [1],
    "ReduceL1": [1], "ReduceLogSum": [1], "ReduceLogSumExp": [1],
}


def graph_inputs(model_path):
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]
    shape_like = set()
    for n in m.graph.node:
        for k in SHAPE_ARGS.get(n.op_type, []):
            if k < len(n.input) and n.input[k] in names:
                shape_like.add(n.input[k])
    return names, shape_like


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def list_cases(data_dir, suites, pattern):
    cases = []
    for suite in suites:
        d = os.path.join(data_dir, suite)
        if not os.path.isdir(d):
            continue
        if suite == "light":
            for f in sorted(os.listdir(d)):
                if f.endswith(".onnx"):
                    name = f[:-5]
                    cases.append((suite, name))
        else:
            for name in sorted(os.listdir(d)):
                if os.path.exists(os.path.join(d, name, "model.onnx")):
                    cases.append((suite, name))
    if pattern:
        cases = [c for c in cases if any(p in "%s/%s" % c for p in pattern)]
    return cases


def case_ops(data_dir, suite, name):
    """The op types a case exercises, for the report."""
    if suite == "light":
        return ["(model) " + name]
    try:
        m = onnx.load(os.path.join(data_dir, suite, name, "model.onnx"),
                      load_external_data=False)
    except Exception:
        return ["(unreadable)"]
    ops = sorted({n.op_type for n in m.graph.node})
    if suite == "node" and len(ops) == 1:
        return ops
    if suite == "node":
        return ["(multi-op) " + name.split("_expanded")[0]]
    return ["(%s)" % suite]


def light_inputs(model_path, out_dir):
    """Inputs the ONNX suite feeds the light models (see the data README)."""
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    k = 0
    for inp in m.graph.input:
        if inp.name in inits:
            continue
        shape = [d.dim_value if d.HasField("dim_value") else 1
                 for d in inp.type.tensor_type.shape.dim]
        n = int(np.prod(shape)) if shape else 1
        x = (np.arange(n).reshape(shape) / n).astype(np.float32)
        t = numpy_helper.from_array(x, inp.name)
        with open(os.path.join(out_dir, "input_%d.pb" % k), "wb") as f:
            f.write(t.SerializeToString())
        k += 1


def compare(actual, expected, rtol, atol):
    if actual.shape != expected.shape:
        return "shape %s, expected %s" % (actual.shape, expected.shape)
    if expected.dtype == object:
        return "string outputs not supported"
    if actual.dtype != expected.dtype:
        return "dtype %s, expected %s" % (actual.dtype, expected.dtype)
    if expected.dtype.kind in "fc":
        a = actual.astype(np.float64)
        e = expected.astype(np.float64)
        nan_ok = np.isnan(a) == np.isnan(e)
        if not nan_ok.all():
            return "NaN mismatch"
        mask = ~np.isnan(e)
        a, e = a[mask], e[mask]
        same_inf = np.isinf(e) & (a == e)
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(a - e)
        bad = (err > atol + rtol * np.abs(e)) & ~same_inf
        if bad.any():
            i = int(np.argmax(np.where(bad, err, 0)))
            return "max abs err %.3g at flat %d (got %r, want %r), %d bad of %d" % (
                float(err[i]), i, float(a[i]), float(e[i]), int(bad.sum()), e.size)
        return None
    if not np.array_equal(actual, expected):
        return "values differ (%d of %d)" % (int((actual != expected).sum()), expected.size)
    return None


def run_case(args, suite, name):
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="dlcc-conf-", dir=args.workdir)
    try:
        if suite == "light":
            model = os.path.join(args.data, suite, name + ".onnx")
            sets = [os.path.join(work, "light_set")]
            os.makedirs(sets[0])
            light_inputs(model, sets[0])
            shutil.copy(os.path.join(args.data, suite, name + "_output_0.pb"),
                        os.path.join(sets[0], "output_0.pb"))
            rtol, atol = LIGHT_TOL
        else:
            case_dir = os.path.join(args.data, suite, name)
            model = os.path.join(case_dir, "model.onnx")
            sets = sorted(os.path.join(case_dir, d) for d in os.listdir(case_dir)
                          if d.startswith("test_data_set_"))
            rtol, atol = TOLERANCE.get(name, TOLERANCE["default"])
        so = os.path.join(work, "m.so")
        cmd = [args.dlcc, model, "-o", so] + shlex.split(args.dlcc_flags)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return (suite, name, "fail", "compile timed out", time.time() - t0)
        frozen = []
        if p.returncode == 3 and suite != "light":
            names, shape_like = graph_inputs(model)
            frozen = [(k, nm) for k, nm in enumerate(names) if nm in shape_like]
            if frozen and len(sets) == 1:
                fcmd = list(cmd)
                for k, nm in frozen:
                    fcmd += ["--freeze-input", "%s=%s" % (nm, os.path.join(sets[0], "input_%d.pb" % k))]
                try:
                    p2 = subprocess.run(fcmd, capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    return (suite, name, "fail", "compile timed out", time.time() - t0)
                if p2.returncode == 0:
                    p = p2
                else:
                    frozen = []
            else:
                frozen = []
        if p.returncode != 0:
            msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
            msg = " | ".join(msg[:3])[:300]
            if p.returncode < 0:
                return (suite, name, "fail", "dlcc crashed (signal %d): %s" % (-p.returncode, msg), time.time() - t0)
            # dlcc exits 3 when it refuses a valid model it cannot handle yet
            # (DL_ERR_UNSUPPORTED); everything else is a failure.
            status = "unsupported" if p.returncode == 3 else "fail"
            return (suite, name, status, "compile: " + msg, time.time() - t0)
        for s in sets:
            out = os.path.join(work, "out_" + os.path.basename(s))
            os.makedirs(out)
            cmd = shlex.split(args.run_prefix) + [args.dlcc_run, so, "--output-dir", out]
            if frozen:
                skip = {k for k, _ in frozen}
                for k, nm in enumerate(names):
                    if k not in skip:
                        cmd += ["--input", "%s=%s" % (nm, os.path.join(s, "input_%d.pb" % k))]
            else:
                cmd += ["--input-dir", s]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                return (suite, name, "fail", "run timed out", time.time() - t0)
            if p.returncode != 0:
                msg = " | ".join((p.stderr.strip() or p.stdout.strip()).splitlines()[:3])[:300]
                return (suite, name, "fail", "run (rc %d): %s" % (p.returncode, msg), time.time() - t0)
            k = 0
            while os.path.exists(os.path.join(s, "output_%d.pb" % k)):
                exp = load_pb(os.path.join(s, "output_%d.pb" % k))
                got_path = os.path.join(out, "output_%d.pb" % k)
                if not os.path.exists(got_path):
                    return (suite, name, "fail", "output_%d missing" % k, time.time() - t0)
                err = compare(load_pb(got_path), exp, rtol, atol)
                if err:
                    return (suite, name, "fail", "%s output_%d: %s" % (os.path.basename(s), k, err), time.time() - t0)
                k += 1
        return (suite, name, "pass", "frozen" if frozen else "", time.time() - t0)
    except Exception as e:  # a harness problem is a failure of the case, reported
        return (suite, name, "fail", "harness: %r" % (e,), time.time() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_report(path, results, ops_of, args):
    per_op = collections.OrderedDict()
    for (suite, name, status, msg, dt) in results:
        for op in ops_of[(suite, name)]:
            row = per_op.setdefault(op, collections.Counter())
            row[status] += 1
    tot = collections.Counter(r[2] for r in results)
    by_suite = collections.defaultdict(collections.Counter)
    for r in results:
        by_suite[r[0]][r[2]] += 1
    lines = []
    lines.append("# Conformance")
    lines.append("")
    lines.append("Generated by `tests/conformance/run_conformance.py` over the ONNX backend")
    lines.append("suite's data (`../shared/onnx-tests`): every case is compiled with `dlcc`,")
    lines.append("run with `dlcc-run` on each of its test data sets, and compared with the")
    lines.append("suite's outputs (rtol 1e-3, atol 1e-7; the light models rtol 1e-3, atol 1e-5).")
    lines.append("`unsupported` means dlcc refused the model with a message naming the op or")
    lines.append("feature; `fail` means it compiled but gave wrong results, or failed otherwise.")
    lines.append("")
    flags = args.dlcc_flags or "(defaults)"
    lines.append("Command: `python3 tests/conformance/run_conformance.py` (dlcc flags: %s)" % flags)
    lines.append("")
    frozen = collections.Counter(r[0] for r in results if r[2] == "pass" and r[3] == "frozen")
    lines.append("| suite | pass | of which with frozen shape inputs | fail | unsupported |")
    lines.append("|---|---:|---:|---:|---:|")
    for suite in SUITES:
        if suite in by_suite:
            c = by_suite[suite]
            lines.append("| %s | %d | %d | %d | %d |" % (suite, c["pass"], frozen[suite], c["fail"], c["unsupported"]))
    lines.append("| **all** | %d | %d | %d | %d |" % (tot["pass"], sum(frozen.values()), tot["fail"], tot["unsupported"]))
    lines.append("")
    lines.append("\"Frozen shape inputs\": the case gives a shape, axes or extents as a graph")
    lines.append("input; dlcc compiles static shapes, so the runner passes those inputs' values")
    lines.append("at compile time (`dlcc --freeze-input NAME=FILE`) and runs the rest.")
    lines.append("")
    lines.append("## Per op")
    lines.append("")
    lines.append("Node cases with one op are counted under that op; other cases under their name.")
    lines.append("")
    lines.append("| op | pass | fail | unsupported |")
    lines.append("|---|---:|---:|---:|")
    for op in sorted(per_op):
        c = per_op[op]
        lines.append("| %s | %d | %d | %d |" % (op, c["pass"], c["fail"], c["unsupported"]))
    lines.append("")
    fails = [r for r in results if r[2] == "fail"]
    if fails:
        lines.append("## Failing cases")
        lines.append("")
        for (suite, name, status, msg, dt) in sorted(fails):
            lines.append("- `%s/%s`: %s" % (suite, name, msg.replace("|", "/")))
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "onnx-tests"))
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    ap.add_argument("--dlcc-run", default=os.path.join(ROOT, "build", "bin", "dlcc-run"))
    ap.add_argument("--dlcc-flags", default="", help="extra flags for dlcc")
    ap.add_argument("--run-prefix", default="", help="command prefix for dlcc-run (e.g. qemu)")
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("-k", dest="pattern", action="append", help="substring filter (repeatable)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--report", default=os.path.join(ROOT, "docs", "conformance.md"))
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--expected", default=os.path.join(ROOT, "tests", "conformance", "expected_pass.txt"))
    ap.add_argument("--update-expected", action="store_true",
                    help="write the passing cases as the new expected-pass list")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.data = os.path.abspath(args.data)
    if not os.path.isdir(args.data):
        sys.exit("run_conformance: data folder %s not found" % args.data)
    for tool in (args.dlcc, args.dlcc_run):
        if not os.path.exists(tool):
            sys.exit("run_conformance: %s not found (build first)" % tool)

    cases = list_cases(args.data, args.suites.split(","), args.pattern)
    ops_of = {c: case_ops(args.data, *c) for c in cases}
    t0 = time.time()
    results = []
    with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futs = [ex.submit(run_case, args, s, n) for (s, n) in cases]
        for f in cf.as_completed(futs):
            r = f.result()
            results.append(r)
            if args.verbose or r[2] == "fail":
                print("%-11s %s/%s %s" % (r[2].upper(), r[0], r[1], r[3]), flush=True)
    results.sort()
    tot = collections.Counter(r[2] for r in results)
    print("conformance: %d cases in %.0f s: %d pass, %d fail, %d unsupported" % (
        len(results), time.time() - t0, tot["pass"], tot["fail"], tot["unsupported"]))

    full_run = not args.pattern and args.suites == ",".join(SUITES)
    if not args.no_report and full_run:
        write_report(args.report, results, ops_of, args)
        print("conformance: wrote %s" % args.report)

    passed = {"%s/%s" % (r[0], r[1]) for r in results if r[2] == "pass"}
    ran = {"%s/%s" % (r[0], r[1]) for r in results}
    if args.update_expected:
        keep = set()
        if os.path.exists(args.expected):
            with open(args.expected) as f:
                keep = {l.strip() for l in f if l.strip() and not l.startswith("#")} - ran
        with open(args.expected, "w") as f:
            f.write("# Cases that must pass (tests/conformance/run_conformance.py --update-expected)\n")
            for c in sorted(passed | keep):
                f.write(c + "\n")
        print("conformance: expected-pass list now has %d cases" % len(passed | keep))
        return 0
    expected = set()
    if os.path.exists(args.expected):
        with open(args.expected) as f:
            expected = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    expected &= ran
    regressions = sorted(expected - passed)
    newly = sorted(passed - expected)
    if newly:
        print("conformance: %d cases pass that are not in the expected list (run with --update-expected)" % len(newly))
    for c in regressions:
        print("REGRESSION  %s" % c)
    print("%d passed, %d failed" % (len(expected) - len(regressions), len(regressions)))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
