/*
 * movement.c - data-movement ops of the shape family: Transpose, Concat,
 * Split, Slice, Gather, Pad, Expand, Tile, Trilu.  Shape arithmetic ops and
 * the family's helpers are in ops/shape.c.
 *
 * Every lowering is a loop nest over an output with index arithmetic into
 * the input; on small 0-D/1-D integer tensors inference also propagates the
 * symval (elements known as polynomials).
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/shape_util.h"

#define CAP DL_SH_SYMVAL_CAP

static KExpr *ke_and(KBuilder *kb, KExpr *a, KExpr *b) {
  return a ? ke_bin(kb, KB_AND, a, b) : b;
}

/* ((a % m) + m) % m for m > 0. */
static KExpr *ke_pos_mod(KBuilder *kb, KExpr *a, KExpr *m) {
  return ke_bin(kb, KB_MOD, ke_add(kb, ke_bin(kb, KB_MOD, a, m), m), m);
}

/* ---- Transpose -------------------------------------------------------- */

static DlStatus get_perm(DlGraph *g, const DlNode *n, int rank, int *perm) {
  int64_t p[CAP];
  int c;
  DL_TRY(dl_sh_attr_list(g, n, "perm", p, &c));
  if (c < 0) {
    for (int i = 0; i < rank; i++)
      perm[i] = rank - 1 - i;
    return DL_OK;
  }
  if (c != rank)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "perm has %d entries for rank %d", c, rank);
  bool seen[DL_MAX_RANK] = {false};
  for (int i = 0; i < rank; i++) {
    int a;
    DL_TRY(dl_norm_axis(g, n, p[i], rank, &a));
    if (seen[a])
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "perm is not a permutation");
    seen[a] = true;
    perm[i] = a;
  }
  return DL_OK;
}

DlStatus dl_infer_Transpose(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  int perm[DL_MAX_RANK];
  DL_TRY(get_perm(g, n, in->rank, perm));
  DlDim od[DL_MAX_RANK];
  for (int i = 0; i < in->rank; i++)
    od[i] = in->dims[perm[i]];
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, in->rank, od, &out));
  DlDim el[CAP];
  int c;
  if (in->rank <= 1 && dl_sh_known(in, el, &c))
    return dl_sh_put_symval(g, n, out, el, c);
  return DL_OK;
}

DlStatus dl_lower_Transpose(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  int perm[DL_MAX_RANK];
  DL_TRY(get_perm(g, n, in->rank, perm));
  int bi = kb_buf(kb, in, false), bo = kb_buf(kb, out, true);
  KExpr *idx[DL_MAX_RANK], *iidx[DL_MAX_RANK];
  bool contig = in->rank == 0 || perm[in->rank - 1] == in->rank - 1;
  dl_sh_open_nest(kb, out->rank, out->dims, idx, contig);
  for (int i = 0; i < out->rank; i++)
    iidx[perm[i]] = idx[i];
  kb_store(kb, bo, ke_flat_index(kb, out->rank, out->dims, idx),
           ke_load(kb, bi, ke_flat_index(kb, in->rank, in->dims, iidx)));
  kb_end_n(kb, out->rank);
  return DL_OK;
}

/* ---- Concat ----------------------------------------------------------- */

static DlStatus concat_axis(DlGraph *g, const DlNode *n, int rank, int *axis) {
  const DlAttr *a = dl_attr(n, "axis");
  if (!a)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "attribute 'axis' is "
                         "required");
  return dl_norm_axis(g, n, a->i, rank, axis);
}

DlStatus dl_infer_Concat(DlGraph *g, DlNode *n) {
  DlValue *first, *out;
  DL_TRY(dl_need_input(g, n, 0, &first));
  int rank = first->rank, axis;
  if (rank == 0)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "cannot concatenate scalars");
  DL_TRY(concat_axis(g, n, rank, &axis));
  DlDim od[DL_MAX_RANK];
  memcpy(od, first->dims, sizeof(DlDim) * (size_t)rank);
  for (int k = 1; k < n->nin; k++) {
    DlValue *v;
    DL_TRY(dl_need_input(g, n, k, &v));
    if (v->rank != rank)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "input %d has rank %d, expected %d", k, v->rank,
                           rank);
    if (v->dtype != first->dtype)
      return dl_error_node(
          g->ctx, n, DL_ERR_INVALID, "input %d has type %s, expected %s", k,
          dl_dtype_name(v->dtype), dl_dtype_name(first->dtype));
    for (int i = 0; i < rank; i++) {
      if (i == axis) {
        DlDim t;
        if (!dl_dim_add(&od[i], &v->dims[i], &t))
          return dl_error_node(
              g->ctx, n, DL_ERR_UNSUPPORTED,
              "unsupported: concatenated dim is not representable");
        od[i] = t;
        continue;
      }
      int64_t a, b;
      bool ca = dl_dim_is_const(&od[i], &a),
           cb = dl_dim_is_const(&v->dims[i], &b);
      if (ca && cb && a != b)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "input %d: dim %d is %lld, expected %lld", k, i,
                             (long long)b, (long long)a);
      /* Equal at run time by the op's contract; keep the constant. */
      if (!ca && cb)
        od[i] = v->dims[i];
    }
  }
  DL_TRY(dl_sh_set_out(g, n, 0, first->dtype, rank, od, &out));
  if (rank != 1)
    return DL_OK;
  DlDim el[CAP], piece[CAP];
  int total = 0;
  for (int k = 0; k < n->nin; k++) {
    int c;
    if (!dl_sh_known(dl_in(g, n, k), piece, &c) || total + c > CAP)
      return DL_OK;
    memcpy(el + total, piece, sizeof(DlDim) * (size_t)c);
    total += c;
  }
  return dl_sh_put_symval(g, n, out, el, total);
}

DlStatus dl_lower_Concat(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, out));
  int axis;
  DL_TRY(concat_axis(g, n, out->rank, &axis));
  int bo = kb_buf(kb, out, true);
  KExpr *off = ke_int(kb, 0);
  for (int k = 0; k < n->nin; k++) {
    DlValue *in = dl_in(g, n, k);
    int bi = kb_buf(kb, in, false);
    KExpr *idx[DL_MAX_RANK], *oidx[DL_MAX_RANK];
    dl_sh_open_nest(kb, in->rank, in->dims, idx, axis != in->rank - 1);
    for (int i = 0; i < in->rank; i++)
      oidx[i] = i == axis ? ke_add(kb, idx[i], off) : idx[i];
    kb_store(kb, bo, ke_flat_index(kb, out->rank, out->dims, oidx),
             ke_load(kb, bi, ke_flat_index(kb, in->rank, in->dims, idx)));
    kb_end_n(kb, in->rank);
    off = ke_add(kb, off, ke_dim(kb, &in->dims[axis]));
  }
  return DL_OK;
}

/* ---- Split ------------------------------------------------------------ */

/* Sizes of the outputs along the axis. */
static DlStatus split_sizes(DlGraph *g, const DlNode *n, const DlValue *in,
                            int *axis, DlDim *sizes) {
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", 0), in->rank, axis));
  const DlDim *d = &in->dims[*axis];
  int nout = n->nout, c = -1;
  DlDim sp[CAP];
  if (dl_in(g, n, 1)) {
    DL_TRY(dl_sh_known_list(g, n, 1, "split", sp, &c));
  } else {
    int64_t a[CAP];
    DL_TRY(dl_sh_attr_list(g, n, "split", a, &c));
    for (int i = 0; i < c; i++)
      sp[i] = dl_dim_const(a[i]);
  }
  if (c >= 0) {
    if (c != nout)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "split has %d entries for %d outputs", c, nout);
    DlDim sum = dl_dim_const(0);
    for (int i = 0; i < c; i++) {
      int64_t v;
      if (dl_dim_is_const(&sp[i], &v) && v < 0)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID, "negative split size");
      DlDim t;
      if (!dl_dim_add(&sum, &sp[i], &t))
        return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                             "unsupported: split sizes are not representable");
      sum = t;
      sizes[i] = sp[i];
    }
    int64_t a, b;
    if (dl_dim_is_const(&sum, &a) && dl_dim_is_const(d, &b) && a != b)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "split sizes sum to %lld, the axis has %lld",
                           (long long)a, (long long)b);
    return DL_OK;
  }
  int64_t num = dl_attr_int(n, "num_outputs", nout);
  if (num != nout)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "num_outputs is %lld but the node has %d outputs",
                         (long long)num, nout);
  bool uneven_ok = n->opset >= 18 && dl_attr(n, "num_outputs") != NULL;
  int64_t dv;
  if (dl_dim_is_const(d, &dv)) {
    if (dv % nout != 0 && !uneven_ok)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "axis of size %lld does not split into %d equal "
                           "parts",
                           (long long)dv, nout);
    int64_t chunk = (dv + nout - 1) / nout;
    for (int i = 0; i < nout; i++) {
      int64_t lo = i * chunk, hi = lo + chunk > dv ? dv : lo + chunk;
      sizes[i] = dl_dim_const(hi > lo ? hi - lo : 0);
    }
    return DL_OK;
  }
  DlDim cnt = dl_dim_const(nout), q;
  if (!dl_dim_div(d, &cnt, &q))
    return dl_error_node(
        g->ctx, n, DL_ERR_UNSUPPORTED,
        "unsupported: symbolic axis cannot be split into %d equal parts", nout);
  DlDim chk;
  if (!dl_dim_mul(&q, &cnt, &chk) || !dl_dim_eq(&chk, d))
    return dl_error_node(
        g->ctx, n, DL_ERR_UNSUPPORTED,
        "unsupported: symbolic axis cannot be split into %d equal parts", nout);
  for (int i = 0; i < nout; i++)
    sizes[i] = q;
  return DL_OK;
}

DlStatus dl_infer_Split(DlGraph *g, DlNode *n) {
  DlValue *in;
  DL_TRY(dl_need_input(g, n, 0, &in));
  if (in->rank == 0)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "cannot split a scalar");
  if (n->nout > CAP)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: too many outputs");
  int axis;
  DlDim sizes[CAP];
  DL_TRY(split_sizes(g, n, in, &axis, sizes));
  DlDim el[CAP];
  int c = 0;
  bool known = in->rank == 1 && dl_sh_known(in, el, &c);
  int64_t off = 0;
  for (int k = 0; k < n->nout; k++) {
    DlDim od[DL_MAX_RANK];
    memcpy(od, in->dims, sizeof(DlDim) * (size_t)in->rank);
    od[axis] = sizes[k];
    int64_t len;
    bool piece = known && dl_dim_is_const(&sizes[k], &len) && off + len <= c;
    if (!piece)
      known = false;
    if (!dl_out(g, n, k)) {
      if (piece)
        off += len;
      continue;
    }
    DlValue *out;
    DL_TRY(dl_sh_set_out(g, n, k, in->dtype, in->rank, od, &out));
    if (piece) {
      DL_TRY(dl_sh_put_symval(g, n, out, el + off, (int)len));
      off += len;
    }
  }
  return DL_OK;
}

DlStatus dl_lower_Split(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  int axis;
  DlDim sizes[CAP];
  DL_TRY(split_sizes(g, n, in, &axis, sizes));
  int bi = kb_buf(kb, in, false);
  KExpr *off = ke_int(kb, 0);
  for (int k = 0; k < n->nout; k++) {
    DlValue *out = dl_out(g, n, k);
    /* An output already known as constant data (from its symval) is not
     * written: it lives with the weights. */
    if (out && !out->data) {
      int bo = kb_buf(kb, out, true);
      KExpr *idx[DL_MAX_RANK], *iidx[DL_MAX_RANK];
      dl_sh_open_nest(kb, out->rank, out->dims, idx, axis != in->rank - 1);
      for (int i = 0; i < in->rank; i++)
        iidx[i] = i == axis ? ke_add(kb, idx[i], off) : idx[i];
      kb_store(kb, bo, ke_flat_index(kb, out->rank, out->dims, idx),
               ke_load(kb, bi, ke_flat_index(kb, in->rank, in->dims, iidx)));
      kb_end_n(kb, out->rank);
    }
    off = ke_add(kb, off, ke_dim(kb, &sizes[k]));
  }
  return DL_OK;
}

/* ---- Slice ------------------------------------------------------------ */

typedef struct SliceSpec {
  DlDim start[DL_MAX_RANK]; /* first input index per axis */
  int64_t step[DL_MAX_RANK];
  DlDim len[DL_MAX_RANK]; /* output dims */
} SliceSpec;

#define BIG ((int64_t)INT32_MAX)

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

static DlStatus slice_axis(DlGraph *g, const DlNode *n, const DlDim *d,
                           const DlDim *ps, const DlDim *pe, int64_t k,
                           DlDim *start, DlDim *len) {
  int64_t dv, s, e;
  bool cs = dl_dim_is_const(ps, &s), ce = dl_dim_is_const(pe, &e);
  if (dl_dim_is_const(d, &dv) && cs && ce) {
    if (k == INT64_MIN)
      k = INT64_MIN + 1;
    int64_t cnt = 0;
    if (s < 0)
      s += dv;
    if (e < 0)
      e += dv;
    if (k > 0) {
      s = clamp64(s, 0, dv);
      e = clamp64(e, 0, dv);
      if (e > s)
        cnt = (e - s - 1) / k + 1;
    } else if (dv > 0) {
      s = clamp64(s, 0, dv - 1);
      e = clamp64(e, -1, dv - 1);
      if (s > e)
        cnt = (s - e - 1) / (-k) + 1;
    } else {
      s = 0;
    }
    *start = dl_dim_const(s);
    *len = dl_dim_const(cnt);
    return DL_OK;
  }
  /* A symbolic dim or bound: polynomial arithmetic for steps of +-1.
   * Constant bounds within the dim are taken as they are (the symbolic dim
   * is assumed large enough); negative ones count from the end. */
  if (k != 1 && k != -1)
    return dl_error_node(
        g->ctx, n, DL_ERR_UNSUPPORTED,
        "unsupported: slice with step %lld over a symbolic dim", (long long)k);
  DlDim one = dl_dim_const(1), ss = *ps, ee = *pe;
  bool ok = true;
  if (cs) {
    if (s <= -BIG)
      ss = dl_dim_const(0);
    else if (s >= BIG)
      ok = k > 0 ? (ss = *d, true) : dl_dim_sub(d, &one, &ss);
    else if (s < 0) {
      DlDim t = dl_dim_const(s);
      ok = dl_dim_add(d, &t, &ss);
    }
  }
  if (ok && ce) {
    if (e <= -BIG)
      ee = dl_dim_const(k > 0 ? 0 : -1);
    else if (e >= BIG)
      ok = k > 0 ? (ee = *d, true) : dl_dim_sub(d, &one, &ee);
    else if (e < 0) {
      DlDim t = dl_dim_const(e);
      ok = dl_dim_add(d, &t, &ee);
    }
  }
  if (ok)
    ok = k > 0 ? dl_dim_sub(&ee, &ss, len) : dl_dim_sub(&ss, &ee, len);
  if (!ok)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: slice bounds are not representable");
  int64_t lv;
  if (dl_dim_is_const(len, &lv) && lv < 0)
    *len = dl_dim_const(0);
  *start = ss;
  return DL_OK;
}

static DlStatus slice_spec(DlGraph *g, const DlNode *n, const DlValue *in,
                           SliceSpec *sp) {
  for (int i = 0; i < in->rank; i++) {
    sp->start[i] = dl_dim_const(0);
    sp->step[i] = 1;
    sp->len[i] = in->dims[i];
  }
  DlDim st[CAP], en[CAP];
  int64_t ax[CAP], steps[CAP];
  int ns, ne, na = -1, nk = -1;
  if (n->opset < 10) {
    int64_t a[CAP], b[CAP];
    DL_TRY(dl_sh_attr_list(g, n, "starts", a, &ns));
    DL_TRY(dl_sh_attr_list(g, n, "ends", b, &ne));
    if (ns < 0 || ne < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "attributes 'starts' and 'ends' are required");
    for (int i = 0; i < ns; i++)
      st[i] = dl_dim_const(a[i]);
    for (int i = 0; i < ne; i++)
      en[i] = dl_dim_const(b[i]);
    DL_TRY(dl_sh_attr_list(g, n, "axes", ax, &na));
  } else {
    DL_TRY(dl_sh_known_list(g, n, 1, "starts", st, &ns));
    DL_TRY(dl_sh_known_list(g, n, 2, "ends", en, &ne));
    if (dl_in(g, n, 3))
      DL_TRY(dl_sh_const_list(g, n, 3, "axes", ax, &na));
    if (dl_in(g, n, 4))
      DL_TRY(dl_sh_const_list(g, n, 4, "steps", steps, &nk));
  }
  if (ns != ne || (na >= 0 && na != ns) || (nk >= 0 && nk != ns))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "starts, ends, axes and steps differ in length");
  if (ns > in->rank)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "%d slice axes for rank %d",
                         ns, in->rank);
  bool seen[DL_MAX_RANK] = {false};
  for (int j = 0; j < ns; j++) {
    int a = j;
    if (na >= 0)
      DL_TRY(dl_norm_axis(g, n, ax[j], in->rank, &a));
    if (seen[a])
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "axis %d repeated", a);
    seen[a] = true;
    int64_t k = nk >= 0 ? steps[j] : 1;
    if (k == 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "step is zero");
    sp->step[a] = k;
    DL_TRY(slice_axis(g, n, &in->dims[a], &st[j], &en[j], k, &sp->start[a],
                      &sp->len[a]));
  }
  return DL_OK;
}

DlStatus dl_infer_Slice(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  SliceSpec sp;
  DL_TRY(slice_spec(g, n, in, &sp));
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, in->rank, sp.len, &out));
  DlDim el[CAP], res[CAP];
  int c;
  int64_t s, len;
  if (in->rank == 1 && dl_sh_known(in, el, &c) &&
      dl_dim_is_const(&sp.start[0], &s) && dl_dim_is_const(&sp.len[0], &len)) {
    for (int64_t i = 0; i < len; i++) {
      int64_t j = s + i * sp.step[0];
      if (j < 0 || j >= c)
        return DL_OK;
      res[i] = el[j];
    }
    return dl_sh_put_symval(g, n, out, res, (int)len);
  }
  return DL_OK;
}

DlStatus dl_lower_Slice(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  SliceSpec sp;
  DL_TRY(slice_spec(g, n, in, &sp));
  int bi = kb_buf(kb, in, false), bo = kb_buf(kb, out, true);
  KExpr *idx[DL_MAX_RANK], *iidx[DL_MAX_RANK];
  dl_sh_open_nest(kb, out->rank, out->dims, idx,
                  in->rank == 0 || sp.step[in->rank - 1] == 1);
  for (int i = 0; i < in->rank; i++)
    iidx[i] = ke_add(kb, ke_dim(kb, &sp.start[i]),
                     ke_mul(kb, idx[i], ke_int(kb, sp.step[i])));
  kb_store(kb, bo, ke_flat_index(kb, out->rank, out->dims, idx),
           ke_load(kb, bi, ke_flat_index(kb, in->rank, in->dims, iidx)));
  kb_end_n(kb, out->rank);
  return DL_OK;
}

/* ---- Gather ----------------------------------------------------------- */

DlStatus dl_infer_Gather(DlGraph *g, DlNode *n) {
  DlValue *data, *ind, *out;
  DL_TRY(dl_need_input(g, n, 0, &data));
  DL_TRY(dl_need_input(g, n, 1, &ind));
  if (data->rank == 0)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "cannot gather from a "
                         "scalar");
  if (ind->dtype != DL_I32 && ind->dtype != DL_I64)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "indices must be int32 or int64, not %s",
                         dl_dtype_name(ind->dtype));
  int axis;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", 0), data->rank, &axis));
  int r = data->rank - 1 + ind->rank;
  if (r > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: output rank %d exceeds %d", r,
                         DL_MAX_RANK);
  DlDim od[DL_MAX_RANK];
  int k = 0;
  for (int i = 0; i < axis; i++)
    od[k++] = data->dims[i];
  for (int i = 0; i < ind->rank; i++)
    od[k++] = ind->dims[i];
  for (int i = axis + 1; i < data->rank; i++)
    od[k++] = data->dims[i];
  DL_TRY(dl_sh_set_out(g, n, 0, data->dtype, r, od, &out));
  /* symval: gather constant indices from a known 1-D tensor */
  DlDim el[CAP], iv[CAP], res[CAP];
  int c, ci;
  if (data->rank == 1 && dl_sh_known(data, el, &c) &&
      dl_sh_known(ind, iv, &ci)) {
    for (int j = 0; j < ci; j++) {
      int64_t x;
      if (!dl_dim_is_const(&iv[j], &x))
        return DL_OK;
      if (x < 0)
        x += c;
      if (x < 0 || x >= c)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "index %lld out of range for %d elements",
                             (long long)x, c);
      res[j] = el[x];
    }
    return dl_sh_put_symval(g, n, out, res, ci);
  }
  return DL_OK;
}

/* Indices outside [-dim, dim) cannot be reported from a kernel yet; the
 * output element is set to 0 for them. */
DlStatus dl_lower_Gather(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *data = dl_in(g, n, 0), *ind = dl_in(g, n, 1), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, data));
  int axis;
  DL_TRY(dl_norm_axis(g, n, dl_attr_int(n, "axis", 0), data->rank, &axis));
  int bd = kb_buf(kb, data, false), bx = kb_buf(kb, ind, false);
  int bo = kb_buf(kb, out, true);
  KExpr *idx[DL_MAX_RANK], *didx[DL_MAX_RANK];
  dl_sh_open_nest(kb, out->rank, out->dims, idx, axis != data->rank - 1);
  KExpr *dim = ke_dim(kb, &data->dims[axis]);
  KExpr *raw = ke_cast(
      kb, DL_I64,
      ke_load(kb, bx, ke_flat_index(kb, ind->rank, ind->dims, idx + axis)));
  int j = kb_decl(kb, "j", DL_I64, raw);
  kb_assign(kb, j,
            ke_select(kb, ke_bin(kb, KB_LT, ke_var(kb, j), ke_int(kb, 0)),
                      ke_add(kb, ke_var(kb, j), dim), ke_var(kb, j)));
  int k = 0;
  for (int i = 0; i < axis; i++)
    didx[k++] = idx[i];
  didx[k++] = ke_var(kb, j);
  for (int i = axis + 1; i < data->rank; i++)
    didx[k++] = idx[i - 1 + ind->rank];
  KExpr *oflat = ke_flat_index(kb, out->rank, out->dims, idx);
  kb_if(kb, ke_and(kb, ke_bin(kb, KB_GE, ke_var(kb, j), ke_int(kb, 0)),
                   ke_bin(kb, KB_LT, ke_var(kb, j), dim)));
  kb_store(kb, bo, oflat,
           ke_load(kb, bd, ke_flat_index(kb, data->rank, data->dims, didx)));
  kb_else(kb);
  kb_store(kb, bo, oflat, ke_const(kb, out->dtype, 0));
  kb_end(kb);
  kb_end_n(kb, out->rank);
  return DL_OK;
}

/* ---- Pad -------------------------------------------------------------- */

typedef enum PadMode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } PadMode;

typedef struct PadSpec {
  PadMode mode;
  DlDim before[DL_MAX_RANK], after[DL_MAX_RANK];
  bool value_attr; /* opset < 11: value from the "value" attribute */
  float value;
} PadSpec;

static DlStatus pad_spec(DlGraph *g, const DlNode *n, const DlValue *in,
                         PadSpec *ps) {
  *ps = (PadSpec){0};
  const char *m = dl_attr_string(n, "mode", "constant");
  if (!strcmp(m, "constant"))
    ps->mode = PAD_CONSTANT;
  else if (!strcmp(m, "reflect"))
    ps->mode = PAD_REFLECT;
  else if (!strcmp(m, "edge"))
    ps->mode = PAD_EDGE;
  else if (!strcmp(m, "wrap"))
    ps->mode = PAD_WRAP;
  else
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: pad mode '%s'", m);
  int r = in->rank;
  for (int i = 0; i < r; i++)
    ps->before[i] = ps->after[i] = dl_dim_const(0);
  DlDim p[CAP];
  int np;
  int axes[DL_MAX_RANK];
  int na = r;
  for (int i = 0; i < r; i++)
    axes[i] = i;
  if (n->opset < 11) {
    int64_t a[CAP];
    DL_TRY(dl_sh_attr_list(g, n, "pads", a, &np));
    if (np < 0)
      DL_TRY(dl_sh_attr_list(g, n, "paddings", a, &np));
    if (np < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "attribute 'pads' is required");
    for (int i = 0; i < np; i++)
      p[i] = dl_dim_const(a[i]);
    ps->value_attr = true;
    ps->value = dl_attr_float(n, "value", 0.0f);
  } else {
    DL_TRY(dl_sh_known_list(g, n, 1, "pads", p, &np));
    if (dl_in(g, n, 3)) {
      int64_t a[CAP];
      int c;
      DL_TRY(dl_sh_const_list(g, n, 3, "axes", a, &c));
      if (c > r)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID, "too many axes");
      bool seen[DL_MAX_RANK] = {false};
      for (int i = 0; i < c; i++) {
        DL_TRY(dl_norm_axis(g, n, a[i], r, &axes[i]));
        if (seen[axes[i]])
          return dl_error_node(g->ctx, n, DL_ERR_INVALID, "axis repeated");
        seen[axes[i]] = true;
      }
      na = c;
    }
  }
  if (np != 2 * na)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "pads has %d entries, expected %d", np, 2 * na);
  for (int i = 0; i < na; i++) {
    ps->before[axes[i]] = p[i];
    ps->after[axes[i]] = p[na + i];
  }
  return DL_OK;
}

DlStatus dl_infer_Pad(DlGraph *g, DlNode *n) {
  DlValue *in;
  DL_TRY(dl_need_input(g, n, 0, &in));
  PadSpec ps;
  DL_TRY(pad_spec(g, n, in, &ps));
  DlDim od[DL_MAX_RANK];
  for (int i = 0; i < in->rank; i++) {
    DlDim t;
    if (!dl_dim_add(&in->dims[i], &ps.before[i], &t) ||
        !dl_dim_add(&t, &ps.after[i], &od[i]))
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "unsupported: padded dim is not representable");
    int64_t v, dv;
    if (dl_dim_is_const(&od[i], &v) && v < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "negative pads remove more than dim %d has", i);
    if (ps.mode != PAD_CONSTANT && dl_dim_is_const(&in->dims[i], &dv) &&
        dv == 0 && dl_dim_is_const(&od[i], &v) && v > 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "cannot pad an empty axis in this mode");
  }
  DlValue *cv = dl_in(g, n, 2);
  if (cv && n->opset >= 11 && cv->dtype != in->dtype)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "constant_value type differs from the input's");
  return dl_sh_set_out(g, n, 0, in->dtype, in->rank, od, NULL);
}

DlStatus dl_lower_Pad(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  PadSpec ps;
  DL_TRY(pad_spec(g, n, in, &ps));
  int bi = kb_buf(kb, in, false), bo = kb_buf(kb, out, true);
  KExpr *pad_value;
  DlValue *cv = n->opset >= 11 ? dl_in(g, n, 2) : NULL;
  if (cv)
    pad_value = ke_load(kb, kb_buf(kb, cv, false), ke_int(kb, 0));
  else
    pad_value = ke_const(kb, in->dtype, ps.value_attr ? ps.value : 0.0);
  int r = in->rank;
  KExpr *idx[DL_MAX_RANK], *iidx[DL_MAX_RANK];
  dl_sh_open_nest(kb, r, out->dims, idx, ps.mode == PAD_CONSTANT);
  KExpr *inside = NULL;
  for (int i = 0; i < r; i++) {
    int64_t pb, pa;
    if (dl_dim_is_const(&ps.before[i], &pb) && pb == 0 &&
        dl_dim_is_const(&ps.after[i], &pa) && pa == 0) {
      iidx[i] = idx[i]; /* axis not padded */
      continue;
    }
    KExpr *c = ke_sub(kb, idx[i], ke_dim(kb, &ps.before[i]));
    KExpr *d = ke_dim(kb, &in->dims[i]);
    KExpr *dm1 = ke_sub(kb, d, ke_int(kb, 1));
    switch (ps.mode) {
    case PAD_CONSTANT:
      inside = ke_and(kb, inside,
                      ke_and(kb, ke_bin(kb, KB_GE, c, ke_int(kb, 0)),
                             ke_bin(kb, KB_LT, c, d)));
      iidx[i] = c;
      break;
    case PAD_EDGE:
      iidx[i] = ke_bin(kb, KB_MIN, ke_bin(kb, KB_MAX, c, ke_int(kb, 0)), dm1);
      break;
    case PAD_WRAP:
      iidx[i] = ke_pos_mod(kb, c, ke_bin(kb, KB_MAX, d, ke_int(kb, 1)));
      break;
    case PAD_REFLECT: {
      /* period 2(d-1); m = c mod period; index = m < d ? m : period - m */
      KExpr *per = ke_mul(kb, dm1, ke_int(kb, 2));
      KExpr *m = ke_pos_mod(kb, c, ke_bin(kb, KB_MAX, per, ke_int(kb, 1)));
      int mv = kb_decl(kb, "m", DL_I64, m);
      iidx[i] = ke_select(kb, ke_bin(kb, KB_LT, ke_var(kb, mv), d),
                          ke_var(kb, mv), ke_sub(kb, per, ke_var(kb, mv)));
      break;
    }
    }
  }
  KExpr *oflat = ke_flat_index(kb, r, out->dims, idx);
  KExpr *load = ke_load(kb, bi, ke_flat_index(kb, r, in->dims, iidx));
  if (inside) {
    kb_if(kb, inside);
    kb_store(kb, bo, oflat, load);
    kb_else(kb);
    kb_store(kb, bo, oflat, pad_value);
    kb_end(kb);
  } else {
    kb_store(kb, bo, oflat, load); /* other modes, or rank 0 */
  }
  kb_end_n(kb, r);
  return DL_OK;
}

/* ---- Expand, Tile ----------------------------------------------------- */

DlStatus dl_infer_Expand(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  DlValue tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.id = -1;
  tmp.dtype = in->dtype;
  int c;
  DlDim sh[CAP];
  DL_TRY(dl_sh_known_list(g, n, 1, "shape", sh, &c));
  if (c > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: target rank %d exceeds %d", c,
                         DL_MAX_RANK);
  tmp.rank = c;
  memcpy(tmp.dims, sh, sizeof(DlDim) * (size_t)c);
  const DlValue *vals[2] = {in, &tmp};
  int r;
  DlDim od[DL_MAX_RANK];
  DL_TRY(dl_broadcast(g, n, 2, vals, &r, od));
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, r, od, &out));
  DlDim el[CAP], res[CAP];
  int ce;
  int64_t len;
  if (r <= 1 && dl_sh_known(in, el, &ce) &&
      (r == 0 || (dl_dim_is_const(&od[0], &len) && len <= CAP))) {
    int cnt = r == 0 ? 1 : (int)len;
    for (int i = 0; i < cnt; i++)
      res[i] = el[ce == 1 ? 0 : i];
    return dl_sh_put_symval(g, n, out, res, cnt);
  }
  return DL_OK;
}

DlStatus dl_lower_Expand(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  int bi = kb_buf(kb, in, false), bo = kb_buf(kb, out, true);
  KExpr *idx[DL_MAX_RANK];
  dl_sh_open_nest(kb, out->rank, out->dims, idx, true);
  kb_store(kb, bo, ke_flat_index(kb, out->rank, out->dims, idx),
           ke_load(kb, bi, ke_bcast_index(kb, in, out->rank, idx)));
  kb_end_n(kb, out->rank);
  return DL_OK;
}

DlStatus dl_infer_Tile(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  DlDim rep[CAP];
  int c;
  DL_TRY(dl_sh_known_list(g, n, 1, "repeats", rep, &c));
  if (c != in->rank)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "repeats has %d entries for rank %d", c, in->rank);
  DlDim od[DL_MAX_RANK];
  for (int i = 0; i < c; i++) {
    int64_t v;
    if (dl_dim_is_const(&rep[i], &v) && v < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "negative repeat");
    if (!dl_dim_mul(&in->dims[i], &rep[i], &od[i]))
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "unsupported: tiled dim is not representable");
  }
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, in->rank, od, &out));
  DlDim el[CAP], res[CAP];
  int ce;
  int64_t len;
  if (in->rank == 1 && dl_sh_known(in, el, &ce) && ce > 0 &&
      dl_dim_is_const(&od[0], &len) && len <= CAP) {
    for (int64_t i = 0; i < len; i++)
      res[i] = el[i % ce];
    return dl_sh_put_symval(g, n, out, res, (int)len);
  }
  return DL_OK;
}

DlStatus dl_lower_Tile(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  int bi = kb_buf(kb, in, false), bo = kb_buf(kb, out, true);
  KExpr *idx[DL_MAX_RANK], *iidx[DL_MAX_RANK];
  dl_sh_open_nest(kb, out->rank, out->dims, idx, false);
  for (int i = 0; i < in->rank; i++)
    iidx[i] = ke_bin(kb, KB_MOD, idx[i], ke_dim(kb, &in->dims[i]));
  kb_store(kb, bo, ke_flat_index(kb, out->rank, out->dims, idx),
           ke_load(kb, bi, ke_flat_index(kb, in->rank, in->dims, iidx)));
  kb_end_n(kb, out->rank);
  return DL_OK;
}

/* ---- Trilu ------------------------------------------------------------ */

DlStatus dl_infer_Trilu(DlGraph *g, DlNode *n) {
  DlValue *in;
  DL_TRY(dl_need_input(g, n, 0, &in));
  if (in->rank < 2)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input must have rank >= 2");
  DlValue *k = dl_in(g, n, 1);
  if (k && (k->dtype != DL_I64 || dl_value_numel_const(k) != 1))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "k must be a one-element int64 tensor");
  return dl_sh_set_out(g, n, 0, in->dtype, in->rank, in->dims, NULL);
}

DlStatus dl_lower_Trilu(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0), *kv = dl_in(g, n, 1);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  bool upper = dl_attr_int(n, "upper", 1) != 0;
  int bi = kb_buf(kb, in, false), bo = kb_buf(kb, out, true);
  KExpr *k =
      kv ? ke_load(kb, kb_buf(kb, kv, false), ke_int(kb, 0)) : ke_int(kb, 0);
  int r = in->rank;
  KExpr *idx[DL_MAX_RANK];
  dl_sh_open_nest(kb, r, out->dims, idx, true);
  /* upper keeps j - i >= k, lower keeps j - i <= k */
  KExpr *diff = ke_sub(kb, idx[r - 1], idx[r - 2]);
  KExpr *keep = ke_bin(kb, upper ? KB_GE : KB_LE, diff, k);
  KExpr *flat = ke_flat_index(kb, r, out->dims, idx);
  kb_store(
      kb, bo, flat,
      ke_select(kb, keep, ke_load(kb, bi, flat), ke_const(kb, out->dtype, 0)));
  kb_end_n(kb, r);
  return DL_OK;
}
