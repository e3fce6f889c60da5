/*
 * recognize.c - decomposed normalizations, activations and Softmax back to
 * one op.
 *
 *   LayerNorm:  m = ReduceMean(x, last axes)  d = x - m
 *               v = ReduceMean(d ^ 2 (or d * d), same axes)
 *               y = d / Sqrt(v + eps) [* gamma] [+ beta]
 *           --> LayerNormalization(x, gamma, beta) {axis, epsilon}
 *   GELU:       x * 0.5 * (1 + Erf(x / sqrt 2))   (either order of the
 *               products, x * (1/sqrt 2) for the division)
 *           --> Gelu(x)
 *   Softmax:    e = Exp(x - ReduceMax(x, a)) (or Exp(x))
 *               y = e / ReduceSum(e, a)
 *           --> Softmax(x) {axis = a}
 *   Attention:  s = MatMul(Q, Kt) [* c, c *, / c]   (c a scalar constant)
 *               s = s + M  or  Where(C, s, f)  or  Where(C, f, s)   (optional;
 *                   M f32 / C bool broadcasting to s, f a scalar constant)
 *               y = MatMul(Softmax(s, last axis), V)
 *           --> Attention(Q, Kt, V [, M or C]) {scale, dlcc.mask_kind,
 *               dlcc.mask_fill} (domain "dlcc", ops/attention.c); Q, Kt, V
 *               f32 of one rank with equal leading dims.
 *
 * Every intermediate must be read only inside the pattern and be no graph
 * output; gamma and beta must broadcast to the normalized dims.  The new
 * node takes over the pattern's final value and sits where it was.
 */
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <math.h>
#include <string.h>

typedef struct Rc {
  DlGraph *g;
  const int *uses;
  const bool *isout;
} Rc;

static DlNode *rc_prod(const Rc *r, int vid) {
  if (vid < 0 || r->g->values[vid]->producer < 0)
    return NULL;
  DlNode *p = r->g->nodes[r->g->values[vid]->producer];
  return p->dead ? NULL : p;
}

/* The only reader of value vid (vid read once, no graph output). */
static DlNode *rc_only_user(const Rc *r, int vid) {
  if (vid < 0 || r->uses[vid] != 1 || r->isout[vid])
    return NULL;
  for (int k = 0; k < r->g->nnodes; k++) {
    DlNode *c = r->g->nodes[k];
    if (c->dead)
      continue;
    for (int i = 0; i < c->nin; i++)
      if (c->in[i] == vid)
        return c;
  }
  return NULL;
}

static bool rc_scalar(const DlGraph *g, int vid, double *out) {
  if (vid < 0)
    return false;
  const DlValue *v = g->values[vid];
  if (!v->data || dl_value_numel_const(v) != 1)
    return false;
  if (v->dtype == DL_F32)
    *out = *(const float *)v->data;
  else if (v->dtype == DL_F64)
    *out = *(const double *)v->data;
  else
    return false;
  return true;
}

static bool rc_near(double a, double b) {
  return fabs(a - b) <= 1e-4 * fabs(b);
}

/* For a binary node n with value vid as one operand: the other operand. */
static int rc_other(const DlNode *n, int vid) {
  if (n->nin != 2)
    return -1;
  if (n->in[0] == vid)
    return n->in[1];
  if (n->in[1] == vid)
    return n->in[0];
  return -1;
}

/* Replaces the pattern ending in `last` (whose output is kept) by a new
 * node of op with inputs in[nin]; kills the nodes dead[ndead]. */
static DlStatus rc_replace(Rc *r, DlNode *last, DlOp op, const int *in, int nin,
                           DlNode **dead, int ndead, DlNode **made) {
  DlGraph *g = r->g;
  DlNode *n = dl_node_new(g, op, dl_op_name(op), last->name, nin, 1);
  if (!n)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < nin; i++)
    n->in[i] = in[i];
  int pos = last->id;
  for (int k = 0; k < ndead; k++)
    dead[k]->dead = true;
  n->out[0] = last->out[0];
  g->values[n->out[0]]->producer = n->id;
  fu_move_node(g, n->id, pos + 1);
  *made = n;
  return DL_OK;
}

/* ---- LayerNorm ----------------------------------------------------------- */

/* Axes of a reduction with keepdims=1, normalized, as flags in red[rank]
 * (an attribute, or a constant input from opset 13 for ReduceSum and 18
 * for the others); false when not known. */
static bool rc_axes(const DlGraph *g, const DlNode *n, int rank, bool *red,
                    int *count) {
  if (dl_attr_int(n, "keepdims", 1) == 0)
    return false;
  int64_t axes[DL_MAX_RANK];
  int na = 0;
  int opset = n->opset > 0 ? n->opset : (int)g->opset;
  int from = n->op == DL_OP_ReduceSum ? 13 : 18;
  if (opset >= from) {
    const DlValue *a = dl_in(g, n, 1);
    if (!a || !a->data || a->dtype != DL_I64)
      return false;
    int64_t c = dl_value_numel_const(a);
    if (c < 1 || c > DL_MAX_RANK)
      return false;
    memcpy(axes, a->data, sizeof(int64_t) * (size_t)c);
    na = (int)c;
  } else {
    const int64_t *p;
    int c = dl_attr_ints(n, "axes", &p);
    if (c < 1 || c > DL_MAX_RANK)
      return false;
    memcpy(axes, p, sizeof(int64_t) * (size_t)c);
    na = c;
  }
  for (int d = 0; d < rank; d++)
    red[d] = false;
  for (int i = 0; i < na; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank || red[a])
      return false;
    red[a] = true;
  }
  *count = na;
  return true;
}

/* Axes of a ReduceMean with keepdims=1 when they are the last k dims. */
static bool rc_last_axes(const DlGraph *g, const DlNode *n, int rank, int *k) {
  bool red[DL_MAX_RANK];
  int na;
  if (!rc_axes(g, n, rank, red, &na))
    return false;
  for (int d = rank - na; d < rank; d++)
    if (!red[d])
      return false;
  *k = na;
  return true;
}

/* The single axis of a reduction with keepdims=1, or -1. */
static int rc_one_axis(const DlGraph *g, const DlNode *n, int rank) {
  bool red[DL_MAX_RANK];
  int na;
  if (!rc_axes(g, n, rank, red, &na) || na != 1)
    return -1;
  for (int d = 0; d < rank; d++)
    if (red[d])
      return d;
  return -1;
}

static bool rc_same_axes(const DlGraph *g, const DlNode *a, const DlNode *b,
                         int rank) {
  int ka, kb;
  return rc_last_axes(g, a, rank, &ka) && rc_last_axes(g, b, rank, &kb) &&
         ka == kb;
}

/* A constant that broadcasts to the last k dims of x. */
static bool rc_affine(const DlGraph *g, int vid, const DlValue *x, int k) {
  if (vid < 0)
    return false;
  const DlValue *p = g->values[vid];
  if (!p->data || p->dtype != x->dtype || p->rank > k)
    return false;
  for (int d = 0; d < p->rank; d++) {
    const DlDim *pd = &p->dims[d], *xd = &x->dims[x->rank - p->rank + d];
    int64_t c;
    if (!dl_dim_eq(pd, xd) && !(dl_dim_is_const(pd, &c) && c == 1))
      return false;
  }
  return true;
}

static DlStatus rc_layernorm(Rc *r, DlNode *m1, bool *done) {
  DlGraph *g = r->g;
  *done = false;
  const DlValue *x = dl_in(g, m1, 0);
  int k;
  if (!x || x->rank < 1 || (x->dtype != DL_F32 && x->dtype != DL_F64) ||
      !rc_last_axes(g, m1, x->rank, &k))
    return DL_OK;
  DlNode *sub = rc_only_user(r, m1->out[0]);
  if (!sub || sub->op != DL_OP_Sub || sub->in[0] != x->id ||
      sub->in[1] != m1->out[0])
    return DL_OK;
  int d = sub->out[0];
  /* uses count input slots: Mul(d, d) reads d twice */
  if ((r->uses[d] != 2 && r->uses[d] != 3) || r->isout[d])
    return DL_OK;
  /* readers of d: the square and the division, nothing else */
  DlNode *sq = NULL, *div = NULL;
  for (int p = 0; p < g->nnodes; p++) {
    DlNode *c = g->nodes[p];
    if (c->dead)
      continue;
    bool reads = false;
    for (int i = 0; i < c->nin; i++)
      reads |= c->in[i] == d;
    if (!reads)
      continue;
    double e;
    if (c->op == DL_OP_Div && c->in[0] == d && c->in[1] != d)
      div = c;
    else if (c->op == DL_OP_Pow && c->in[0] == d &&
             rc_scalar(g, c->in[1], &e) && e == 2.0)
      sq = c;
    else if (c->op == DL_OP_Mul && c->in[0] == d && c->in[1] == d)
      sq = c;
    else
      return DL_OK;
  }
  if (!sq || !div || r->uses[d] != (sq->op == DL_OP_Mul ? 3 : 2))
    return DL_OK;
  DlNode *m2 = rc_only_user(r, sq->out[0]);
  if (!m2 || m2->op != DL_OP_ReduceMean || m2->in[0] != sq->out[0] ||
      !rc_same_axes(g, m1, m2, x->rank))
    return DL_OK;
  DlNode *add = rc_only_user(r, m2->out[0]);
  double eps;
  if (!add || add->op != DL_OP_Add ||
      !rc_scalar(g, rc_other(add, m2->out[0]), &eps) || eps < 0)
    return DL_OK;
  DlNode *sqrt_ = rc_only_user(r, add->out[0]);
  if (!sqrt_ || sqrt_->op != DL_OP_Sqrt)
    return DL_OK;
  if (rc_only_user(r, sqrt_->out[0]) != div || div->in[1] != sqrt_->out[0])
    return DL_OK;
  DlNode *dead[10] = {m1, sub, sq, m2, add, sqrt_, div};
  int ndead = 7;
  DlNode *last = div;
  int gamma = -1, beta = -1;
  DlNode *mul = rc_only_user(r, div->out[0]);
  if (mul && mul->op == DL_OP_Mul &&
      rc_affine(g, rc_other(mul, div->out[0]), x, k)) {
    gamma = rc_other(mul, div->out[0]);
    dead[ndead++] = mul;
    last = mul;
    DlNode *badd = rc_only_user(r, mul->out[0]);
    if (badd && badd->op == DL_OP_Add &&
        rc_affine(g, rc_other(badd, mul->out[0]), x, k)) {
      beta = rc_other(badd, mul->out[0]);
      dead[ndead++] = badd;
      last = badd;
    }
  }
  const DlValue *yv = g->values[last->out[0]];
  if (yv->dtype != x->dtype || yv->rank != x->rank)
    return DL_OK;
  for (int i = 0; i < x->rank; i++)
    if (!dl_dim_eq(&yv->dims[i], &x->dims[i]))
      return DL_OK;
  int in[3] = {x->id, gamma, beta};
  int nin = beta >= 0 ? 3 : gamma >= 0 ? 2 : 1;
  DlNode *ln;
  DL_TRY(
      rc_replace(r, last, DL_OP_LayerNormalization, in, nin, dead, ndead, &ln));
  ln->opset = ln->opset < 17 ? 17 : ln->opset;
  DlAttr a;
  memset(&a, 0, sizeof a);
  a.name = "axis";
  a.kind = DL_ATTR_INT;
  a.i = x->rank - k;
  DL_TRY(fu_add_attr(g, ln, &a));
  a.name = "epsilon";
  a.kind = DL_ATTR_FLOAT;
  a.i = 0;
  a.f = (float)eps;
  DL_TRY(fu_add_attr(g, ln, &a));
  DL_TRY(dl_op_info(DL_OP_LayerNormalization)->infer(g, ln));
  *done = true;
  return DL_OK;
}

/* ---- GELU ---------------------------------------------------------------- */

static DlStatus rc_gelu(Rc *r, DlNode *erf, bool *done) {
  DlGraph *g = r->g;
  *done = false;
  DlNode *scale = rc_prod(r, erf->in[0]);
  if (!scale || r->uses[erf->in[0]] != 1 || r->isout[erf->in[0]])
    return DL_OK;
  int x = -1;
  double c;
  if (scale->op == DL_OP_Div && rc_scalar(g, scale->in[1], &c) &&
      rc_near(c, sqrt(2.0)))
    x = scale->in[0];
  else if (scale->op == DL_OP_Mul && rc_scalar(g, scale->in[1], &c) &&
           rc_near(c, sqrt(0.5)))
    x = scale->in[0];
  else if (scale->op == DL_OP_Mul && rc_scalar(g, scale->in[0], &c) &&
           rc_near(c, sqrt(0.5)))
    x = scale->in[1];
  if (x < 0 || (g->values[x]->dtype != DL_F32 && g->values[x]->dtype != DL_F64))
    return DL_OK;
  DlNode *add = rc_only_user(r, erf->out[0]);
  if (!add || add->op != DL_OP_Add ||
      !rc_scalar(g, rc_other(add, erf->out[0]), &c) || c != 1.0)
    return DL_OK;
  DlNode *m1 = rc_only_user(r, add->out[0]);
  if (!m1 || m1->op != DL_OP_Mul)
    return DL_OK;
  int other = rc_other(m1, add->out[0]);
  DlNode *dead[6] = {scale, erf, add, m1};
  int ndead = 4;
  DlNode *last;
  if (other == x) {
    /* (x * (1 + erf)) * 0.5 */
    DlNode *m2 = rc_only_user(r, m1->out[0]);
    if (!m2 || m2->op != DL_OP_Mul ||
        !rc_scalar(g, rc_other(m2, m1->out[0]), &c) || c != 0.5)
      return DL_OK;
    dead[ndead++] = m2;
    last = m2;
  } else {
    /* (x * 0.5) * (1 + erf) */
    DlNode *h = rc_prod(r, other);
    if (!h || h->op != DL_OP_Mul || r->uses[other] != 1 || r->isout[other] ||
        rc_other(h, x) < 0 || !rc_scalar(g, rc_other(h, x), &c) || c != 0.5)
      return DL_OK;
    dead[ndead++] = h;
    last = m1;
  }
  const DlValue *xv = g->values[x], *yv = g->values[last->out[0]];
  if (yv->rank != xv->rank || yv->dtype != xv->dtype)
    return DL_OK;
  for (int i = 0; i < xv->rank; i++)
    if (!dl_dim_eq(&yv->dims[i], &xv->dims[i]))
      return DL_OK;
  DlNode *ge;
  DL_TRY(rc_replace(r, last, DL_OP_Gelu, &x, 1, dead, ndead, &ge));
  ge->opset = ge->opset < 20 ? 20 : ge->opset;
  DL_TRY(dl_op_info(DL_OP_Gelu)->infer(g, ge));
  *done = true;
  return DL_OK;
}

/* ---- Softmax ------------------------------------------------------------- */

/* e = Exp(x - ReduceMax(x, a)) or Exp(x); y = e / ReduceSum(e, a). */
static DlStatus rc_softmax(Rc *r, DlNode *ex, bool *done) {
  DlGraph *g = r->g;
  *done = false;
  int e = ex->out[0];
  const DlValue *ev = g->values[e];
  if (ev->rank < 1 || (ev->dtype != DL_F32 && ev->dtype != DL_F64) ||
      r->uses[e] != 2 || r->isout[e])
    return DL_OK;
  DlNode *sum = NULL, *div = NULL;
  for (int p = ex->id + 1; p < g->nnodes; p++) {
    DlNode *c = g->nodes[p];
    if (c->dead)
      continue;
    bool reads = false;
    for (int i = 0; i < c->nin; i++)
      reads |= c->in[i] == e;
    if (!reads)
      continue;
    if (c->op == DL_OP_ReduceSum && c->in[0] == e)
      sum = c;
    else if (c->op == DL_OP_Div && c->in[0] == e && c->in[1] != e)
      div = c;
    else
      return DL_OK;
  }
  if (!sum || !div || rc_only_user(r, sum->out[0]) != div ||
      div->in[1] != sum->out[0])
    return DL_OK;
  int axis = rc_one_axis(g, sum, ev->rank);
  if (axis < 0)
    return DL_OK;
  DlNode *dead[5] = {ex, sum, div};
  int ndead = 3, x = ex->in[0];
  DlNode *sub = rc_prod(r, x);
  if (sub && sub->op == DL_OP_Sub && r->uses[x] == 1 && !r->isout[x]) {
    DlNode *mx = rc_prod(r, sub->in[1]);
    int src = sub->in[0];
    if (mx && mx->op == DL_OP_ReduceMax && mx->in[0] == src &&
        r->uses[sub->in[1]] == 1 && !r->isout[sub->in[1]] &&
        rc_one_axis(g, mx, ev->rank) == axis) {
      dead[ndead++] = sub;
      dead[ndead++] = mx;
      x = src;
    }
  }
  const DlValue *xv = g->values[x], *yv = g->values[div->out[0]];
  if (xv->rank != ev->rank || xv->dtype != ev->dtype || yv->rank != ev->rank ||
      yv->dtype != ev->dtype)
    return DL_OK;
  for (int i = 0; i < xv->rank; i++)
    if (!dl_dim_eq(&xv->dims[i], &ev->dims[i]) ||
        !dl_dim_eq(&yv->dims[i], &ev->dims[i]))
      return DL_OK;
  DlNode *sm;
  DL_TRY(rc_replace(r, div, DL_OP_Softmax, &x, 1, dead, ndead, &sm));
  sm->opset = sm->opset < 13 ? 13 : sm->opset;
  DlAttr a;
  memset(&a, 0, sizeof a);
  a.name = "axis";
  a.kind = DL_ATTR_INT;
  a.i = axis;
  DL_TRY(fu_add_attr(g, sm, &a));
  DL_TRY(dl_op_info(DL_OP_Softmax)->infer(g, sm));
  *done = true;
  return DL_OK;
}

/* ---- scaled-dot-product attention ---------------------------------------- */

/* vid is read once, only inside the pattern, and is no graph output. */
static bool rc_single(const Rc *r, int vid) {
  return vid >= 0 && r->uses[vid] == 1 && !r->isout[vid];
}

static bool rc_same_shape(const DlValue *a, const DlValue *b) {
  if (a->rank != b->rank || a->rank < 0)
    return false;
  for (int d = 0; d < a->rank; d++)
    if (!dl_dim_eq(&a->dims[d], &b->dims[d]))
      return false;
  return true;
}

/* m broadcasts to s without growing it. */
static bool rc_fits(const DlValue *m, const DlValue *s) {
  if (m->rank < 0 || m->rank > s->rank)
    return false;
  for (int d = 0; d < m->rank; d++) {
    const DlDim *md = &m->dims[d], *sd = &s->dims[s->rank - m->rank + d];
    int64_t c;
    if (!dl_dim_eq(md, sd) && !(dl_dim_is_const(md, &c) && c == 1))
      return false;
  }
  return true;
}

/* A plain f32 MatMul (no epilogue) of same-rank operands with equal
 * leading dims: Q [..., Sq, D] @ Kt [..., D, Sk]. */
static bool rc_plain_matmul(const DlGraph *g, const DlNode *mm) {
  if (!mm || mm->op != DL_OP_MatMul || mm->nin != 2 || dl_has_epilogue(mm))
    return false;
  const DlValue *a = dl_in(g, mm, 0), *b = dl_in(g, mm, 1);
  if (!a || !b || a->dtype != DL_F32 || b->dtype != DL_F32 || a->rank < 2 ||
      b->rank != a->rank)
    return false;
  for (int d = 0; d < a->rank - 2; d++)
    if (!dl_dim_eq(&a->dims[d], &b->dims[d]))
      return false;
  return dl_dim_eq(&a->dims[a->rank - 1], &b->dims[b->rank - 2]);
}

/* vid = MatMul(Q, Kt) [* c | c * | / c], each value read once and of the
 * MatMul's shape: sets *mm and *scale (1/c for the division) and appends
 * the MatMul and the scaling node to dead. */
static bool rc_scores(const Rc *r, int vid, DlNode **mm, double *scale,
                      DlNode **dead, int *ndead) {
  const DlGraph *g = r->g;
  DlNode *p = rc_prod(r, vid);
  if (!p || !rc_single(r, vid))
    return false;
  double c = 1.0;
  DlNode *sc = NULL;
  if (p->op == DL_OP_Mul || p->op == DL_OP_Div) {
    int x = -1;
    if (rc_scalar(g, p->in[1], &c))
      x = p->in[0];
    else if (p->op == DL_OP_Mul && rc_scalar(g, p->in[0], &c))
      x = p->in[1];
    if (x < 0 || !isfinite(c) || (p->op == DL_OP_Div && c == 0))
      return false;
    if (p->op == DL_OP_Div)
      c = 1.0 / c;
    sc = p;
    p = rc_prod(r, x);
    if (!p || !rc_single(r, x) ||
        !rc_same_shape(g->values[x], g->values[sc->out[0]]))
      return false;
  }
  if (!rc_plain_matmul(g, p))
    return false;
  *mm = p;
  *scale = c;
  dead[(*ndead)++] = p;
  if (sc)
    dead[(*ndead)++] = sc;
  return true;
}

/* Softmax(mask(scale * Q @ Kt)) @ V --> Attention(Q, Kt, V [, M]). */
static DlStatus rc_attention(Rc *r, DlNode *sm, bool *done) {
  DlGraph *g = r->g;
  *done = false;
  int x = sm->in[0];
  const DlValue *xv = dl_in(g, sm, 0);
  if (!xv || xv->rank < 2 || xv->dtype != DL_F32 || !rc_single(r, x))
    return DL_OK;
  int opset = sm->opset > 0 ? sm->opset : (int)g->opset;
  int64_t ax = dl_attr_int(sm, "axis", opset < 13 ? 1 : -1);
  if (ax < 0)
    ax += xv->rank;
  if (ax != xv->rank - 1)
    return DL_OK;
  DlNode *mm2 = rc_only_user(r, sm->out[0]);
  if (!rc_plain_matmul(g, mm2) || mm2->in[0] != sm->out[0] ||
      mm2->in[1] == sm->out[0])
    return DL_OK;
  DlNode *dead[8] = {sm};
  int ndead = 1, mask = -1, kind = 0;
  DlNode *mm1 = NULL;
  double scale = 1.0, fill = 0.0;
  DlNode *p = rc_prod(r, x);
  if (!p)
    return DL_OK;
  if (p->op == DL_OP_Add && p->nin == 2) {
    for (int s = 0; s < 2 && !mm1; s++) {
      int o = p->in[1 - s];
      if (o != p->in[s] && g->values[o]->dtype == DL_F32 &&
          rc_scores(r, p->in[s], &mm1, &scale, dead, &ndead))
        mask = o;
    }
    if (mm1)
      dead[ndead++] = p;
  } else if (p->op == DL_OP_Where && p->nin == 3) {
    int c = p->in[0];
    if (g->values[c]->dtype == DL_BOOL) {
      if (rc_scalar(g, p->in[1], &fill) &&
          g->values[p->in[1]]->dtype == DL_F32 &&
          rc_scores(r, p->in[2], &mm1, &scale, dead, &ndead))
        kind = 2;
      else if (rc_scalar(g, p->in[2], &fill) &&
               g->values[p->in[2]]->dtype == DL_F32 &&
               rc_scores(r, p->in[1], &mm1, &scale, dead, &ndead))
        kind = 1;
      if (mm1) {
        mask = c;
        dead[ndead++] = p;
      }
    }
  } else {
    rc_scores(r, x, &mm1, &scale, dead, &ndead);
  }
  if (!mm1)
    return DL_OK;
  /* the scores keep their shape up to the Softmax; the mask fits them */
  const DlValue *sv = g->values[mm1->out[0]];
  if (!rc_same_shape(sv, xv) || (mask >= 0 && !rc_fits(g->values[mask], sv)))
    return DL_OK;
  const DlValue *q = dl_in(g, mm1, 0), *kt = dl_in(g, mm1, 1);
  const DlValue *v = dl_in(g, mm2, 1), *y = dl_out(g, mm2, 0);
  if (v->rank != q->rank ||
      !dl_dim_eq(&v->dims[v->rank - 2], &kt->dims[kt->rank - 1]))
    return DL_OK;
  for (int d = 0; d < q->rank - 2; d++)
    if (!dl_dim_eq(&v->dims[d], &q->dims[d]))
      return DL_OK;
  if (!y || y->dtype != DL_F32 || y->rank != q->rank)
    return DL_OK;
  dead[ndead++] = mm2;
  int in[4] = {mm1->in[0], mm1->in[1], mm2->in[1], mask};
  DlNode *at;
  DL_TRY(rc_replace(r, mm2, DL_OP_Attention, in, mask >= 0 ? 4 : 3, dead, ndead,
                    &at));
  at->domain = "dlcc";
  DlAttr a;
  memset(&a, 0, sizeof a);
  a.name = "scale";
  a.kind = DL_ATTR_FLOAT;
  a.f = (float)scale;
  DL_TRY(fu_add_attr(g, at, &a));
  if (kind != 0) {
    a.name = "dlcc.mask_kind";
    a.kind = DL_ATTR_INT;
    a.f = 0;
    a.i = kind;
    DL_TRY(fu_add_attr(g, at, &a));
    a.name = "dlcc.mask_fill";
    a.kind = DL_ATTR_FLOAT;
    a.i = 0;
    a.f = (float)fill;
    DL_TRY(fu_add_attr(g, at, &a));
  }
  DL_TRY(dl_op_info(DL_OP_Attention)->infer(g, at));
  *done = true;
  return DL_OK;
}

DlStatus dl_pass_recognize(DlGraph *g, bool *changed) {
  Rc r;
  FuUses fu = {0};
  r.g = g;
  for (int pos = 0; pos < g->nnodes; pos++) {
    DlNode *n = g->nodes[pos];
    if (n->dead || (n->op != DL_OP_ReduceMean && n->op != DL_OP_Erf &&
                    n->op != DL_OP_Exp && n->op != DL_OP_Softmax))
      continue;
    DL_TRY(fu_uses(g, &fu));
    r.uses = fu.uses;
    r.isout = fu.isout;
    bool done;
    if (n->op == DL_OP_ReduceMean)
      DL_TRY(rc_layernorm(&r, n, &done));
    else if (n->op == DL_OP_Erf)
      DL_TRY(rc_gelu(&r, n, &done));
    else if (n->op == DL_OP_Exp)
      DL_TRY(rc_softmax(&r, n, &done));
    else
      DL_TRY(rc_attention(&r, n, &done));
    if (done)
      fu.valid = false;
    if (done && changed)
      *changed = true;
  }
  return DL_OK;
}
