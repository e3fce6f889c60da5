/*
 * fold.c - re-runs shape and type inference and constant folding over the
 * whole graph (dl_infer_graph) after rewrites: a node whose inputs all
 * became constants is folded, and a shape that became known is propagated.
 * Symbolic dims stay symbolic.  "changed" means some value gained constant
 * data or a different shape.
 */
#include "passes/pass.h"

#include <string.h>

typedef struct Snap {
  bool data;
  int rank;
  DlDim dims[DL_MAX_RANK];
} Snap;

static void take(const DlValue *v, Snap *s) {
  s->data = v->data != NULL;
  s->rank = v->rank;
  for (int i = 0; i < v->rank && i < DL_MAX_RANK; i++)
    s->dims[i] = v->dims[i];
}

static bool same(const Snap *a, const Snap *b) {
  if (a->data != b->data || a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank && i < DL_MAX_RANK; i++)
    if (!dl_dim_eq(&a->dims[i], &b->dims[i]))
      return false;
  return true;
}

DlStatus dl_pass_fold_fn(DlGraph *g, bool *changed) {
  int nv = g->nvalues;
  Snap *before =
      dl_arena_alloc(&g->ctx->arena, sizeof(Snap) * (size_t)(nv > 0 ? nv : 1));
  if (!before)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < nv; i++)
    take(g->values[i], &before[i]);
  DL_TRY(dl_infer_graph(g));
  for (int i = 0; i < nv && !*changed; i++) {
    Snap now;
    take(g->values[i], &now);
    if (!same(&before[i], &now))
      *changed = true;
  }
  return DL_OK;
}
