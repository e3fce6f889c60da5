/*
 * verify.c - the structural verifier.
 */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

/* Where each value is defined, while walking nodes in order. */
enum { DEF_NONE = 0, DEF_INPUT, DEF_CONST, DEF_NODE, DEF_OUTER };

/* A subgraph may use values of its enclosing graphs (by name), as ONNX
 * control-flow bodies do; the value has no producer of its own. */
static bool defined_outside(const DlGraph *g, const DlValue *v) {
  if (v->producer >= 0 || !v->name)
    return false;
  for (const DlGraph *p = g->parent; p; p = p->parent)
    for (int i = 0; i < p->nvalues; i++)
      if (p->values[i] && p->values[i]->name &&
          strcmp(p->values[i]->name, v->name) == 0)
        return true;
  return false;
}

static const char *gname(const DlGraph *g) {
  return g->name ? g->name : "?";
}

DlStatus dl_verify(DlGraph *g, bool typed) {
  DlCtx *ctx = g->ctx;
  DlStatus st = DL_OK;
  if (g->nvalues < 0 || g->nnodes < 0 || g->ninputs < 0 || g->noutputs < 0)
    return dl_error(ctx, DL_ERR_INTERNAL, "graph '%s': negative counts",
                    gname(g));
  unsigned char *def = calloc((size_t)g->nvalues + 1, 1);
  if (!def)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory in verifier");

  for (int i = 0; i < g->nvalues; i++) {
    const DlValue *v = g->values[i];
    if (!v) {
      st = dl_error(ctx, DL_ERR_INTERNAL, "graph '%s': value %d is NULL",
                    gname(g), i);
      goto done;
    }
    if (v->id != i) {
      st = dl_error(ctx, DL_ERR_INTERNAL,
                    "graph '%s': value '%s' has id %d at index %d", gname(g),
                    v->name ? v->name : "", v->id, i);
      goto done;
    }
    if (v->rank > DL_MAX_RANK) {
      st = dl_error(ctx, DL_ERR_INTERNAL, "graph '%s': value '%s' has rank %d",
                    gname(g), v->name ? v->name : "", v->rank);
      goto done;
    }
  }
  for (int i = 0; i < g->ninputs; i++) {
    int id = g->inputs[i];
    if (id < 0 || id >= g->nvalues) {
      st =
          dl_error(ctx, DL_ERR_INTERNAL,
                   "graph '%s': input %d has bad value id %d", gname(g), i, id);
      goto done;
    }
    if (def[id]) {
      st = dl_error(ctx, DL_ERR_INVALID,
                    "graph '%s': value '%s' is listed as input twice", gname(g),
                    g->values[id]->name);
      goto done;
    }
    def[id] = DEF_INPUT;
  }
  /* constants: data and no live producer (a folded node may keep its
   * producer and data both; then the node defines it) */
  for (int i = 0; i < g->nvalues; i++) {
    const DlValue *v = g->values[i];
    if (def[i] || !v->data)
      continue;
    if (v->producer < 0 || v->producer >= g->nnodes || !g->nodes[v->producer] ||
        g->nodes[v->producer]->dead)
      def[i] = DEF_CONST;
  }

  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (!n) {
      st = dl_error(ctx, DL_ERR_INTERNAL, "graph '%s': node %d is NULL",
                    gname(g), k);
      goto done;
    }
    if (n->id != k) {
      st = dl_error_node(ctx, n, DL_ERR_INTERNAL, "has id %d at index %d",
                         n->id, k);
      goto done;
    }
    if (n->dead)
      continue;
    if (n->op < 0 || n->op >= DL_OP_COUNT) {
      st = dl_error_node(ctx, n, DL_ERR_INTERNAL, "bad op %d", (int)n->op);
      goto done;
    }
    if (n->nin < 0 || n->nout < 0 || (n->nin && !n->in) ||
        (n->nout && !n->out)) {
      st = dl_error_node(ctx, n, DL_ERR_INTERNAL, "bad input/output arrays");
      goto done;
    }
    for (int i = 0; i < n->nin; i++) {
      int id = n->in[i];
      if (id == -1)
        continue;
      if (id < 0 || id >= g->nvalues) {
        st = dl_error_node(ctx, n, DL_ERR_INTERNAL,
                           "input %d has bad value id %d", i, id);
        goto done;
      }
      if (!def[id] && defined_outside(g, g->values[id]))
        def[id] = DEF_OUTER;
      if (!def[id]) {
        st = dl_error_node(ctx, n, DL_ERR_INVALID,
                           "input %d '%s' is not defined before use", i,
                           g->values[id]->name);
        goto done;
      }
    }
    for (int i = 0; i < n->nout; i++) {
      int id = n->out[i];
      if (id == -1)
        continue;
      if (id < 0 || id >= g->nvalues) {
        st = dl_error_node(ctx, n, DL_ERR_INTERNAL,
                           "output %d has bad value id %d", i, id);
        goto done;
      }
      if (def[id]) {
        st = dl_error_node(ctx, n, DL_ERR_INVALID,
                           "output %d '%s' is already defined", i,
                           g->values[id]->name);
        goto done;
      }
      if (g->values[id]->producer != k) {
        st = dl_error_node(ctx, n, DL_ERR_INTERNAL,
                           "output %d '%s' names producer %d", i,
                           g->values[id]->name, g->values[id]->producer);
        goto done;
      }
      def[id] = DEF_NODE;
    }
    for (int i = 0; i < n->nattr; i++) {
      if (!n->attrs || !n->attrs[i].name) {
        st = dl_error_node(ctx, n, DL_ERR_INTERNAL, "attribute %d unnamed", i);
        goto done;
      }
    }
  }

  for (int i = 0; i < g->noutputs; i++) {
    int id = g->outputs[i];
    if (id < 0 || id >= g->nvalues) {
      st = dl_error(ctx, DL_ERR_INTERNAL,
                    "graph '%s': output %d has bad value id %d", gname(g), i,
                    id);
      goto done;
    }
    if (!def[id] && !defined_outside(g, g->values[id])) {
      st = dl_error(ctx, DL_ERR_INVALID,
                    "graph '%s': output '%s' is never defined", gname(g),
                    g->values[id]->name);
      goto done;
    }
  }

  if (typed) {
    for (int k = 0; k < g->nnodes; k++) {
      const DlNode *n = g->nodes[k];
      if (n->dead)
        continue;
      for (int i = 0; i < n->nout; i++) {
        if (n->out[i] < 0)
          continue;
        const DlValue *v = g->values[n->out[i]];
        if (v->rank < 0 || v->dtype == DL_UNDEFINED) {
          st =
              dl_error_node(ctx, n, DL_ERR_INTERNAL,
                            "output '%s' has no type after inference", v->name);
          goto done;
        }
      }
    }
    for (int i = 0; i < g->nvalues; i++) {
      const DlValue *v = g->values[i];
      if (def[i] != DEF_INPUT && def[i] != DEF_CONST)
        continue;
      if (v->rank < 0 || v->dtype == DL_UNDEFINED) {
        st = dl_error(ctx, DL_ERR_INVALID, "graph '%s': value '%s' has no type",
                      gname(g), v->name);
        goto done;
      }
    }
  }

done:
  free(def);
  return st;
}
