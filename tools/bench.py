#!/usr/bin/env python3
"""Times dlcc-compiled modules against ONNX Runtime in the same run.

For each model: compile with dlcc, load the module through its C ABI, and
run dlcc and ONNX Runtime alternately on the same inputs with the same
thread count, after a warm-up.  Reports median latencies and the ratio
dlcc/ORT (below 1 means dlcc is faster) and writes the table into
docs/benchmarks.md between the BEGIN/END markers.

Usage: tools/bench.py [--runs N] [--threads T] [--flags "-O3"] [MODEL ...]
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
import dlcc_py  # noqa: E402
import export_models  # noqa: E402
from test_real_models import inputs_for  # noqa: E402

BENCH_SIZES = {"resnet18": (1, 0), "mobilenet_v2": (1, 0), "squeezenet1_1": (1, 0),
               "bert": (1, 64), "gpt2": (1, 64)}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def graph_stats(path, args, flags):
    """dlcc --stats for the model (nodes in/out, kernels, workspace bytes)."""
    p = subprocess.run([args.dlcc, path, "--emit=ir", "-o", os.devnull, "--stats"] + flags,
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def bench_model(name, args, tmp, flags=None):
    flags = shlex.split(args.flags) if flags is None else flags
    path = os.path.join(args.cache, name + ".onnx")
    if not os.path.exists(path):
        export_models.export(name, args.cache)
    # One file per model and flags: the dynamic loader would hand back an
    # already loaded module for a path it has seen.
    tag = re.sub(r"[^A-Za-z0-9]+", "_", " ".join(flags)).strip("_")
    so = os.path.join(tmp, "%s%s.so" % (name, "_" + tag if tag else ""))
    t0 = time.time()
    p = subprocess.run([args.dlcc, path, "-o", so] + flags,
                       capture_output=True, text=True)
    compile_s = time.time() - t0
    if p.returncode != 0:
        return {"name": name, "error": p.stderr.strip().splitlines()[-1:]}
    mod = dlcc_py.Module(so)
    so_opts = ort.SessionOptions()
    so_opts.intra_op_num_threads = args.threads
    so_opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so_opts, providers=["CPUExecutionProvider"])
    batch, seq = BENCH_SIZES[name]
    xs = inputs_for(name, batch, seq, np.random.default_rng(0))
    feed = {i.name: x for i, x in zip(sess.get_inputs(), xs)}
    call, outs = mod.prepare(xs)
    want = sess.run(None, feed)
    call()
    err = max(float(np.max(np.abs(o - w))) for o, w in zip(outs, want))
    for _ in range(args.warmup):
        call()
        sess.run(None, feed)
    td, to = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        call()
        td.append(time.perf_counter() - t)
        t = time.perf_counter()
        sess.run(None, feed)
        to.append(time.perf_counter() - t)
    md, mo = statistics.median(td) * 1e3, statistics.median(to) * 1e3
    return {"name": name, "shape": "batch %d" % batch + (", seq %d" % seq if seq else ""),
            "dlcc_ms": md, "ort_ms": mo, "ratio": md / mo, "err": err,
            "compile_s": compile_s,
            "stats": graph_stats(path, args, flags + ["--stats-sym=batch=%d" % batch] +
                                 (["--stats-sym=seq=%d" % seq] if seq else []))}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dlcc", default=os.path.join(ROOT, "build", "bin", "dlcc"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "test-models"))
    ap.add_argument("--flags", default="", help="extra dlcc flags")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--levels", default="",
                    help="also time at these -O levels, e.g. 0,3 (graph table)")
    ap.add_argument("models", nargs="*", default=export_models.MODELS)
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = bench_model(name, args, tmp)
            rows.append(r)
            if "error" in r:
                print("%-14s dlcc failed: %s" % (name, r["error"]))
            else:
                print("%-14s dlcc %9.2f ms  ort %9.2f ms  ratio %.2f  (max abs diff %.1e, compile %.1f s)" % (
                    name, r["dlcc_ms"], r["ort_ms"], r["ratio"], r["err"], r["compile_s"]), flush=True)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    per_level = {}
    if levels:
        with tempfile.TemporaryDirectory() as tmp:
            for lv in levels:
                for name in args.models:
                    r = bench_model(name, args, tmp, shlex.split(args.flags) + ["-O%d" % lv])
                    per_level[(name, lv)] = r
                    if "error" not in r:
                        print("%-14s -O%d dlcc %9.2f ms  ort %9.2f ms  ratio %.2f" % (
                            name, lv, r["dlcc_ms"], r["ort_ms"], r["ratio"]), flush=True)
    cmd = "tools/bench.py --runs %d --threads %d%s%s" % (
        args.runs, args.threads, (" --flags '%s'" % args.flags) if args.flags else "",
        (" --levels %s" % args.levels) if args.levels else "")
    lines = ["<!-- BEGIN bench -->",
             "Measured %s on %s (%d cores), %d thread(s) for both, %d alternating runs after %d warm-up runs; onnxruntime %s." % (
                 datetime.date.today().isoformat(), cpu_name(), os.cpu_count(), args.threads,
                 args.runs, args.warmup, ort.__version__),
             "Command: `.venv/bin/python %s`" % cmd,
             "",
             "| model | input | dlcc median ms | ORT median ms | dlcc/ORT | max abs diff | dlcc compile s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append("| %s | | failed to compile | | | | |" % r["name"])
        else:
            lines.append("| %s | %s | %.2f | %.2f | %.2f | %.1e | %.1f |" % (
                r["name"], r["shape"], r["dlcc_ms"], r["ort_ms"], r["ratio"], r["err"], r["compile_s"]))
    if any(r.get("stats") for r in rows):
        lines += ["", "Graph after the passes (`dlcc --stats`; bytes for the input sizes of the first table, `--stats-sym`):", "",
                  "| model | nodes in | nodes out | kernels | workspace bytes | sum of intermediates bytes | weights bytes |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            st = r.get("stats")
            if st:
                lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    r["name"], st.get("nodes_in"), st.get("nodes_out"), st.get("kernels"),
                    st.get("arena_bytes"), st.get("intermediate_bytes", ""), st.get("weights_bytes")))
    if per_level:
        lines += ["", "Latency by optimization level (same run; ratio against ONNX Runtime measured alongside):", "",
                  "| model | " + " | ".join("-O%d ms | -O%d dlcc/ORT" % (lv, lv) for lv in levels) + " |",
                  "|---|" + "---:|---:|" * len(levels)]
        for name in args.models:
            cells = []
            for lv in levels:
                r = per_level[(name, lv)]
                cells += (["failed", ""] if "error" in r else
                          ["%.2f" % r["dlcc_ms"], "%.2f" % r["ratio"]])
            lines.append("| %s | %s |" % (name, " | ".join(cells)))
    lines.append("<!-- END bench -->")
    block = "\n".join(lines)
    if not args.no_write:
        text = open(args.out).read() if os.path.exists(args.out) else "# Benchmarks\n\n<!-- BEGIN bench -->\n<!-- END bench -->\n"
        text = re.sub(r"<!-- BEGIN bench -->.*?<!-- END bench -->", lambda m: block, text, flags=re.S)
        with open(args.out, "w") as f:
            f.write(text)
        print("bench: wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
