/*
 * horizontal.c - MatMuls and Gemms that read the same input with constant
 * weights become one product on concatenated weights and a Split.
 *
 *   Y1 = X @ W1 (+ b1)       Ycat = X @ [W1 | W2 | W3] (+ [b1 | b2 | b3])
 *   Y2 = X @ W2 (+ b2)  -->  Y1, Y2, Y3 = Split(Ycat, [N1, N2, N3], axis=-1)
 *   Y3 = X @ W3 (+ b3)
 *
 * A bias Add right after a MatMul (a constant [N] read by nothing else) is
 * concatenated too, so that epilogue fusion later puts one bias Add into
 * the merged product.  Gemm branches must agree in transA, transB, alpha
 * and beta and carry a constant [N] bias C or none.  This is the Q, K and V
 * projections of attention as one MatMul.
 *
 * Cost model: every weight at least 16x16, same dtype; merging only pays
 * when the shared input is read once instead of several times.
 */
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <string.h>

#define HZ_MAX 16
#define HZ_MIN_DIM 16

typedef struct HzBranch {
  DlNode *mm;  /* the MatMul or Gemm */
  DlNode *add; /* absorbed bias Add, or NULL */
  const DlValue *bias;
  int64_t n; /* columns */
} HzBranch;

static bool hz_float(DlDType t) {
  return t == DL_F32 || t == DL_F64;
}

/* Columns of a candidate branch node with constant 2-D weights, or -1. */
static int64_t hz_cols(const DlGraph *g, const DlNode *n, int64_t *k) {
  const DlValue *a = dl_in(g, n, 0), *w = dl_in(g, n, 1);
  if (n->dead || n->nout != 1 || dl_has_epilogue(n) || !a || !w || !w->data ||
      w->rank != 2 || a->rank < 2 || !hz_float(a->dtype) ||
      w->dtype != a->dtype)
    return -1;
  int64_t r0, r1;
  if (!dl_dim_is_const(&w->dims[0], &r0) || !dl_dim_is_const(&w->dims[1], &r1))
    return -1;
  bool tb = n->op == DL_OP_Gemm && dl_attr_int(n, "transB", 0) != 0;
  *k = tb ? r1 : r0;
  int64_t cols = tb ? r0 : r1;
  if (*k < HZ_MIN_DIM || cols < HZ_MIN_DIM)
    return -1;
  if (n->op == DL_OP_Gemm) {
    const DlValue *c = dl_in(g, n, 2);
    if (a->rank != 2)
      return -1;
    if (c && !(c->data && c->rank == 1 && c->dtype == a->dtype &&
               dl_value_numel_const(c) == cols))
      return -1;
  }
  return cols;
}

static bool hz_same_gemm(const DlNode *a, const DlNode *b) {
  return dl_attr_int(a, "transA", 0) == dl_attr_int(b, "transA", 0) &&
         dl_attr_int(a, "transB", 0) == dl_attr_int(b, "transB", 0) &&
         dl_attr_float(a, "alpha", 1.0f) == dl_attr_float(b, "alpha", 1.0f) &&
         dl_attr_float(a, "beta", 1.0f) == dl_attr_float(b, "beta", 1.0f);
}

/* A bias Add reading only y and a constant [n]: returns its constant. */
static const DlValue *hz_bias_add(const DlGraph *g, const int *uses,
                                  const bool *isout, const DlValue *y,
                                  int64_t n, DlNode **add) {
  if (uses[y->id] != 1 || isout[y->id])
    return NULL;
  for (int k = y->producer + 1; k < g->nnodes; k++) {
    DlNode *c = g->nodes[k];
    if (c->dead)
      continue;
    for (int i = 0; i < c->nin; i++) {
      if (c->in[i] != y->id)
        continue;
      if (c->op != DL_OP_Add || c->nin != 2 || c->nout != 1)
        return NULL;
      const DlValue *b = dl_in(g, c, 1 - i), *o = dl_out(g, c, 0);
      if (!b || !o || !b->data || b->rank != 1 || b->dtype != y->dtype ||
          dl_value_numel_const(b) != n || o->rank != y->rank)
        return NULL;
      *add = c;
      return b;
    }
  }
  return NULL;
}

static DlValue *hz_const(DlGraph *g, DlDType t, int rank, const DlDim *dims,
                         size_t bytes) {
  DlValue *v = dl_value_new(g, NULL, t);
  if (!v)
    return NULL;
  dl_value_set_shape(v, rank, dims);
  v->data = dl_arena_alloc(&g->ctx->arena, bytes ? bytes : 1);
  return v->data ? v : NULL;
}

static DlStatus hz_infer(DlGraph *g, DlNode *n) {
  const DlOpInfo *info = dl_op_info(n->op);
  if (!info || !info->infer)
    return DL_UNREACHABLE(g->ctx);
  return info->infer(g, n);
}

static DlStatus hz_merge(DlGraph *g, HzBranch *br, int nb, bool *done) {
  DlCtx *ctx = g->ctx;
  DlNode *m0 = br[0].mm;
  const DlValue *x = dl_in(g, m0, 0), *w0 = dl_in(g, m0, 1);
  DlDType t = x->dtype;
  size_t es = dl_dtype_size(t);
  bool gemm = m0->op == DL_OP_Gemm;
  bool tb = gemm && dl_attr_int(m0, "transB", 0) != 0;
  int64_t k = 0, total = 0;
  dl_dim_is_const(&w0->dims[tb ? 1 : 0], &k);
  bool any_bias = false;
  for (int i = 0; i < nb; i++) {
    total += br[i].n;
    any_bias |= br[i].bias != NULL;
  }
  /* concatenated weights: [K, total] or, with transB, [total, K] */
  DlDim wd[2] = {dl_dim_const(tb ? total : k), dl_dim_const(tb ? k : total)};
  DlValue *wc = hz_const(g, t, 2, wd, (size_t)(k * total) * es);
  if (!wc)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  int64_t off = 0;
  for (int i = 0; i < nb; i++) {
    const DlValue *w = dl_in(g, br[i].mm, 1);
    const char *src = w->data;
    char *dst = wc->data;
    if (tb) {
      memcpy(dst + (size_t)(off * k) * es, src, (size_t)(br[i].n * k) * es);
    } else {
      for (int64_t r = 0; r < k; r++)
        memcpy(dst + (size_t)(r * total + off) * es,
               src + (size_t)(r * br[i].n) * es, (size_t)br[i].n * es);
    }
    off += br[i].n;
  }
  DlValue *bc = NULL;
  if (any_bias) {
    DlDim bd = dl_dim_const(total);
    bc = hz_const(g, t, 1, &bd, (size_t)total * es);
    if (!bc)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    off = 0;
    for (int i = 0; i < nb; i++) {
      if (br[i].bias)
        memcpy((char *)bc->data + (size_t)off * es, br[i].bias->data,
               (size_t)br[i].n * es);
      off += br[i].n;
    }
  }
  DlDim sd = dl_dim_const(nb);
  DlValue *sp = hz_const(g, DL_I64, 1, &sd, sizeof(int64_t) * (size_t)nb);
  if (!sp)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < nb; i++)
    ((int64_t *)sp->data)[i] = br[i].n;

  /* the merged product (a Gemm keeps its attributes and takes the
   * concatenated bias as C) */
  DlNode *mm = dl_node_new(g, m0->op, m0->op_type, m0->name, gemm ? 3 : 2, 1);
  DlValue *ycat = dl_value_new(g, NULL, t);
  if (!mm || !ycat)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  mm->domain = m0->domain;
  mm->opset = m0->opset;
  mm->nattr = m0->nattr;
  mm->attrs = m0->attrs;
  mm->in[0] = x->id;
  mm->in[1] = wc->id;
  if (gemm && bc)
    mm->in[2] = bc->id;
  mm->out[0] = ycat->id;
  ycat->producer = mm->id;
  DL_TRY(hz_infer(g, mm));
  DlValue *ysplit = ycat;
  DlNode *add = NULL;
  if (bc && !gemm) {
    add = dl_node_new(g, DL_OP_Add, "Add",
                      dl_arena_printf(&ctx->arena, "%s/merged_bias", m0->name),
                      2, 1);
    ysplit = dl_value_new(g, NULL, t);
    if (!add || !ysplit)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    add->in[0] = ycat->id;
    add->in[1] = bc->id;
    add->out[0] = ysplit->id;
    ysplit->producer = add->id;
    DL_TRY(hz_infer(g, add));
  }
  DlNode *split = dl_node_new(
      g, DL_OP_Split, "Split",
      dl_arena_printf(&ctx->arena, "%s/merged_split", m0->name), 2, nb);
  if (!split)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  if (split->opset < 13)
    split->opset = 13;
  DlAttr ax;
  memset(&ax, 0, sizeof ax);
  ax.name = "axis";
  ax.kind = DL_ATTR_INT;
  ax.i = ycat->rank - 1;
  DL_TRY(fu_add_attr(g, split, &ax));
  split->in[0] = ysplit->id;
  split->in[1] = sp->id;
  int first = br[0].mm->id;
  for (int i = 0; i < nb; i++) {
    DlNode *src = (br[i].add && !gemm) ? br[i].add : br[i].mm;
    int vid = src->out[0];
    split->out[i] = vid;
    src->dead = true;
    if (br[i].add && !gemm) {
      br[i].mm->dead = true;
      g->values[br[i].mm->out[0]]->producer = -1;
    }
    if (br[i].mm->id < first)
      first = br[i].mm->id;
  }
  for (int i = 0; i < nb; i++)
    g->values[split->out[i]]->producer = split->id;
  DL_TRY(hz_infer(g, split));
  /* move the new nodes to where the first branch was */
  fu_move_node(g, mm->id, first);
  if (add)
    fu_move_node(g, add->id, first + 1);
  fu_move_node(g, split->id, first + (add ? 2 : 1));
  *done = true;
  return DL_OK;
}

static DlStatus hz_try(DlGraph *g, DlNode *n, FuUses *fu, bool *done) {
  *done = false;
  int64_t k0;
  int64_t n0 = hz_cols(g, n, &k0);
  if (n0 < 0)
    return DL_OK;
  DL_TRY(fu_uses(g, fu));
  const int *uses = fu->uses;
  const bool *isout = fu->isout;
  HzBranch br[HZ_MAX];
  int nb = 0;
  for (int pos = n->id; pos < g->nnodes && nb < HZ_MAX; pos++) {
    DlNode *c = g->nodes[pos];
    if (c->op != n->op || c->in[0] != n->in[0])
      continue;
    int64_t kc, nc = hz_cols(g, c, &kc);
    if (nc < 0 || kc != k0 || dl_in(g, c, 1)->dtype != dl_in(g, n, 1)->dtype)
      continue;
    if (n->op == DL_OP_Gemm &&
        (!hz_same_gemm(n, c) ||
         (dl_in(g, c, 2) != NULL) != (dl_in(g, n, 2) != NULL)))
      continue;
    HzBranch *b = &br[nb++];
    memset(b, 0, sizeof *b);
    b->mm = c;
    b->n = nc;
    if (n->op == DL_OP_Gemm)
      b->bias = dl_in(g, c, 2);
    else
      b->bias = hz_bias_add(g, uses, isout, dl_out(g, c, 0), nc, &b->add);
  }
  if (nb < 2)
    return DL_OK;
  return hz_merge(g, br, nb, done);
}

DlStatus dl_pass_horizontal(DlGraph *g, bool *changed) {
  FuUses fu = {0};
  for (int pos = 0; pos < g->nnodes; pos++) {
    DlNode *n = g->nodes[pos];
    if (n->dead || (n->op != DL_OP_MatMul && n->op != DL_OP_Gemm))
      continue;
    bool done;
    DL_TRY(hz_try(g, n, &fu, &done));
    if (done)
      fu.valid = false;
    if (done && changed)
      *changed = true;
  }
  return DL_OK;
}
