/*
 * fused.c - dlcc's own ops (domain "dlcc"), made by the fusion passes.
 *
 * FusedElementwise: a sub-DAG of elementwise ops (rows of ops/elementwise.c)
 * held in the GRAPH attribute "body".  The body's inputs are the node's
 * inputs, in order; its single output is the node's output.  Every op in
 * the body produces the broadcast of its inputs, and every body value
 * reaches the output, so the output is the numpy broadcast of all inputs
 * and each body value can be computed at an output element from inputs
 * loaded with broadcast indexing.  The lowering is one loop nest over the
 * output computing the whole expression through dl_elementwise_expr.
 */
#include "ops/ops.h"

#include <string.h>

KExpr *dl_subgraph_expr(KBuilder *kb, const DlGraph *s, KExpr *const *in) {
  if (s->noutputs != 1)
    return NULL;
  KExpr **ex = dl_arena_alloc(&s->ctx->arena,
                              sizeof(KExpr *) * (size_t)(s->nvalues + 1));
  if (!ex)
    return NULL;
  for (int j = 0; j < s->ninputs; j++) {
    if (!in[j])
      return NULL;
    ex[s->inputs[j]] = in[j];
  }
  KExpr *args[64];
  for (int k = 0; k < s->nnodes; k++) {
    const DlNode *e = s->nodes[k];
    if (e->dead)
      continue;
    if (e->nin > (int)DL_ARRAY_LEN(args) || e->nout != 1 || e->out[0] < 0)
      return NULL;
    for (int i = 0; i < e->nin; i++) {
      args[i] = e->in[i] >= 0 ? ex[e->in[i]] : NULL;
      if (e->in[i] >= 0 && !args[i])
        return NULL;
    }
    KExpr *r = dl_elementwise_expr(kb, (DlGraph *)s, e, args);
    if (!r)
      return NULL;
    ex[e->out[0]] = ke_var(kb, kb_decl(kb, "f", r->dtype, r));
  }
  return ex[s->outputs[0]];
}

static const DlGraph *fused_body(const DlNode *n) {
  const DlAttr *a = dl_attr(n, "body");
  return a && a->kind == DL_ATTR_GRAPH ? a->g : NULL;
}

DlStatus dl_infer_FusedElementwise(DlGraph *g, DlNode *n) {
  const DlGraph *s = fused_body(n);
  if (!s)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "missing graph attribute 'body'");
  if (s->ninputs != n->nin || s->noutputs != 1 || n->nin > 64)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "body has %d inputs and %d outputs; the node has %d "
                         "inputs and 1 output",
                         s->ninputs, s->noutputs, n->nin);
  for (int k = 0; k < s->nnodes; k++)
    if (!s->nodes[k]->dead && !dl_is_elementwise(s->nodes[k]->op))
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "body node '%s' (%s) is not elementwise",
                           s->nodes[k]->name, s->nodes[k]->op_type);
  const DlValue *vals[64];
  for (int i = 0; i < n->nin; i++) {
    DlValue *v;
    DL_TRY(dl_need_input(g, n, i, &v));
    vals[i] = v;
  }
  const DlValue *so = s->values[s->outputs[0]];
  int rank;
  DlDim dims[DL_MAX_RANK];
  DL_TRY(dl_broadcast(g, n, n->nin, vals, &rank, dims));
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output 0 is missing");
  y->dtype = so->dtype;
  dl_value_set_shape(y, rank, dims);
  return DL_OK;
}

DlStatus dl_lower_FusedElementwise(KBuilder *kb, DlGraph *g, DlNode *n) {
  const DlGraph *s = fused_body(n);
  DlValue *y = dl_out(g, n, 0);
  if (!s || !y || y->rank < 0 || n->nin > 64)
    return DL_UNREACHABLE(g->ctx);
  int by = kb_buf(kb, y, true);
  int bufs[64];
  for (int i = 0; i < n->nin; i++)
    bufs[i] = kb_buf(kb, dl_in(g, n, i), false);
  KExpr *idx[DL_MAX_RANK], *in[64];
  kb_for_shape(kb, y->rank, y->dims, idx, KF_PARALLEL);
  for (int i = 0; i < n->nin; i++)
    in[i] =
        ke_load(kb, bufs[i], ke_bcast_index(kb, dl_in(g, n, i), y->rank, idx));
  KExpr *r = dl_subgraph_expr(kb, s, in);
  if (!r)
    return dl_error_node(g->ctx, n, DL_ERR_INTERNAL,
                         "body could not be lowered");
  if (r->dtype != y->dtype)
    r = ke_cast(kb, y->dtype, r);
  kb_store(kb, by, ke_flat_index(kb, y->rank, y->dims, idx), r);
  kb_end_n(kb, y->rank);
  for (int i = 0; i < n->nin; i++)
    if (dl_same_layout(dl_in(g, n, i), y))
      kb_inplace(kb, bufs[i], by);
  return DL_OK;
}
