/*
 * fold_bn.c - BatchNormalization folded into the Conv or Gemm before it.
 *
 * In inference BN is y = (x - mean) * s + B with s = scale / sqrt(var + eps)
 * per channel.  When x is the output of a Conv (or a Gemm, channels = its
 * columns) read only by the BN and every weight and statistic is constant,
 * the node computes y directly with
 *
 *   W'[m, ...] = W[m, ...] * s[m]        b'[m] = (b[m] - mean[m]) * s[m] + B[m]
 *
 * computed in double and stored in the weights' dtype.  The BN dies; the node
 * takes over its output.  Otherwise a BN read only by a Conv without
 * padding folds into that Conv's weights and bias (fold_into_next).
 */
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <math.h>
#include <string.h>

static bool fb_float(DlDType t) {
  return t == DL_F32 || t == DL_F64;
}

static double fb_get(const DlValue *v, int64_t i) {
  return v->dtype == DL_F64 ? ((const double *)v->data)[i]
                            : (double)((const float *)v->data)[i];
}

static void fb_set(DlDType t, void *data, int64_t i, double x) {
  if (t == DL_F64)
    ((double *)data)[i] = x;
  else
    ((float *)data)[i] = (float)x;
}

/* New constant value of dtype t and shape dims[rank] with zeroed data. */
static DlValue *fb_const(DlGraph *g, const char *name, DlDType t, int rank,
                         const DlDim *dims, int64_t numel) {
  DlValue *v = dl_value_new(g, name, t);
  if (!v)
    return NULL;
  dl_value_set_shape(v, rank, dims);
  v->data = dl_arena_alloc(&g->ctx->arena,
                           dl_dtype_size(t) * (size_t)(numel > 0 ? numel : 1));
  return v->data ? v : NULL;
}

static bool fb_const_vec(const DlValue *v, DlDType t, int64_t len) {
  return v && v->data && v->dtype == t && v->rank == 1 &&
         dl_value_numel_const(v) == len;
}

static DlStatus fold_one(DlGraph *g, DlNode *bn, const int *uses,
                         const bool *isout, bool *done) {
  *done = false;
  if (bn->nin < 5 || dl_attr_int(bn, "training_mode", 0) != 0 ||
      dl_attr_int(bn, "spatial", 1) == 0)
    return DL_OK;
  for (int o = 1; o < bn->nout; o++)
    if (bn->out[o] >= 0 && (uses[bn->out[o]] || isout[bn->out[o]]))
      return DL_OK;
  DlValue *x = dl_in(g, bn, 0), *y = dl_out(g, bn, 0);
  if (!x || !y || x->producer < 0 || uses[x->id] != 1 || isout[x->id])
    return DL_OK;
  DlNode *a = g->nodes[x->producer];
  if (a->dead || a->nout != 1 || dl_has_epilogue(a) ||
      (a->op != DL_OP_Conv && a->op != DL_OP_Gemm) ||
      dl_attr(a, "dlcc.layout")) /* blocked weights (passes/layout.c) */
    return DL_OK;
  DlValue *w = dl_in(g, a, 1), *b = dl_in(g, a, 2);
  DlDType t = x->dtype;
  if (!fb_float(t) || !w || !w->data || w->dtype != t || (b && !b->data))
    return DL_OK;
  int64_t m;
  if (x->rank < 2 || !dl_dim_is_const(&x->dims[1], &m) || m <= 0)
    return DL_OK;
  const DlValue *p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = dl_in(g, bn, i + 1);
    if (!fb_const_vec(p[i], p[i] ? p[i]->dtype : t, m) ||
        !fb_float(p[i]->dtype))
      return DL_OK;
  }
  double eps = dl_attr_float(bn, "epsilon", 1e-5f);
  double *s = dl_arena_alloc(&g->ctx->arena, sizeof(double) * (size_t)m);
  double *nb = dl_arena_alloc(&g->ctx->arena, sizeof(double) * (size_t)m);
  if (!s || !nb)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int64_t c = 0; c < m; c++) {
    s[c] = fb_get(p[0], c) / sqrt(fb_get(p[3], c) + eps);
    nb[c] = -fb_get(p[2], c) * s[c] + fb_get(p[1], c);
  }
  int64_t wn = dl_value_numel_const(w);
  if (wn <= 0)
    return DL_OK;
  DlValue *nw = fb_const(g, NULL, t, w->rank, w->dims, wn);
  if (!nw)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  DlValue *nbias = NULL;
  int bias_slot = 2;
  if (a->op == DL_OP_Conv) {
    /* W is [M, C/group, k...]: row c scaled by s[c] */
    int64_t per = wn / m;
    if (per * m != wn)
      return DL_OK;
    if (b && !fb_const_vec(b, t, m))
      return DL_OK;
    for (int64_t i = 0; i < wn; i++)
      fb_set(t, nw->data, i, fb_get(w, i) * s[i / per]);
    DlDim bd = dl_dim_const(m);
    nbias = fb_const(g, NULL, t, 1, &bd, m);
    if (!nbias)
      return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    for (int64_t c = 0; c < m; c++)
      fb_set(t, nbias->data, c, (b ? fb_get(b, c) * s[c] : 0.0) + nb[c]);
  } else {
    /* Gemm: columns of Y are the channels; Y = alpha A B' + beta C */
    if (x->rank != 2 || w->rank != 2)
      return DL_OK;
    bool tb = dl_attr_int(a, "transB", 0) != 0;
    double beta = dl_attr_float(a, "beta", 1.0f);
    if (beta == 0.0)
      return DL_OK;
    int64_t r0, r1;
    if (!dl_dim_is_const(&w->dims[0], &r0) ||
        !dl_dim_is_const(&w->dims[1], &r1))
      return DL_OK;
    if ((tb ? r0 : r1) != m)
      return DL_OK;
    for (int64_t i = 0; i < r0; i++)
      for (int64_t j = 0; j < r1; j++)
        fb_set(t, nw->data, i * r1 + j, fb_get(w, i * r1 + j) * s[tb ? i : j]);
    /* C' (broadcast to [rows, m] as C was, at least [m]) such that
     * beta * C' = (beta * C - mean) * s + B */
    int64_t rows = 1;
    DlDim cd[2];
    int crank = 1;
    if (b) {
      int64_t d0 = 1, d1 = 1;
      if (b->rank == 2) {
        if (!dl_dim_is_const(&b->dims[0], &d0) ||
            !dl_dim_is_const(&b->dims[1], &d1))
          return DL_OK;
        rows = d0;
        crank = 2;
        cd[0] = b->dims[0];
      } else if (b->rank == 1) {
        if (!dl_dim_is_const(&b->dims[0], &d1))
          return DL_OK;
      } else if (b->rank != 0) {
        return DL_OK;
      }
      if (d1 != 1 && d1 != m)
        return DL_OK;
    }
    cd[crank - 1] = dl_dim_const(m);
    nbias = fb_const(g, NULL, t, crank, cd, rows * m);
    if (!nbias)
      return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    int64_t bcols = b ? (b->rank == 0 ? 1 : dl_value_numel_const(b) / rows) : 0;
    for (int64_t i = 0; i < rows; i++)
      for (int64_t c = 0; c < m; c++) {
        double cv = 0.0;
        if (b)
          cv = fb_get(b, i * bcols + (bcols == 1 ? 0 : c));
        fb_set(t, nbias->data, i * m + c, (beta * cv * s[c] + nb[c]) / beta);
      }
  }
  if (a->nin < 3) {
    int *in = dl_arena_alloc(&g->ctx->arena, sizeof(int) * 3);
    if (!in)
      return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 3; i++)
      in[i] = i < a->nin ? a->in[i] : -1;
    a->in = in;
    a->nin = 3;
  }
  a->in[1] = nw->id;
  a->in[bias_slot] = nbias->id;
  bn->dead = true;
  x->producer = -1;
  a->out[0] = y->id;
  y->producer = a->id;
  *done = true;
  return DL_OK;
}

/* Padding of a Conv is all zero (explicit pads only, auto_pad NOTSET or
 * VALID). */
static bool fb_no_padding(const DlNode *c) {
  const char *ap = dl_attr_string(c, "auto_pad", "NOTSET");
  if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0)
    return false;
  const int64_t *pads;
  int cnt = dl_attr_ints(c, "pads", &pads);
  for (int i = 0; i < cnt; i++)
    if (pads[i] != 0)
      return false;
  return true;
}

/* BN whose only reader is a Conv without padding (DenseNet's BN after a
 * Concat): conv(x * s + t) = conv'(x) with W'[m, c, ...] = W[m, c, ...] *
 * s[c] and b'[m] = b[m] + sum over c and taps of W[m, c, ...] * t[c].  With
 * padding the padded zeros would become t: not exact, so declined. */
static DlStatus fold_into_next(DlGraph *g, DlNode *bn, const int *uses,
                               const bool *isout, bool *done) {
  *done = false;
  if (bn->nin < 5 || dl_attr_int(bn, "training_mode", 0) != 0 ||
      dl_attr_int(bn, "spatial", 1) == 0)
    return DL_OK;
  for (int o = 1; o < bn->nout; o++)
    if (bn->out[o] >= 0 && (uses[bn->out[o]] || isout[bn->out[o]]))
      return DL_OK;
  DlValue *x = dl_in(g, bn, 0), *y = dl_out(g, bn, 0);
  if (!x || !y || uses[y->id] != 1 || isout[y->id])
    return DL_OK;
  DlNode *c = NULL;
  for (int k = bn->id + 1; k < g->nnodes && !c; k++)
    if (!g->nodes[k]->dead && g->nodes[k]->nin > 0 &&
        g->nodes[k]->in[0] == y->id)
      c = g->nodes[k];
  if (!c || c->op != DL_OP_Conv || dl_has_epilogue(c) || !fb_no_padding(c) ||
      dl_attr(c, "dlcc.layout"))
    return DL_OK;
  for (int i = 1; i < c->nin; i++)
    if (c->in[i] == y->id)
      return DL_OK;
  DlValue *w = dl_in(g, c, 1), *b = dl_in(g, c, 2);
  DlDType t = x->dtype;
  if (!fb_float(t) || !w || !w->data || w->dtype != t || (b && !b->data))
    return DL_OK;
  int64_t cin, m, cg, group = dl_attr_int(c, "group", 1);
  if (x->rank < 3 || w->rank != x->rank ||
      !dl_dim_is_const(&x->dims[1], &cin) ||
      !dl_dim_is_const(&w->dims[0], &m) || !dl_dim_is_const(&w->dims[1], &cg) ||
      group < 1 || cg * group != cin || m % group != 0 || cin <= 0)
    return DL_OK;
  if (b && !fb_const_vec(b, t, m))
    return DL_OK;
  const DlValue *p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = dl_in(g, bn, i + 1);
    if (!p[i] || !fb_float(p[i]->dtype) ||
        !fb_const_vec(p[i], p[i]->dtype, cin))
      return DL_OK;
  }
  double eps = dl_attr_float(bn, "epsilon", 1e-5f);
  int64_t wn = dl_value_numel_const(w);
  if (wn <= 0 || wn % (m * cg) != 0)
    return DL_OK;
  int64_t taps = wn / (m * cg), mg = m / group;
  DlValue *nw = fb_const(g, NULL, t, w->rank, w->dims, wn);
  DlDim bd = dl_dim_const(m);
  DlValue *nbias = fb_const(g, NULL, t, 1, &bd, m);
  if (!nw || !nbias)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int64_t o = 0; o < m; o++) {
    double acc = b ? fb_get(b, o) : 0.0;
    for (int64_t ci = 0; ci < cg; ci++) {
      int64_t ch = (o / mg) * cg + ci; /* input channel */
      double sc = fb_get(p[0], ch) / sqrt(fb_get(p[3], ch) + eps);
      double sh = fb_get(p[1], ch) - fb_get(p[2], ch) * sc;
      for (int64_t k = 0; k < taps; k++) {
        int64_t i = (o * cg + ci) * taps + k;
        double wv = fb_get(w, i);
        fb_set(t, nw->data, i, wv * sc);
        acc += wv * sh;
      }
    }
    fb_set(t, nbias->data, o, acc);
  }
  if (c->nin < 3) {
    int *in = dl_arena_alloc(&g->ctx->arena, sizeof(int) * 3);
    if (!in)
      return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 3; i++)
      in[i] = i < c->nin ? c->in[i] : -1;
    c->in = in;
    c->nin = 3;
  }
  c->in[0] = x->id;
  c->in[1] = nw->id;
  c->in[2] = nbias->id;
  bn->dead = true;
  *done = true;
  return DL_OK;
}

DlStatus dl_pass_fold_bn(DlGraph *g, bool *changed) {
  FuUses fu = {0};
  for (int pos = 0; pos < g->nnodes; pos++) {
    DlNode *n = g->nodes[pos];
    if (n->dead || n->op != DL_OP_BatchNormalization)
      continue;
    DL_TRY(fu_uses(g, &fu));
    bool done;
    DL_TRY(fold_one(g, n, fu.uses, fu.isout, &done));
    if (!done)
      DL_TRY(fold_into_next(g, n, fu.uses, fu.isout, &done));
    if (done)
      fu.valid = false;
    if (done && changed)
      *changed = true;
  }
  return DL_OK;
}
