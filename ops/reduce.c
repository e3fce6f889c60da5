/*
 * reduce.c - reductions along axes (ReduceMean/Sum/Max/Min/Prod/SumSquare/
 * L2), ArgMax/ArgMin, Softmax/LogSoftmax and LayerNormalization.
 *
 * Every lowering has the same shape: parallel loops over the kept dims,
 * a scalar accumulator, loops over the reduced dims flagged KF_REDUCE, then
 * the result stored once per kept position.
 */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

typedef enum RedKind {
  R_SUM,
  R_MEAN,
  R_MAX,
  R_MIN,
  R_PROD,
  R_SUMSQ,
  R_L2
} RedKind;

/* ---- small helpers ------------------------------------------------------ */

static int node_opset(const DlGraph *g, const DlNode *n) {
  return n->opset > 0 ? n->opset : (int)g->opset;
}

static bool is_f(DlDType t) {
  return t == DL_F32 || t == DL_F64;
}

static DlStatus bad_dtype(DlGraph *g, const DlNode *n, DlDType t) {
  return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                       "dtype %s is not supported", dl_dtype_name(t));
}

/* Smallest / largest value of dtype t (infinities for floats). */
static KExpr *extreme(KBuilder *kb, DlDType t, bool largest) {
  switch (t) {
  case DL_F32:
  case DL_F64:
    return ke_const(kb, t, largest ? INFINITY : -INFINITY);
  case DL_BOOL:
    return ke_const(kb, t, largest ? 1 : 0);
  case DL_I8:
    return ke_cast(kb, t, ke_int(kb, largest ? INT8_MAX : INT8_MIN));
  case DL_I16:
    return ke_cast(kb, t, ke_int(kb, largest ? INT16_MAX : INT16_MIN));
  case DL_I32:
    return ke_cast(kb, t, ke_int(kb, largest ? INT32_MAX : INT32_MIN));
  case DL_I64:
    return ke_int(kb, largest ? INT64_MAX : INT64_MIN);
  default: /* unsigned: all ones wraps to the maximum */
    return ke_cast(kb, t, ke_int(kb, largest ? -1 : 0));
  }
}

/* Opens one loop per dim, outermost first; idx[k] gets the variables.
 * Unlike kb_for_shape, the innermost loop is not flagged KF_VECTOR unless
 * last_flags says so: loops here usually enclose further loops. */
static void open_loops(KBuilder *kb, int nd, const DlDim *dims, KExpr **idx,
                       unsigned flags, unsigned last_flags) {
  for (int k = 0; k < nd; k++) {
    int v = kb_for(kb, ke_dim(kb, &dims[k]), flags & KF_REDUCE ? "r" : "i",
                   k == nd - 1 ? last_flags : flags);
    idx[k] = ke_var(kb, v);
  }
}

/* Product of dims as an I64 expression. */
static KExpr *ke_count(KBuilder *kb, int nd, const DlDim *dims) {
  KExpr *c = ke_int(kb, 1);
  for (int k = 0; k < nd; k++)
    c = ke_mul(kb, c, ke_dim(kb, &dims[k]));
  return c;
}

/* Square root of x in its own dtype (integers go through f64). */
static KExpr *ke_sqrt_any(KBuilder *kb, KExpr *x) {
  if (is_f(x->dtype))
    return ke_un(kb, KU_SQRT, x);
  return ke_cast(kb, x->dtype, ke_un(kb, KU_SQRT, ke_cast(kb, DL_F64, x)));
}

/* ---- Reduce* ------------------------------------------------------------ */

typedef struct RedAxes {
  bool noop;             /* empty axes with noop_with_empty_axes */
  bool red[DL_MAX_RANK]; /* reduced axes */
  bool keepdims;
} RedAxes;

/* Opset from which the axes are an input rather than an attribute. */
static int axes_input_from(DlOp op) {
  return op == DL_OP_ReduceSum ? 13 : 18;
}

static DlStatus red_axes(DlGraph *g, const DlNode *n, int rank, RedAxes *ra) {
  int64_t axes[DL_MAX_RANK * 2];
  int naxes = 0;
  memset(ra, 0, sizeof *ra);
  ra->keepdims = dl_attr_int(n, "keepdims", 1) != 0;
  if (node_opset(g, n) >= axes_input_from(n->op)) {
    const DlValue *a = dl_in(g, n, 1);
    if (a && dl_value_numel_const(a) != 0)
      DL_TRY(dl_const_ints(g, n, 1, axes, (int)DL_ARRAY_LEN(axes), &naxes));
  } else {
    const int64_t *p;
    int c = dl_attr_ints(n, "axes", &p);
    if (c > (int)DL_ARRAY_LEN(axes))
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "too many axes");
    for (int k = 0; k < c; k++)
      axes[naxes++] = p[k];
  }
  if (naxes == 0) {
    if (dl_attr_int(n, "noop_with_empty_axes", 0) != 0) {
      ra->noop = true;
      return DL_OK;
    }
    for (int d = 0; d < rank; d++)
      ra->red[d] = true;
    return DL_OK;
  }
  for (int k = 0; k < naxes; k++) {
    int ax;
    DL_TRY(dl_norm_axis(g, n, axes[k], rank, &ax));
    if (ra->red[ax])
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "axis %lld repeated",
                           (long long)axes[k]);
    ra->red[ax] = true;
  }
  return DL_OK;
}

static bool red_dtype_ok(int opset, RedKind kind, DlDType t) {
  switch (t) {
  case DL_F32:
  case DL_F64:
  case DL_I32:
  case DL_I64:
  case DL_U32:
  case DL_U64:
    return true;
  case DL_I8:
  case DL_U8:
    return (kind == R_MAX || kind == R_MIN) && opset >= 12;
  case DL_BOOL:
    return (kind == R_MAX || kind == R_MIN) && opset >= 20;
  default:
    return false;
  }
}

/* Symbolic value of a reduction over a whole small 1-D integer tensor. */
static void red_symval(DlGraph *g, RedKind kind, const DlValue *x,
                       const RedAxes *ra, DlValue *y) {
  DlDim e[64];
  int cnt;
  if (ra->noop || x->rank != 1 || !x->symval || x->data)
    return;
  if (!ra->red[0] || !dl_dtype_is_int(x->dtype))
    return;
  if (dl_value_numel_const(x) < 1 || dl_value_numel_const(x) > 64)
    return;
  if (!dl_value_known_dims(x, e, 64, &cnt) || cnt < 1)
    return;
  DlDim acc = e[0];
  for (int k = 1; k < cnt; k++) {
    bool ok = false;
    if (kind == R_SUM)
      ok = dl_dim_add(&acc, &e[k], &acc);
    if (kind == R_PROD)
      ok = dl_dim_mul(&acc, &e[k], &acc);
    if (!ok)
      return;
  }
  if (kind != R_SUM && kind != R_PROD)
    return;
  DlDim *sv = dl_arena_alloc(&g->ctx->arena, sizeof *sv);
  if (!sv)
    return;
  *sv = acc;
  y->symval = sv;
}

static DlStatus reduce_infer(DlGraph *g, DlNode *n, RedKind kind) {
  DlValue *x, *y = dl_out(g, n, 0);
  DL_TRY(dl_need_input(g, n, 0, &x));
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "missing output");
  if (!red_dtype_ok(node_opset(g, n), kind, x->dtype))
    return bad_dtype(g, n, x->dtype);
  RedAxes ra;
  DL_TRY(red_axes(g, n, x->rank, &ra));
  DlDim dims[DL_MAX_RANK];
  int r = 0;
  for (int d = 0; d < x->rank; d++) {
    if (ra.noop || !ra.red[d])
      dims[r++] = x->dims[d];
    else if (ra.keepdims)
      dims[r++] = dl_dim_const(1);
  }
  y->dtype = x->dtype;
  dl_value_set_shape(y, r, dims);
  red_symval(g, kind, x, &ra, y);
  return DL_OK;
}

static DlStatus reduce_lower(KBuilder *kb, DlGraph *g, DlNode *n,
                             RedKind kind) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  RedAxes ra;
  DL_TRY(red_axes(g, n, x->rank, &ra));
  int xb = kb_buf(kb, x, false), yb = kb_buf(kb, y, true);
  DlDType t = x->dtype;
  KExpr *idx[DL_MAX_RANK];
  /* With noop_with_empty_axes nothing is reduced, but the element
   * transform still applies (ReduceSumSquare gives x*x, as onnxruntime). */
  DlDim kd[DL_MAX_RANK], rd[DL_MAX_RANK];
  int nk = 0, nr = 0;
  for (int d = 0; d < x->rank; d++) {
    if (ra.red[d])
      rd[nr++] = x->dims[d];
    else
      kd[nk++] = x->dims[d];
  }
  KExpr *kidx[DL_MAX_RANK], *ridx[DL_MAX_RANK];
  open_loops(kb, nk, kd, kidx, KF_PARALLEL, KF_PARALLEL);
  KExpr *init;
  switch (kind) {
  case R_PROD:
    init = ke_const(kb, t, 1);
    break;
  case R_MAX:
    init = extreme(kb, t, false);
    break;
  case R_MIN:
    init = extreme(kb, t, true);
    break;
  default:
    init = ke_const(kb, t, 0);
    break;
  }
  int acc = kb_decl(kb, "acc", t, init);
  open_loops(kb, nr, rd, ridx, KF_REDUCE, KF_REDUCE);
  for (int d = 0, a = 0, b = 0; d < x->rank; d++)
    idx[d] = ra.red[d] ? ridx[b++] : kidx[a++];
  KExpr *v = ke_load(kb, xb, ke_flat_index(kb, x->rank, x->dims, idx));
  KExpr *cur = ke_var(kb, acc), *nv;
  switch (kind) {
  case R_PROD:
    nv = ke_mul(kb, cur, v);
    break;
  case R_MAX:
    nv = t == DL_BOOL ? ke_bin(kb, KB_OR, cur, v) : ke_bin(kb, KB_MAX, cur, v);
    break;
  case R_MIN:
    nv = t == DL_BOOL ? ke_bin(kb, KB_AND, cur, v) : ke_bin(kb, KB_MIN, cur, v);
    break;
  case R_SUMSQ:
  case R_L2: {
    int xv = kb_decl(kb, "x", t, v);
    nv = ke_add(kb, cur, ke_mul(kb, ke_var(kb, xv), ke_var(kb, xv)));
    break;
  }
  default:
    nv = ke_add(kb, cur, v);
    break;
  }
  kb_assign(kb, acc, nv);
  kb_end_n(kb, nr);
  KExpr *res = ke_var(kb, acc);
  if (kind == R_MEAN)
    res = ke_div(kb, res, ke_cast(kb, t, ke_count(kb, nr, rd)));
  else if (kind == R_L2)
    res = ke_sqrt_any(kb, res);
  kb_store(kb, yb, ke_flat_index(kb, nk, kd, kidx), res);
  kb_end_n(kb, nk);
  return DL_OK;
}

#define RED_DEFINE(name, kind)                                                 \
  DlStatus dl_infer_##name(DlGraph *g, DlNode *n) {                            \
    return reduce_infer(g, n, kind);                                           \
  }                                                                            \
  DlStatus dl_lower_##name(KBuilder *kb, DlGraph *g, DlNode *n) {              \
    return reduce_lower(kb, g, n, kind);                                       \
  }

RED_DEFINE(ReduceMean, R_MEAN)
RED_DEFINE(ReduceSum, R_SUM)
RED_DEFINE(ReduceMax, R_MAX)
RED_DEFINE(ReduceMin, R_MIN)
RED_DEFINE(ReduceProd, R_PROD)
RED_DEFINE(ReduceSumSquare, R_SUMSQ)
RED_DEFINE(ReduceL2, R_L2)

/* ---- ArgMax / ArgMin ---------------------------------------------------- */

static DlStatus arg_infer(DlGraph *g, DlNode *n) {
  DlValue *x, *y = dl_out(g, n, 0);
  DL_TRY(dl_need_input(g, n, 0, &x));
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "missing output");
  if (!is_f(x->dtype) && !dl_dtype_is_int(x->dtype))
    return bad_dtype(g, n, x->dtype);
  if (x->rank < 1)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input must have rank >= 1");
  int ax;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", 0), x->rank, &ax));
  int64_t c;
  if (dl_dim_is_const(&x->dims[ax], &c) && c == 0)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "reduction over an empty axis");
  bool keep = dl_attr_int(n, "keepdims", 1) != 0;
  DlDim dims[DL_MAX_RANK];
  int r = 0;
  for (int d = 0; d < x->rank; d++) {
    if (d != ax)
      dims[r++] = x->dims[d];
    else if (keep)
      dims[r++] = dl_dim_const(1);
  }
  y->dtype = DL_I64;
  dl_value_set_shape(y, r, dims);
  return DL_OK;
}

static DlStatus arg_lower(KBuilder *kb, DlGraph *g, DlNode *n, bool is_max) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  int ax;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", 0), x->rank, &ax));
  bool last = dl_attr_int(n, "select_last_index", 0) != 0;
  int xb = kb_buf(kb, x, false), yb = kb_buf(kb, y, true);
  DlDim kd[DL_MAX_RANK];
  int nk = 0;
  for (int d = 0; d < x->rank; d++)
    if (d != ax)
      kd[nk++] = x->dims[d];
  KExpr *kidx[DL_MAX_RANK], *idx[DL_MAX_RANK];
  open_loops(kb, nk, kd, kidx, KF_PARALLEL, KF_PARALLEL);
  for (int d = 0, a = 0; d < x->rank; d++)
    idx[d] = d == ax ? ke_int(kb, 0) : kidx[a++];
  int best = kb_decl(kb, "best", x->dtype,
                     ke_load(kb, xb, ke_flat_index(kb, x->rank, x->dims, idx)));
  int bi = kb_decl(kb, "bi", DL_I64, ke_int(kb, 0));
  int r = kb_for(kb, ke_dim(kb, &x->dims[ax]), "r", KF_REDUCE);
  idx[ax] = ke_var(kb, r);
  int v = kb_decl(kb, "x", x->dtype,
                  ke_load(kb, xb, ke_flat_index(kb, x->rank, x->dims, idx)));
  KBinOp cmp = is_max ? (last ? KB_GE : KB_GT) : (last ? KB_LE : KB_LT);
  kb_if(kb, ke_bin(kb, cmp, ke_var(kb, v), ke_var(kb, best)));
  kb_assign(kb, best, ke_var(kb, v));
  kb_assign(kb, bi, ke_var(kb, r));
  kb_end(kb);
  kb_end(kb);
  kb_store(kb, yb, ke_flat_index(kb, nk, kd, kidx), ke_var(kb, bi));
  kb_end_n(kb, nk);
  return DL_OK;
}

DlStatus dl_infer_ArgMax(DlGraph *g, DlNode *n) {
  return arg_infer(g, n);
}
DlStatus dl_infer_ArgMin(DlGraph *g, DlNode *n) {
  return arg_infer(g, n);
}
DlStatus dl_lower_ArgMax(KBuilder *kb, DlGraph *g, DlNode *n) {
  return arg_lower(kb, g, n, true);
}
DlStatus dl_lower_ArgMin(KBuilder *kb, DlGraph *g, DlNode *n) {
  return arg_lower(kb, g, n, false);
}

/* ---- Softmax / LogSoftmax ----------------------------------------------- */

/* Axis and the reduced range [r0, r1) of dims. */
static DlStatus softmax_axes(DlGraph *g, const DlNode *n, int rank, int *r0,
                             int *r1) {
  bool old = node_opset(g, n) < 13;
  int ax;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", old ? 1 : -1), rank, &ax));
  *r0 = ax;
  *r1 = old ? rank : ax + 1; /* before 13: the flattened tail */
  return DL_OK;
}

static DlStatus softmax_infer(DlGraph *g, DlNode *n) {
  DlValue *x, *y = dl_out(g, n, 0);
  DL_TRY(dl_need_input(g, n, 0, &x));
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "missing output");
  if (!is_f(x->dtype))
    return bad_dtype(g, n, x->dtype);
  if (x->rank < 1)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input must have rank >= 1");
  int r0, r1;
  DL_TRY(softmax_axes(g, n, x->rank, &r0, &r1));
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, x->dims);
  return DL_OK;
}

static DlStatus softmax_lower(KBuilder *kb, DlGraph *g, DlNode *n, bool log) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  int r0, r1;
  DL_TRY(softmax_axes(g, n, x->rank, &r0, &r1));
  int xb = kb_buf(kb, x, false), yb = kb_buf(kb, y, true);
  DlDType t = x->dtype;
  int rank = x->rank, nr = r1 - r0;
  /* Kept dims: before and after the reduced range. */
  DlDim kd[DL_MAX_RANK];
  int nk = 0;
  for (int d = 0; d < rank; d++)
    if (d < r0 || d >= r1)
      kd[nk++] = x->dims[d];
  KExpr *kidx[DL_MAX_RANK], *ridx[DL_MAX_RANK], *idx[DL_MAX_RANK];
  open_loops(kb, nk, kd, kidx, KF_PARALLEL, KF_PARALLEL);

  /* pass 1: m = max x */
  int m = kb_decl(kb, "m", t, ke_const(kb, t, -INFINITY));
  open_loops(kb, nr, &x->dims[r0], ridx, KF_REDUCE, KF_REDUCE);
  for (int d = 0, a = 0, b = 0; d < rank; d++)
    idx[d] = (d >= r0 && d < r1) ? ridx[b++] : kidx[a++];
  kb_assign(kb, m,
            ke_bin(kb, KB_MAX, ke_var(kb, m),
                   ke_load(kb, xb, ke_flat_index(kb, rank, x->dims, idx))));
  kb_end_n(kb, nr);

  /* pass 2: s = sum exp(x - m) */
  int s = kb_decl(kb, "s", t, ke_const(kb, t, 0));
  open_loops(kb, nr, &x->dims[r0], ridx, KF_REDUCE, KF_REDUCE);
  for (int d = 0, a = 0, b = 0; d < rank; d++)
    idx[d] = (d >= r0 && d < r1) ? ridx[b++] : kidx[a++];
  KExpr *e =
      ke_un(kb, KU_EXP,
            ke_sub(kb, ke_load(kb, xb, ke_flat_index(kb, rank, x->dims, idx)),
                   ke_var(kb, m)));
  kb_assign(kb, s, ke_add(kb, ke_var(kb, s), e));
  kb_end_n(kb, nr);

  /* pass 3: y = exp(x - m) / s, or x - m - log(s) */
  int f;
  if (log)
    f = kb_decl(kb, "lse", t,
                ke_add(kb, ke_var(kb, m), ke_un(kb, KU_LOG, ke_var(kb, s))));
  else
    f = kb_decl(kb, "inv", t, ke_div(kb, ke_const(kb, t, 1), ke_var(kb, s)));
  /* contiguous only when the reduced range is the tail */
  open_loops(kb, nr, &x->dims[r0], ridx, 0, r1 == rank ? KF_VECTOR : 0);
  for (int d = 0, a = 0, b = 0; d < rank; d++)
    idx[d] = (d >= r0 && d < r1) ? ridx[b++] : kidx[a++];
  KExpr *xi = ke_flat_index(kb, rank, x->dims, idx);
  KExpr *xv = ke_load(kb, xb, xi);
  KExpr *res;
  if (log)
    res = ke_sub(kb, xv, ke_var(kb, f));
  else
    res = ke_mul(kb, ke_un(kb, KU_EXP, ke_sub(kb, xv, ke_var(kb, m))),
                 ke_var(kb, f));
  kb_store(kb, yb, ke_flat_index(kb, rank, x->dims, idx), res);
  kb_end_n(kb, nr);
  kb_end_n(kb, nk);
  /* each row is read whole before any of it is written */
  if (dl_same_layout(x, y))
    kb_inplace(kb, xb, yb);
  return DL_OK;
}

DlStatus dl_infer_Softmax(DlGraph *g, DlNode *n) {
  return softmax_infer(g, n);
}
DlStatus dl_infer_LogSoftmax(DlGraph *g, DlNode *n) {
  return softmax_infer(g, n);
}
DlStatus dl_lower_Softmax(KBuilder *kb, DlGraph *g, DlNode *n) {
  return softmax_lower(kb, g, n, false);
}
DlStatus dl_lower_LogSoftmax(KBuilder *kb, DlGraph *g, DlNode *n) {
  return softmax_lower(kb, g, n, true);
}

/* ---- LayerNormalization ------------------------------------------------- */

static DlStatus layernorm_infer(DlGraph *g, DlNode *n) {
  DlValue *x, *y = dl_out(g, n, 0);
  DL_TRY(dl_need_input(g, n, 0, &x));
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "missing output");
  if (!is_f(x->dtype))
    return bad_dtype(g, n, x->dtype);
  if (x->rank < 1)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input must have rank >= 1");
  int ax;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", -1), x->rank, &ax));
  int64_t stash = dl_attr_int(n, "stash_type", 1);
  if (stash != DL_F32 && stash != DL_F64)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "stash_type %lld is not supported", (long long)stash);
  /* Scale and B broadcast against the normalized dims X[axis:]. */
  for (int i = 1; i < 3; i++) {
    DlValue *p = dl_in(g, n, i);
    if (!p)
      continue;
    DL_TRY(dl_need_input(g, n, i, &p));
    if (p->dtype != x->dtype)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "input %d has dtype %s, X has %s", i,
                           dl_dtype_name(p->dtype), dl_dtype_name(x->dtype));
    if (p->rank > x->rank - ax)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "input %d has rank %d, more than the %d "
                           "normalized dims",
                           i, p->rank, x->rank - ax);
    for (int d = 0; d < p->rank; d++) {
      const DlDim *pd = &p->dims[d], *xd = &x->dims[x->rank - p->rank + d];
      int64_t c;
      if (!dl_dim_eq(pd, xd) && !(dl_dim_is_const(pd, &c) && c == 1))
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "input %d does not broadcast to the normalized "
                             "dims",
                             i);
    }
  }
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, x->dims);
  DlDim sd[DL_MAX_RANK];
  for (int d = 0; d < x->rank; d++)
    sd[d] = d < ax ? x->dims[d] : dl_dim_const(1);
  for (int o = 1; o < 3; o++) {
    DlValue *s = dl_out(g, n, o);
    if (!s)
      continue;
    s->dtype = (DlDType)stash;
    dl_value_set_shape(s, x->rank, sd);
  }
  return DL_OK;
}

static DlStatus layernorm_lower(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  DlValue *sc = dl_in(g, n, 1), *bi = dl_in(g, n, 2);
  DlValue *mo = dl_out(g, n, 1), *io = dl_out(g, n, 2);
  int ax;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", -1), x->rank, &ax));
  DlDType u = (DlDType)dl_attr_int(n, "stash_type", 1), t = x->dtype;
  double eps = dl_attr_float(n, "epsilon", 1e-5f);
  int rank = x->rank, nr = rank - ax;
  int xb = kb_buf(kb, x, false), yb = kb_buf(kb, y, true);
  int sb = sc ? kb_buf(kb, sc, false) : -1;
  int bb = bi ? kb_buf(kb, bi, false) : -1;
  int mb = mo ? kb_buf(kb, mo, true) : -1;
  int ib = io ? kb_buf(kb, io, true) : -1;
  KExpr *idx[DL_MAX_RANK];
  open_loops(kb, ax, x->dims, idx, KF_PARALLEL, KF_PARALLEL);
  KExpr *cnt = ke_cast(kb, u, ke_count(kb, nr, &x->dims[ax]));

  /* mean */
  int s = kb_decl(kb, "s", u, ke_const(kb, u, 0));
  open_loops(kb, nr, &x->dims[ax], &idx[ax], KF_REDUCE, KF_REDUCE);
  kb_assign(
      kb, s,
      ke_add(kb, ke_var(kb, s),
             ke_cast(kb, u,
                     ke_load(kb, xb, ke_flat_index(kb, rank, x->dims, idx)))));
  kb_end_n(kb, nr);
  int mean = kb_decl(kb, "mean", u, ke_div(kb, ke_var(kb, s), cnt));

  /* variance (two passes: stable) */
  int v = kb_decl(kb, "v", u, ke_const(kb, u, 0));
  open_loops(kb, nr, &x->dims[ax], &idx[ax], KF_REDUCE, KF_REDUCE);
  int dv = kb_decl(
      kb, "d", u,
      ke_sub(kb,
             ke_cast(kb, u,
                     ke_load(kb, xb, ke_flat_index(kb, rank, x->dims, idx))),
             ke_var(kb, mean)));
  kb_assign(
      kb, v,
      ke_add(kb, ke_var(kb, v), ke_mul(kb, ke_var(kb, dv), ke_var(kb, dv))));
  kb_end_n(kb, nr);
  cnt = ke_cast(kb, u, ke_count(kb, nr, &x->dims[ax]));
  int inv = kb_decl(kb, "inv", u,
                    ke_div(kb, ke_const(kb, u, 1),
                           ke_un(kb, KU_SQRT,
                                 ke_add(kb, ke_div(kb, ke_var(kb, v), cnt),
                                        ke_const(kb, u, eps)))));

  /* y = (x - mean) * inv * scale + b */
  open_loops(kb, nr, &x->dims[ax], &idx[ax], 0, KF_VECTOR);
  KExpr *xv =
      ke_cast(kb, u, ke_load(kb, xb, ke_flat_index(kb, rank, x->dims, idx)));
  KExpr *r = ke_cast(
      kb, t, ke_mul(kb, ke_sub(kb, xv, ke_var(kb, mean)), ke_var(kb, inv)));
  if (sc)
    r = ke_mul(kb, r, ke_load(kb, sb, ke_bcast_index(kb, sc, rank, idx)));
  if (bi)
    r = ke_add(kb, r, ke_load(kb, bb, ke_bcast_index(kb, bi, rank, idx)));
  kb_store(kb, yb, ke_flat_index(kb, rank, x->dims, idx), r);
  kb_end_n(kb, nr);

  KExpr *oi = ke_flat_index(kb, ax, x->dims, idx);
  if (mo)
    kb_store(kb, mb, oi, ke_var(kb, mean));
  if (io)
    kb_store(kb, ib, ke_flat_index(kb, ax, x->dims, idx), ke_var(kb, inv));
  kb_end_n(kb, ax);
  /* each row is read whole before any of it is written */
  if (dl_same_layout(x, y))
    kb_inplace(kb, xb, yb);
  return DL_OK;
}

DlStatus dl_infer_LayerNormalization(DlGraph *g, DlNode *n) {
  return layernorm_infer(g, n);
}
DlStatus dl_lower_LayerNormalization(KBuilder *kb, DlGraph *g, DlNode *n) {
  return layernorm_lower(kb, g, n);
}
