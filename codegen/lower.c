/*
 * lower.c - the whole graph to kernel IR: one kernel per live node that
 * computes something at run time.  Nodes whose outputs are all constants
 * (folded by inference) emit nothing; the backend copies constant graph
 * outputs itself.
 */
#include "ops/ops.h"

#include <string.h>

static bool all_outputs_constant(const DlGraph *g, const DlNode *n) {
  for (int i = 0; i < n->nout; i++) {
    const DlValue *v = dl_out(g, n, i);
    if (v && !v->data)
      return false;
  }
  return true;
}

/* "k<idx>_<OpType>" with every character outside [A-Za-z0-9_] as '_'. */
static const char *kernel_name(DlGraph *g, int idx, const DlNode *n) {
  char *s = dl_arena_printf(&g->ctx->arena, "k%d_%s", idx,
                            n->op_type ? n->op_type : dl_op_name(n->op));
  if (!s)
    return NULL;
  for (char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_';
    if (!ok)
      *p = '_';
  }
  return s;
}

DlStatus kir_lower_graph(DlGraph *g, KProgram **out) {
  DlCtx *ctx = g->ctx;
  KProgram *p = dl_arena_alloc(&ctx->arena, sizeof *p);
  Kernel **ks =
      dl_arena_alloc(&ctx->arena, sizeof(Kernel *) * (size_t)(g->nnodes + 1));
  if (!p || !ks)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  p->g = g;
  p->kernels = ks;
  for (int i = 0; i < g->nnodes; i++) {
    DlNode *n = g->nodes[i];
    if (n->dead || all_outputs_constant(g, n))
      continue;
    const DlOpInfo *info = dl_op_info(n->op);
    if (!info || !info->lower)
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "no lowering for this op");
    KBuilder *kb = kb_new(g, n);
    if (!kb)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    DL_TRY(info->lower(kb, g, n));
    Kernel *k = kb_finish(kb);
    if (!k)
      return DL_ERR_INTERNAL; /* kb_finish recorded the message */
    k->name = kernel_name(g, i, n);
    if (!k->name)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    k->node = n->id;
    ks[p->nkernels++] = k;
  }
  *out = p;
  return DL_OK;
}
