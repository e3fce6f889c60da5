/*
 * dce.c - dead-code sweep: a backward walk over the topologically sorted
 * nodes, keeping a node only when some output is needed and not already
 * known as a constant.
 */
#include "passes/dce.h"

#include "passes/pass.h"

#include <string.h>

/* Marks needed every value of g named like a value read inside sub. */
static void mark_captures(DlGraph *g, const DlGraph *sub, bool *need) {
  for (int ni = 0; ni < sub->nnodes; ni++) {
    const DlNode *n = sub->nodes[ni];
    for (int i = 0; i < n->nin; i++) {
      if (n->in[i] < 0)
        continue;
      const DlValue *sv = sub->values[n->in[i]];
      if (sv->producer >= 0 || !sv->name)
        continue;
      for (int v = 0; v < g->nvalues; v++)
        if (g->values[v]->name && strcmp(g->values[v]->name, sv->name) == 0)
          need[v] = true;
    }
    for (int a = 0; a < n->nattr; a++) {
      const DlAttr *at = &n->attrs[a];
      if (at->kind == DL_ATTR_GRAPH && at->g)
        mark_captures(g, at->g, need);
      if (at->kind == DL_ATTR_GRAPHS)
        for (int k = 0; k < at->n; k++)
          if (at->gs[k])
            mark_captures(g, at->gs[k], need);
    }
  }
}

DlStatus dl_pass_dce(DlGraph *g, int *killed) {
  int nk = 0;
  bool *need = dl_arena_alloc(&g->ctx->arena, (size_t)g->nvalues + 1);
  if (!need)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i] >= 0 && g->outputs[i] < g->nvalues)
      need[g->outputs[i]] = true;
  for (int ni = g->nnodes - 1; ni >= 0; ni--) {
    DlNode *n = g->nodes[ni];
    if (n->dead)
      continue;
    bool live = false, folded = true;
    for (int o = 0; o < n->nout; o++) {
      int v = n->out[o];
      if (v < 0 || v >= g->nvalues)
        continue;
      if (need[v])
        live = true;
      if (!g->values[v]->data)
        folded = false;
    }
    if (!live || folded) {
      n->dead = true;
      nk++;
      continue;
    }
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] >= 0 && n->in[i] < g->nvalues)
        need[n->in[i]] = true;
    for (int a = 0; a < n->nattr; a++) {
      const DlAttr *at = &n->attrs[a];
      if (at->kind == DL_ATTR_GRAPH && at->g)
        mark_captures(g, at->g, need);
      if (at->kind == DL_ATTR_GRAPHS)
        for (int k = 0; k < at->n; k++)
          if (at->gs[k])
            mark_captures(g, at->gs[k], need);
    }
  }
  if (killed)
    *killed = nk;
  return DL_OK;
}

DlStatus dl_pass_dce_fn(DlGraph *g, bool *changed) {
  int killed = 0;
  DL_TRY(dl_pass_dce(g, &killed));
  if (killed > 0)
    *changed = true;
  return DL_OK;
}
