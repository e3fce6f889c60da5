/*
 * epilogue.c - applying a node's fused epilogue to its output values.
 *
 * passes/fuse_epilogue.c moves elementwise work that follows a Conv, Gemm
 * or MatMul into the node itself.  The node then carries:
 *
 *   - a GRAPH attribute "dlcc.epilogue": a subgraph whose input 0 is the
 *     node's own result element (the accumulator), whose further inputs are
 *     the extra tensors (bias, residual, scalars), whose nodes are the
 *     elementwise ops of the chain and whose single output is what the node
 *     now stores;
 *   - the extra tensors as inputs of the node, from index
 *     dl_epilogue_base(n) (the op's max_in in ops.def, so an omitted
 *     optional input keeps its slot) on, in the order of the subgraph's
 *     inputs 1, 2, ...
 *
 * Every extra tensor broadcasts (numpy-style) to the node's output shape;
 * the chain never changes the shape or dtype of the output.  The element
 * expressions come from ops/elementwise.c (dl_elementwise_expr, through
 * dl_subgraph_expr of ops/fused.c), so each op is still defined once.
 */
#include "ops/ops.h"

#include <string.h>

#define EPI_ATTR "dlcc.epilogue"

static const DlGraph *epi_graph(const DlNode *n) {
  const DlAttr *a = dl_attr(n, EPI_ATTR);
  if (!a || a->kind != DL_ATTR_GRAPH || !a->g)
    return NULL;
  return a->g;
}

bool dl_has_epilogue(const DlNode *n) {
  return epi_graph(n) != NULL;
}

int dl_epilogue_base(const DlNode *n) {
  const DlOpInfo *info = dl_op_info(n->op);
  return info ? info->max_in : n->nin;
}

/* Makes the builder fail (kb_finish returns NULL) after recording why. */
static KExpr *epi_fail(KBuilder *kb, DlGraph *g, const DlNode *n, KExpr *v,
                       const char *why) {
  dl_error_node(g->ctx, n, DL_ERR_INTERNAL, "bad epilogue: %s", why);
  (void)kb_buf(kb, NULL, false); /* records a builder error */
  return v;
}

KExpr *dl_epilogue(KBuilder *kb, DlGraph *g, const DlNode *n, KExpr *v,
                   KExpr *const *idx) {
  const DlGraph *s = epi_graph(n);
  if (!s)
    return v;
  const DlValue *y = dl_out(g, n, 0);
  int base = dl_epilogue_base(n);
  if (!y || s->ninputs < 1 || s->noutputs != 1 ||
      n->nin - base != s->ninputs - 1)
    return epi_fail(kb, g, n, v, "inputs do not match the subgraph");
  KExpr **in =
      dl_arena_alloc(&g->ctx->arena, sizeof(KExpr *) * (size_t)s->ninputs);
  if (!in)
    return epi_fail(kb, g, n, v, "out of memory");
  in[0] = ke_var(kb, kb_decl(kb, "acc", v->dtype, v));
  for (int j = 1; j < s->ninputs; j++) {
    const DlValue *xv = dl_in(g, n, base + j - 1);
    if (!xv || xv->rank > y->rank)
      return epi_fail(kb, g, n, v, "extra input missing or of higher rank");
    int b = kb_buf(kb, xv, false);
    in[j] = ke_load(kb, b, ke_bcast_index(kb, xv, y->rank, idx));
  }
  KExpr *r = dl_subgraph_expr(kb, s, in);
  if (!r)
    return epi_fail(kb, g, n, v, "not a chain of elementwise ops");
  if (r->dtype != y->dtype)
    r = ke_cast(kb, y->dtype, r);
  return r;
}

DlStatus dl_epilogue_inplace(KBuilder *kb, DlGraph *g, const DlNode *n) {
  if (!dl_has_epilogue(n))
    return DL_OK;
  const DlValue *y = dl_out(g, n, 0);
  if (!y || y->rank < 0)
    return DL_UNREACHABLE(g->ctx);
  int by = kb_buf(kb, y, true);
  KExpr *idx[DL_MAX_RANK];
  kb_for_shape(kb, y->rank, y->dims, idx, KF_PARALLEL);
  int fi = kb_decl(kb, "fi", DL_I64, ke_flat_index(kb, y->rank, y->dims, idx));
  KExpr *v = ke_load(kb, by, ke_var(kb, fi));
  KExpr *r = dl_epilogue(kb, g, n, v, idx);
  kb_store(kb, by, ke_var(kb, fi), r);
  kb_end_n(kb, y->rank);
  return DL_OK;
}
