/*
 * fuse_epilogue.c - elementwise work after Conv, Gemm and MatMul moves into
 * the node as an epilogue (ops/epilogue.c describes the form).
 *
 * From the node's output the pass grows regions of elementwise ops whose
 * output has exactly the node's shape and dtype: a bias Add (any tensor
 * that broadcasts to the output), activations (Relu, LeakyRelu, Clip,
 * Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, and the erf-GELU and SiLU
 * patterns, which read the value twice), a residual Add, and so on.  A
 * region is taken only whole: every intermediate value is read only inside
 * it and is no graph output.  The node then stores the region's result; the
 * region's nodes die and the node moves to where the region ended, so the
 * extra tensors (a residual computed after the Conv) are defined before it.
 *
 * This file also holds the helpers of passes/fusion.h.
 */
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <string.h>

/* ---- helpers (passes/fusion.h) ------------------------------------------ */

DlStatus fu_uses(DlGraph *g, FuUses *fu) {
  if (fu->valid && fu->cap > g->nvalues)
    return DL_OK;
  if (fu->cap <= g->nvalues) {
    int cap = 2 * (g->nvalues + 1);
    DlArena *a = &g->ctx->arena;
    fu->uses = dl_arena_alloc(a, sizeof(int) * (size_t)cap);
    fu->isout = dl_arena_alloc(a, (size_t)cap);
    if (!fu->uses || !fu->isout)
      return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    fu->cap = cap;
  }
  int *u = fu->uses;
  bool *o = fu->isout;
  memset(u, 0, sizeof(int) * (size_t)fu->cap);
  memset(o, 0, (size_t)fu->cap);
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] >= 0 && n->in[i] < g->nvalues)
        u[n->in[i]]++;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i] >= 0 && g->outputs[i] < g->nvalues)
      o[g->outputs[i]] = true;
  fu->valid = true;
  return DL_OK;
}

/* Nodes at positions lo..hi get ids equal to their positions, and the
 * values the live ones among them produce name them again.  Producers are
 * set in a second sweep, from live nodes only: a dead node's former output
 * may belong to another node by now, and comparing against ids that are
 * half renumbered would hand it back to the dead one. */
static void fu_renumber(DlGraph *g, int lo, int hi) {
  /* A value still naming a dead node has no producer any more (a constant
   * folded from it, or unused); clear it before the ids move. */
  for (int k = lo; k <= hi; k++) {
    const DlNode *n = g->nodes[k];
    if (!n->dead)
      continue;
    for (int o = 0; o < n->nout; o++)
      if (n->out[o] >= 0 && n->out[o] < g->nvalues &&
          g->values[n->out[o]]->producer == n->id)
        g->values[n->out[o]]->producer = -1;
  }
  for (int k = lo; k <= hi; k++)
    g->nodes[k]->id = k;
  for (int k = lo; k <= hi; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int o = 0; o < n->nout; o++)
      if (n->out[o] >= 0 && n->out[o] < g->nvalues)
        g->values[n->out[o]]->producer = k;
  }
}

void fu_move_node(DlGraph *g, int from, int to) {
  if (from == to)
    return;
  DlNode *m = g->nodes[from];
  if (from < to)
    memmove(&g->nodes[from], &g->nodes[from + 1],
            sizeof(DlNode *) * (size_t)(to - from));
  else
    memmove(&g->nodes[to + 1], &g->nodes[to],
            sizeof(DlNode *) * (size_t)(from - to));
  g->nodes[to] = m;
  fu_renumber(g, from < to ? from : to, from < to ? to : from);
}

DlStatus fu_add_attr(DlGraph *g, DlNode *n, const DlAttr *a) {
  DlAttr *na =
      dl_arena_alloc(&g->ctx->arena, sizeof(DlAttr) * (size_t)(n->nattr + 1));
  if (!na)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  if (n->nattr)
    memcpy(na, n->attrs, sizeof(DlAttr) * (size_t)n->nattr);
  na[n->nattr] = *a;
  n->attrs = na;
  n->nattr++;
  return DL_OK;
}

static bool in_set(const int *set, int n, int v) {
  for (int i = 0; i < n; i++)
    if (set[i] == v)
      return true;
  return false;
}

int fu_grow_region(const DlGraph *g, const int *uses, const bool *isout,
                   int from, int scan, FuAccept accept, const void *arg,
                   DlNode **list, int cap, int *result) {
  int inside[FU_MAX_REGION + 1];
  int ninside = 0, cnt = 0, skipped = 0;
  if (from < 0 || isout[from] || uses[from] == 0)
    return 0;
  inside[ninside++] = from;
  if (cap > FU_MAX_REGION)
    cap = FU_MAX_REGION;
  for (int pos = scan; pos < g->nnodes; pos++) {
    DlNode *c = g->nodes[pos];
    if (c->dead)
      continue;
    bool reads = false;
    for (int i = 0; i < c->nin && !reads; i++)
      reads = c->in[i] >= 0 && in_set(inside, ninside, c->in[i]);
    if (!reads) {
      if (++skipped > 256)
        return 0;
      continue;
    }
    if (cnt >= cap || c->nout != 1 || c->out[0] < 0 || !accept(g, c, arg))
      return 0;
    int ov = c->out[0];
    if (uses[ov] == 0 && !isout[ov])
      return 0; /* unused: not part of any result */
    list[cnt++] = c;
    inside[ninside++] = ov;
    /* closed when every value but the newest is read only in the region */
    bool closed = true;
    for (int k = 0; k < ninside - 1 && closed; k++) {
      int v = inside[k], reads_in = 0;
      if (isout[v]) {
        closed = false;
        break;
      }
      for (int j = 0; j < cnt; j++)
        for (int i = 0; i < list[j]->nin; i++)
          if (list[j]->in[i] == v)
            reads_in++;
      if (reads_in != uses[v])
        closed = false;
    }
    if (closed) {
      *result = ov;
      return cnt;
    }
  }
  return 0;
}

static DlValue *value_like(DlGraph *dst, const char *name, const DlValue *v) {
  DlValue *nv = dl_value_new(dst, name, v->dtype);
  if (nv)
    dl_value_set_shape(nv, v->rank, v->dims);
  return nv;
}

static DlStatus add_io(DlGraph *s, int **arr, int *n, int id) {
  int *na = dl_arena_alloc(&s->ctx->arena, sizeof(int) * (size_t)(*n + 1));
  if (!na)
    return dl_error(s->ctx, DL_ERR_NOMEM, "out of memory");
  if (*n)
    memcpy(na, *arr, sizeof(int) * (size_t)*n);
  na[(*n)++] = id;
  *arr = na;
  return DL_OK;
}

DlStatus fu_region_subgraph(DlGraph *g, const char *name, DlNode *const *list,
                            int n, const int *first, int nfirst, int result,
                            DlGraph **sub, int *ext, int cap_ext, int *next) {
  DlCtx *ctx = g->ctx;
  DlGraph *s = dl_graph_new(ctx, name);
  int *map = dl_arena_alloc(&ctx->arena, sizeof(int) * (size_t)g->nvalues);
  if (!s || !map)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  s->parent = g;
  s->opset = g->opset;
  for (int i = 0; i < g->nsyms; i++)
    if (dl_graph_sym(s, g->syms[i]) != i)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int v = 0; v < g->nvalues; v++)
    map[v] = -1;
  *next = 0;
  for (int i = 0; i < nfirst; i++) {
    const DlValue *pv = g->values[first[i]];
    DlValue *sv = value_like(s, i == 0 ? "acc" : pv->name, pv);
    if (!sv)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    sv->is_input = true;
    map[first[i]] = sv->id;
    DL_TRY(add_io(s, &s->inputs, &s->ninputs, sv->id));
  }
  for (int k = 0; k < n; k++) {
    const DlNode *c = list[k];
    for (int i = 0; i < c->nin; i++) {
      int pv = c->in[i];
      if (pv < 0 || map[pv] >= 0)
        continue;
      if (*next >= cap_ext)
        return dl_error_node(ctx, c, DL_ERR_INTERNAL,
                             "fusion: too many extra inputs");
      DlValue *sv = value_like(s, g->values[pv]->name, g->values[pv]);
      if (!sv)
        return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
      sv->is_input = true;
      map[pv] = sv->id;
      ext[(*next)++] = pv;
      DL_TRY(add_io(s, &s->inputs, &s->ninputs, sv->id));
    }
    DlNode *e = dl_node_new(s, c->op, c->op_type, c->name, c->nin, 1);
    if (!e)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    e->domain = c->domain;
    e->opset = c->opset;
    e->nattr = c->nattr;
    e->attrs = c->attrs;
    for (int i = 0; i < c->nin; i++)
      e->in[i] = c->in[i] >= 0 ? map[c->in[i]] : -1;
    const DlValue *po = g->values[c->out[0]];
    DlValue *so = value_like(s, po->name, po);
    if (!so)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    so->producer = e->id;
    e->out[0] = so->id;
    map[c->out[0]] = so->id;
  }
  if (map[result] < 0)
    return dl_error(ctx, DL_ERR_INTERNAL, "fusion: result not in region");
  s->values[map[result]]->is_output = true;
  DL_TRY(add_io(s, &s->outputs, &s->noutputs, map[result]));
  *sub = s;
  return DL_OK;
}

/* ---- the pass ----------------------------------------------------------- */

static bool is_anchor(DlOp op) {
  return op == DL_OP_Conv || op == DL_OP_MatMul || op == DL_OP_Gemm;
}

static bool epi_op(DlOp op) {
  switch (op) {
  case DL_OP_Add:
  case DL_OP_Sub:
  case DL_OP_Mul:
  case DL_OP_Div:
  case DL_OP_Relu:
  case DL_OP_LeakyRelu:
  case DL_OP_Clip:
  case DL_OP_Sigmoid:
  case DL_OP_HardSigmoid:
  case DL_OP_HardSwish:
  case DL_OP_Tanh:
  case DL_OP_Gelu:
  case DL_OP_Erf:
  case DL_OP_Max:
  case DL_OP_Min:
    return true;
  default:
    return false;
  }
}

static bool same_shape(const DlValue *a, const DlValue *b) {
  if (a->rank != b->rank || a->dtype != b->dtype)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (!dl_dim_eq(&a->dims[i], &b->dims[i]))
      return false;
  return true;
}

/* arg: the anchor's output value */
static bool epi_accept(const DlGraph *g, const DlNode *c, const void *arg) {
  const DlValue *y = arg;
  if (!epi_op(c->op) || c->nin > 8)
    return false;
  const DlValue *o = dl_out(g, c, 0);
  if (!o || !same_shape(o, y))
    return false;
  for (int i = 0; i < c->nin; i++) {
    const DlValue *v = dl_in(g, c, i);
    if (v && (v->rank < 0 || v->rank > y->rank || v->dtype != y->dtype))
      return false;
  }
  return true;
}

static DlStatus fuse_one(DlGraph *g, DlNode *n, FuUses *fu, bool *fused) {
  *fused = false;
  DL_TRY(fu_uses(g, fu));
  const int *uses = fu->uses;
  const bool *isout = fu->isout;
  DlValue *y = dl_out(g, n, 0);
  if (!y || y->rank < 0 || !dl_dtype_is_float(y->dtype))
    return DL_OK;
  DlNode *list[FU_MAX_REGION];
  int cnt = 0, cur = y->id, scan = n->id + 1, res = -1;
  for (;;) {
    int k = fu_grow_region(g, uses, isout, cur, scan, epi_accept, y, list + cnt,
                           FU_MAX_REGION - cnt, &res);
    if (k == 0)
      break;
    cnt += k;
    cur = res;
    scan = list[cnt - 1]->id + 1;
  }
  if (cnt == 0)
    return DL_OK;
  int base = dl_epilogue_base(n);
  if (base < n->nin)
    return DL_OK; /* inputs beyond the op's own: leave it alone */
  DL_TRY(fu_attach_epilogue(g, n, list, cnt, y->id, cur));
  y->producer = -1;
  n->out[0] = cur;
  g->values[cur]->producer = n->id;
  fu_move_node(g, n->id, list[cnt - 1]->id);
  *fused = true;
  return DL_OK;
}

DlStatus dl_pass_fuse_epilogue(DlGraph *g, bool *changed) {
  FuUses fu = {0};
  for (int pos = 0; pos < g->nnodes; pos++) {
    DlNode *n = g->nodes[pos];
    if (n->dead || !is_anchor(n->op) || n->nout != 1 || dl_has_epilogue(n))
      continue;
    bool fused;
    DL_TRY(fuse_one(g, n, &fu, &fused));
    if (fused)
      fu.valid = false;
    if (fused && changed)
      *changed = true;
    if (fused)
      pos--; /* the node moved: look at what took its place */
  }
  return DL_OK;
}

/* The region list[0..cnt) (reading acc, the product's own result, and
 * producing result) becomes the "dlcc.epilogue" of product n: a subgraph
 * attribute, its other tensors as n's inputs after the op's own, and the
 * region's nodes dead. */
DlStatus fu_attach_epilogue(DlGraph *g, DlNode *n, DlNode *const *list, int cnt,
                            int acc, int result) {
  DlGraph *s;
  int ext[FU_MAX_REGION * 4], next;
  DL_TRY(fu_region_subgraph(g, "epilogue", list, cnt, &acc, 1, result, &s, ext,
                            (int)DL_ARRAY_LEN(ext), &next));
  int base = dl_epilogue_base(n);
  int nin = base + next;
  int *in = dl_arena_alloc(&g->ctx->arena, sizeof(int) * (size_t)nin);
  if (!in)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < base; i++)
    in[i] = i < n->nin ? n->in[i] : -1;
  for (int j = 0; j < next; j++)
    in[base + j] = ext[j];
  DlAttr a;
  memset(&a, 0, sizeof a);
  a.name = "dlcc.epilogue";
  a.kind = DL_ATTR_GRAPH;
  a.g = s;
  DL_TRY(fu_add_attr(g, n, &a));
  n->in = in;
  n->nin = nin;
  for (int k = 0; k < cnt; k++)
    list[k]->dead = true;
  return DL_OK;
}
