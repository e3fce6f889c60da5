/*
 * attention.c - Attention (domain "dlcc"): scaled-dot-product attention as
 * one op, made by passes/recognize.c.
 *
 *   Attention(Q, Kt, V [, M]) {scale, dlcc.mask_kind, dlcc.mask_fill}
 *     Q [..., Sq, D], Kt [..., D, Sk], V [..., Sk, Dv], the same rank >= 2
 *     and equal leading dims; f32.
 *     S = scale * (Q @ Kt), then with a mask M broadcasting to S:
 *       dlcc.mask_kind 0: S + M                      (M f32, additive)
 *       dlcc.mask_kind 1: M ? S : dlcc.mask_fill      (M bool)
 *       dlcc.mask_kind 2: M ? dlcc.mask_fill : S      (M bool)
 *     Y = Softmax(S, last axis) @ V                   [..., Sq, Dv]
 *
 * The lowering is one kernel: parallel loops over the leading dims and the
 * query rows and, per row, an online softmax over blocks of keys that
 * rescales the running output row (kept in the output buffer itself) once
 * per block, so no scores are stored.  While every score seen is -inf
 * (masked) a block contributes nothing: the rescale factor is 1 and the
 * weights 0 instead of exp(-inf - -inf) = NaN, so masked keys give what
 * Softmax gives (and a row masked entirely NaN, as Softmax does).
 */
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Shapes of S = Q @ Kt and of the output; false if they do not agree. */
static bool att_shapes(const DlValue *q, const DlValue *kt, const DlValue *v,
                       DlDim *sdims, DlDim *ydims) {
  int r = q->rank;
  if (r < 2 || kt->rank != r || v->rank != r)
    return false;
  for (int d = 0; d < r - 2; d++)
    if (!dl_dim_eq(&q->dims[d], &kt->dims[d]) ||
        !dl_dim_eq(&q->dims[d], &v->dims[d]))
      return false;
  if (!dl_dim_eq(&q->dims[r - 1], &kt->dims[r - 2]) ||
      !dl_dim_eq(&kt->dims[r - 1], &v->dims[r - 2]))
    return false;
  for (int d = 0; d < r - 2; d++)
    sdims[d] = ydims[d] = q->dims[d];
  sdims[r - 2] = ydims[r - 2] = q->dims[r - 2];
  sdims[r - 1] = kt->dims[r - 1];
  ydims[r - 1] = v->dims[r - 1];
  return true;
}

/* m broadcasts (numpy, right-aligned) to a tensor of shape dims[rank]
 * without growing it. */
static bool att_mask_fits(const DlValue *m, int rank, const DlDim *dims) {
  if (m->rank < 0 || m->rank > rank)
    return false;
  for (int d = 0; d < m->rank; d++) {
    const DlDim *md = &m->dims[d], *sd = &dims[rank - m->rank + d];
    int64_t c;
    if (!dl_dim_eq(md, sd) && !(dl_dim_is_const(md, &c) && c == 1))
      return false;
  }
  return true;
}

DlStatus dl_infer_Attention(DlGraph *g, DlNode *n) {
  DlValue *q, *kt, *v;
  DL_TRY(dl_need_input(g, n, 0, &q));
  DL_TRY(dl_need_input(g, n, 1, &kt));
  DL_TRY(dl_need_input(g, n, 2, &v));
  if (q->dtype != DL_F32 || kt->dtype != DL_F32 || v->dtype != DL_F32)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "Q, Kt and V must be f32");
  DlDim sdims[DL_MAX_RANK], ydims[DL_MAX_RANK];
  if (!att_shapes(q, kt, v, sdims, ydims))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "Q [..., Sq, D], Kt [..., D, Sk] and V [..., Sk, Dv] "
                         "must have the same rank >= 2, equal leading dims "
                         "and matching D and Sk");
  int64_t kind = dl_attr_int(n, "dlcc.mask_kind", 0);
  if (kind < 0 || kind > 2)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "dlcc.mask_kind must be 0, 1 or 2, not %lld",
                         (long long)kind);
  if (n->nin > 3 && n->in[3] >= 0) {
    DlValue *m;
    DL_TRY(dl_need_input(g, n, 3, &m));
    DlDType want = kind == 0 ? DL_F32 : DL_BOOL;
    if (m->dtype != want)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "the mask must be %s for dlcc.mask_kind %lld",
                           kind == 0 ? "f32" : "bool", (long long)kind);
    if (!att_mask_fits(m, q->rank, sdims))
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "the mask does not broadcast to the scores");
  }
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output 0 is missing");
  y->dtype = DL_F32;
  dl_value_set_shape(y, q->rank, ydims);
  return DL_OK;
}

/* Keys per step of the online softmax: their scores are kept in scalar
 * locals, the dot products read Kt rows contiguously, and the output row
 * is rescaled once per block. */
#define ATT_KEYS 8

/* What one query row's online softmax needs. */
typedef struct Att {
  DlValue *q, *kt, *v, *m;
  DlDim ydims[DL_MAX_RANK];
  int r, bq, bk, bv, bm, by, kind;
  double scale, fill;
  int mx, l; /* running maximum and sum */
  KExpr *sk; /* Sk */
  KExpr *qi[DL_MAX_RANK], *ki[DL_MAX_RANK], *vi[DL_MAX_RANK];
  KExpr *si[DL_MAX_RANK], *yi[DL_MAX_RANK];
} Att;

/* One block of nj keys from j0 on.  clamp: keys from Sk on read key Sk-1
 * and get the score -inf (the last, partial block). */
static void att_block(KBuilder *kb, Att *t, KExpr *j0, int nj, bool clamp) {
  const DlDType f = DL_F32;
  int r = t->r;
  KExpr *jx[ATT_KEYS], *jl[ATT_KEYS];
  int acc[ATT_KEYS], sv[ATT_KEYS], pv[ATT_KEYS];
  for (int u = 0; u < nj; u++) {
    jx[u] = ke_add(kb, j0, ke_int(kb, u));
    jl[u] = jx[u];
    if (clamp)
      jl[u] = ke_var(kb, kb_decl(kb, "j", DL_I64,
                                 ke_bin(kb, KB_MIN, jx[u],
                                        ke_sub(kb, t->sk, ke_int(kb, 1)))));
    acc[u] = kb_decl(kb, "acc", f, ke_const(kb, f, 0));
  }
  KExpr *dd = ke_var(kb, kb_for(kb, ke_dim(kb, &t->q->dims[r - 1]), "d", 0));
  t->qi[r - 1] = t->ki[r - 2] = dd;
  int qd = kb_decl(kb, "qd", f,
                   ke_load(kb, t->bq, ke_flat_index(kb, r, t->q->dims, t->qi)));
  for (int u = 0; u < nj; u++) {
    t->ki[r - 1] = jl[u];
    kb_assign(
        kb, acc[u],
        ke_add(kb, ke_var(kb, acc[u]),
               ke_mul(kb, ke_var(kb, qd),
                      ke_load(kb, t->bk,
                              ke_flat_index(kb, r, t->kt->dims, t->ki)))));
  }
  kb_end(kb); /* d */

  /* scores, their maximum with the running one */
  KExpr *mn = ke_var(kb, t->mx);
  for (int u = 0; u < nj; u++) {
    KExpr *s = ke_var(kb, acc[u]);
    if (t->scale != 1.0)
      s = ke_mul(kb, s, ke_const(kb, f, t->scale));
    if (t->m) {
      t->si[r - 1] = jl[u];
      KExpr *mv = ke_load(kb, t->bm, ke_bcast_index(kb, t->m, r, t->si));
      if (t->kind == 0)
        s = ke_add(kb, s, mv);
      else if (t->kind == 1)
        s = ke_select(kb, mv, s, ke_const(kb, f, t->fill));
      else
        s = ke_select(kb, mv, ke_const(kb, f, t->fill), s);
    }
    if (clamp)
      s = ke_select(kb, ke_bin(kb, KB_LT, jx[u], t->sk), s,
                    ke_const(kb, f, -INFINITY));
    sv[u] = kb_decl(kb, "s", f, s);
    mn = ke_bin(kb, KB_MAX, mn, ke_var(kb, sv[u]));
  }
  int mnv = kb_decl(kb, "mn", f, mn);
  /* every score so far -inf: nothing to add yet, nothing to rescale */
  int none =
      kb_decl(kb, "none", DL_BOOL,
              ke_bin(kb, KB_EQ, ke_var(kb, mnv), ke_const(kb, f, -INFINITY)));
  int a =
      kb_decl(kb, "a", f,
              ke_select(kb, ke_var(kb, none), ke_const(kb, f, 1),
                        ke_un(kb, KU_EXP,
                              ke_sub(kb, ke_var(kb, t->mx), ke_var(kb, mnv)))));
  KExpr *psum = NULL;
  for (int u = 0; u < nj; u++) {
    pv[u] = kb_decl(
        kb, "p", f,
        ke_select(
            kb, ke_var(kb, none), ke_const(kb, f, 0),
            ke_un(kb, KU_EXP, ke_sub(kb, ke_var(kb, sv[u]), ke_var(kb, mnv)))));
    psum = psum ? ke_add(kb, psum, ke_var(kb, pv[u])) : ke_var(kb, pv[u]);
  }
  kb_assign(kb, t->l,
            ke_add(kb, ke_mul(kb, ke_var(kb, t->l), ke_var(kb, a)), psum));

  /* Y[row, :] = Y[row, :] * a + sum p_u V[j_u, :] */
  KExpr *k =
      ke_var(kb, kb_for(kb, ke_dim(kb, &t->v->dims[r - 1]), "k", KF_VECTOR));
  t->yi[r - 1] = t->vi[r - 1] = k;
  KExpr *yx = ke_flat_index(kb, r, t->ydims, t->yi);
  KExpr *sum = ke_mul(kb, ke_load(kb, t->by, yx), ke_var(kb, a));
  for (int u = 0; u < nj; u++) {
    t->vi[r - 2] = jl[u];
    sum = ke_add(
        kb, sum,
        ke_mul(kb, ke_var(kb, pv[u]),
               ke_load(kb, t->bv, ke_flat_index(kb, r, t->v->dims, t->vi))));
  }
  kb_store(kb, t->by, yx, sum);
  kb_end(kb);
  kb_assign(kb, t->mx, ke_var(kb, mnv));
}

DlStatus dl_lower_Attention(KBuilder *kb, DlGraph *g, DlNode *n) {
  Att t;
  memset(&t, 0, sizeof t);
  t.q = dl_in(g, n, 0);
  t.kt = dl_in(g, n, 1);
  t.v = dl_in(g, n, 2);
  t.m = dl_in(g, n, 3);
  DlValue *y = dl_out(g, n, 0);
  DlDim sdims[DL_MAX_RANK];
  if (!t.q || !t.kt || !t.v || !y ||
      !att_shapes(t.q, t.kt, t.v, sdims, t.ydims))
    return DL_UNREACHABLE(g->ctx);
  const DlDType f = DL_F32;
  int r = t.r = t.q->rank, nl = r - 2;
  t.scale = dl_attr_float(n, "scale", 1.0f);
  t.kind = (int)dl_attr_int(n, "dlcc.mask_kind", 0);
  t.fill = dl_attr_float(n, "dlcc.mask_fill", 0.0f);
  t.bq = kb_buf(kb, t.q, false);
  t.bk = kb_buf(kb, t.kt, false);
  t.bv = kb_buf(kb, t.v, false);
  t.bm = t.m ? kb_buf(kb, t.m, false) : -1;
  t.by = kb_buf(kb, y, true);

  /* Full blocks of nj keys, then (unless nj is known to divide Sk) one
   * clamped block for the rest. */
  const DlDim *skd = &t.kt->dims[r - 1];
  int64_t skc = 0;
  bool skconst = dl_dim_is_const(skd, &skc);
  int nj = skconst && skc > 0 && skc < ATT_KEYS ? (int)skc : ATT_KEYS;
  t.sk = ke_dim(kb, skd);

  /* qi: Q row (lead..., i, d); ki: Kt (lead..., d, j); vi: V (lead..., j,
   * k); si: scores (lead..., i, j) for the mask; yi: Y (lead..., i, k). */
  for (int d = 0; d < nl; d++) {
    char hint[16];
    snprintf(hint, sizeof hint, "b%d", d);
    t.qi[d] = t.ki[d] = t.vi[d] = t.si[d] = t.yi[d] =
        ke_var(kb, kb_for(kb, ke_dim(kb, &t.q->dims[d]), hint, KF_PARALLEL));
  }
  KExpr *i =
      ke_var(kb, kb_for(kb, ke_dim(kb, &t.q->dims[r - 2]), "i", KF_PARALLEL));
  t.qi[r - 2] = t.si[r - 2] = t.yi[r - 2] = i;
  t.mx = kb_decl(kb, "m", f, ke_const(kb, f, -INFINITY));
  t.l = kb_decl(kb, "l", f, ke_const(kb, f, 0));

  /* Y[row, :] = 0 */
  t.yi[r - 1] =
      ke_var(kb, kb_for(kb, ke_dim(kb, &t.v->dims[r - 1]), "k", KF_VECTOR));
  kb_store(kb, t.by, ke_flat_index(kb, r, t.ydims, t.yi), ke_const(kb, f, 0));
  kb_end(kb);

  KExpr *nfull =
      skconst ? ke_int(kb, skc / nj) : ke_div(kb, t.sk, ke_int(kb, nj));
  KExpr *jb = ke_var(kb, kb_for(kb, nfull, "jb", 0));
  att_block(kb, &t, ke_mul(kb, jb, ke_int(kb, nj)), nj, false);
  kb_end(kb); /* jb */
  if (!skconst || skc % nj != 0) {
    KExpr *j0 = ke_mul(kb, nfull, ke_int(kb, nj));
    if (!skconst)
      kb_if(kb, ke_bin(kb, KB_LT, j0, t.sk));
    att_block(kb, &t, j0, nj, true);
    if (!skconst)
      kb_end(kb);
  }

  /* Y[row, :] /= l (no keys at all: Y stays 0, as P @ V with P empty) */
  KExpr *iv = ke_div(kb, ke_const(kb, f, 1), ke_var(kb, t.l));
  if (!skconst || skc == 0)
    iv = ke_select(kb, ke_bin(kb, KB_EQ, t.sk, ke_int(kb, 0)),
                   ke_const(kb, f, 0), iv);
  int inv = kb_decl(kb, "inv", f, iv);
  t.yi[r - 1] =
      ke_var(kb, kb_for(kb, ke_dim(kb, &t.v->dims[r - 1]), "k", KF_VECTOR));
  KExpr *yx = ke_flat_index(kb, r, t.ydims, t.yi);
  kb_store(kb, t.by, yx, ke_mul(kb, ke_load(kb, t.by, yx), ke_var(kb, inv)));
  kb_end(kb);
  kb_end_n(kb, nl + 1);
  return DL_OK;
}
