/*
 * driver.h - the whole compilation, from a model file to a module.
 *
 *   import (ONNX, or textual IR for *.ir) -> verify -> infer -> verify typed
 *   -> passes -> lower to kernel IR -> storage plan -> backend -> header
 *
 * Nothing half-written is left behind on failure: every output file is
 * written to a temporary name and renamed into place.
 */
#ifndef DLCC_DRIVER_H
#define DLCC_DRIVER_H

#include "ir/base.h"

#include <stdint.h>

typedef enum DlEmitKind {
  DL_EMIT_SO = 0, /* shared object + header (default) */
  DL_EMIT_C,      /* C source X.c + header X.h */
  DL_EMIT_IR,     /* textual IR after the passes */
  DL_EMIT_KIR,    /* kernel IR dump */
  DL_EMIT_PLAN    /* storage plan dump */
} DlEmitKind;

typedef struct DlCompileOptions {
  const char *input;  /* model.onnx or graph.ir */
  const char *output; /* NULL: <input stem>.so / .c; stdout for ir/kir */
  DlEmitKind emit;
  int opt_level;      /* 0..3 */
  const char *prefix; /* entry point prefix; NULL: output stem sanitized */
  const char *target; /* NULL or "host" */
  /* Weight blobs larger than this go to <output>.weights; 0 = default. */
  uint64_t sidecar_threshold;
  bool no_header; /* do not write the .h next to the output */
  /* Added for the LLVM backend and cross compilation: */
  const char *backend;  /* "c", "llvm" or NULL (llvm when built with it) */
  const char *cpu;      /* --cpu= refinement of the target, or NULL */
  const char *features; /* --features= refinement, or NULL */
  /* --freeze-input NAME=FILE: inputs made constants before inference. */
  int nfreeze;
  const char **freeze_names;
  const char **freeze_files;
  /* Added for the pass manager (passes/pass.h, docs/passes.md): */
  const char *passes;                /* --passes=a,b,c or NULL */
  const char *const *disable_passes; /* --disable-pass=NAME, repeatable */
  int ndisable_passes;
  const char *const *print_ir_after; /* --print-ir-after=NAME */
  int nprint_ir_after;
  bool print_ir_after_all; /* --print-ir-after-all */
  const char *dump_dot;    /* --dump-dot=DIR */
  bool verify_each_pass;   /* --verify-each-pass */
  bool stats;              /* --stats: one JSON object on stdout */
  /* --stats-sym=NAME=N: symbol values for the byte figures of --stats
   * (every other symbol counts as 1). */
  int nstats_syms;
  const char *const *stats_sym_names;
  const int64_t *stats_sym_values;
} DlCompileOptions;

/* Compiles o->input as described above; diagnostics are left in ctx. */
DlStatus dlcc_compile(DlCtx *ctx, const DlCompileOptions *o);

/* Turns the stem of path ("dir/my-model.so" -> "my_model") into a C
 * identifier in the arena. */
char *dlcc_prefix_from_path(DlCtx *ctx, const char *path);

#endif
