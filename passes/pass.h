/*
 * pass.h - graph passes, the pass manager and the rewrite engine.
 *
 * A pass is a named function over the graph that reports whether it changed
 * anything.  The pass table (passes/manager.c) lists every pass once with
 * the lowest -O level that runs it; the driver asks the manager to run the
 * pipeline for the options given (-O level, --passes, --disable-pass), with
 * the verifier after each pass when verify_each_pass is set, IR printing
 * and Graphviz dumps after passes on request, and timing for --stats.
 *
 * Most passes are a short table of rewrite rules (DlRule) driven to a fixed
 * point by dl_rewrite(): each rule names the op it is rooted at and a
 * callback that either rewrites the graph around that node and returns true,
 * or declines by returning false without touching anything.
 *
 * Passes run after dl_infer_graph: every value has dtype and shape.  A pass
 * that creates nodes or values must give them dtype and shape too (calling
 * the op's infer function through dl_op_info is the easy way), and must keep
 * g->nodes in topological order (dl_graph_insert_before / dl_graph_toposort).
 */
#ifndef DLCC_PASS_H
#define DLCC_PASS_H

#include "ir/ir.h"

typedef DlStatus (*DlPassFn)(DlGraph *g, bool *changed);

typedef struct DlPass {
  const char *name; /* "fold", "dce", "cse", "simplify", ... */
  int min_level;    /* runs at -O<min_level> and above */
  DlPassFn run;
  const char *summary; /* one line for --help / docs */
} DlPass;

/* One prototype per row of passes/passes.def. */
#define DL_PASS(name, level, fn, summary)                                      \
  DlStatus fn(DlGraph *g, bool *changed);
#include "passes/passes.def"
#undef DL_PASS

/* ---- rewrite rules ---------------------------------------------------- */

/* Returns true when it rewrote (and sets *st on error), false to decline. */
typedef bool (*DlRewriteFn)(DlGraph *g, DlNode *n, DlStatus *st);

typedef struct DlRule {
  const char *name; /* for --stats and debugging */
  DlOp root;        /* op the pattern is rooted at; DL_OP_UNKNOWN = any */
  DlRewriteFn rewrite;
} DlRule;

/* Applies rules over all live nodes repeatedly until none fires (bounded
 * by an iteration limit); sets *changed when any fired. */
DlStatus dl_rewrite(DlGraph *g, const DlRule *rules, int nrules, bool *changed);

/* ---- helpers for rule writers (passes/rewrite.c) ----------------------- */

/* Makes every live use of value `from` read `to` instead.  Graph outputs
 * keep their value (name and id): when `from` is a graph output, `to`'s
 * producer is made to write `from` instead and `to`'s uses read `from`.
 * Declines (returns false, changes nothing) when the two differ in dtype or
 * shape, or when `from` is a graph output and `to` is not produced by a live
 * node or is itself a graph input or output.  The node that produced `from`
 * is left for the caller to kill (its output slot is cleared when `from`
 * moves). */
bool dl_can_replace_uses(const DlGraph *g, const DlValue *from,
                         const DlValue *to);
bool dl_replace_uses(DlGraph *g, DlValue *from, DlValue *to);

/* Marks n dead (removed from the graph). */
void dl_node_kill(DlGraph *g, DlNode *n);

/* A new node placed just before `before` in g->nodes (keeping topological
 * order: its inputs must be defined before `before`).  Node ids and value
 * producers are renumbered.  Its outputs are made with dl_node_new_output. */
DlNode *dl_node_insert_before(DlGraph *g, const DlNode *before, DlOp op,
                              const char *name, int nin, int nout);
/* A fresh value written by output slot `slot` of n (name NULL: generated). */
DlValue *dl_node_new_output(DlGraph *g, DlNode *n, int slot, const char *name);
/* Re-runs n's shape and type inference (the op's infer function). */
DlStatus dl_node_infer(DlGraph *g, DlNode *n);
/* Sets (adds or replaces) an INT / FLOAT / INTS attribute of n. */
bool dl_node_set_attr_int(DlGraph *g, DlNode *n, const char *name, int64_t v);
bool dl_node_set_attr_float(DlGraph *g, DlNode *n, const char *name, float v);
bool dl_node_set_attr_ints(DlGraph *g, DlNode *n, const char *name,
                           const int64_t *v, int count);
/* Replaces the input array of n by a copy of in[0..nin). */
bool dl_node_set_inputs(DlGraph *g, DlNode *n, const int *in, int nin);

/* A new constant value with the given dtype, constant dims and data (copied
 * into the arena). */
DlValue *dl_const_new(DlGraph *g, const char *name, DlDType dtype, int rank,
                      const int64_t *dims, const void *data);

/* The live node that writes v, or NULL (inputs, constants). */
DlNode *dl_producer(const DlGraph *g, const DlValue *v);
/* Number of live input slots reading v (graph outputs not counted). */
int dl_value_nuses(const DlGraph *g, const DlValue *v);
/* True when v is not a graph output and every live use is by node n. */
bool dl_value_used_only_by(const DlGraph *g, const DlValue *v, const DlNode *n);
/* True when v is constant (has data) and every element equals x. */
bool dl_value_is_const_scalar(const DlValue *v, double x);
/* Element k of a constant numeric value as a double (v->data required). */
double dl_value_elem(const DlValue *v, int64_t k);
/* Same dtype, rank and dims. */
bool dl_value_same_type(const DlValue *a, const DlValue *b);

/* ---- the pass manager (passes/manager.c) ------------------------------ */

/* The pass table (passes.def), in pipeline order. */
const DlPass *dl_pass_table(int *count);
const DlPass *dl_pass_find(const char *name);
/* "dce, cse, ..." (arena string): the valid names, for messages. */
const char *dl_pass_names(DlCtx *ctx);

typedef struct DlPassOptions {
  int level;                  /* -O level: rows with min_level <= level */
  const char *passes;         /* --passes=a,b,c: exactly those, or NULL */
  const char *const *disable; /* --disable-pass names */
  int ndisable;
  const char *const *print_after; /* --print-ir-after names */
  int nprint_after;
  bool print_after_all;
  const char *dump_dot; /* directory for Graphviz drawings, or NULL */
  void *print_file;     /* FILE* for printed IR; NULL: stderr */
} DlPassOptions;

/* One executed pass, for --stats. */
typedef struct DlPassRun {
  const char *name;
  double ms;
  bool changed;
} DlPassRun;

/* Checks every pass name in o (usage error naming the valid passes). */
DlStatus dl_pass_check_options(DlCtx *ctx, const DlPassOptions *o);
/* Runs the pipeline o describes over g; verifies after each pass when
 * g->ctx->opt.verify_each_pass.  *runs (arena) / *nruns may be NULL. */
DlStatus dl_run_passes(DlGraph *g, const DlPassOptions *o, DlPassRun **runs,
                       int *nruns);

/* ---- Graphviz (passes/dot.c) ------------------------------------------- */

/* Writes g as a Graphviz digraph to path. */
DlStatus dl_dot_write(DlGraph *g, const char *path);

#endif
