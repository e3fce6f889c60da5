/*
 * shape.c - shape arithmetic ops: Identity, Dropout, Reshape, Flatten,
 * Squeeze, Unsqueeze, Shape, Size, Constant, ConstantOfShape, Range.
 * The data-movement ops of the same family (Transpose, Concat, Split, Slice,
 * Gather, Pad, Expand, Tile, Trilu) are in ops/movement.c.
 *
 * Dims stay symbolic: shape-like inputs are read with dl_value_known_dims,
 * which accepts constant data as well as a "symval" (elements known as
 * polynomials of the graph symbols).  Small 0-D/1-D integer results carry a
 * symval of their own (and constant data when every element is a constant),
 * so Shape -> Gather -> Unsqueeze -> Concat -> Reshape keeps a symbolic
 * output shape.  The kernels still compute every value at run time.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/shape_util.h"

/* ---- helpers shared with ops/movement.c ------------------------------- */

void *dl_sh_alloc(DlGraph *g, size_t bytes) {
  return dl_arena_alloc(&g->ctx->arena, bytes ? bytes : 1);
}

DlStatus dl_sh_oom(DlGraph *g, const DlNode *n) {
  return dl_error_node(g->ctx, n, DL_ERR_NOMEM, "out of memory");
}

DlStatus dl_sh_set_out(DlGraph *g, const DlNode *n, int i, DlDType t, int rank,
                       const DlDim *dims, DlValue **out) {
  DlValue *v = dl_out(g, n, i);
  if (!v)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output %d is missing", i);
  if (rank > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: output rank %d exceeds %d", rank,
                         DL_MAX_RANK);
  v->dtype = t;
  dl_value_set_shape(v, rank, dims);
  if (out)
    *out = v;
  return DL_OK;
}

static void write_int(void *p, DlDType t, int64_t i, int64_t x) {
  switch (t) {
  case DL_I8:
    ((int8_t *)p)[i] = (int8_t)x;
    break;
  case DL_U8:
    ((uint8_t *)p)[i] = (uint8_t)x;
    break;
  case DL_BOOL:
    ((uint8_t *)p)[i] = x != 0;
    break;
  case DL_I16:
    ((int16_t *)p)[i] = (int16_t)x;
    break;
  case DL_U16:
    ((uint16_t *)p)[i] = (uint16_t)x;
    break;
  case DL_I32:
    ((int32_t *)p)[i] = (int32_t)x;
    break;
  case DL_U32:
    ((uint32_t *)p)[i] = (uint32_t)x;
    break;
  case DL_I64:
    ((int64_t *)p)[i] = x;
    break;
  case DL_U64:
    ((uint64_t *)p)[i] = (uint64_t)x;
    break;
  default:
    break;
  }
}

DlStatus dl_sh_put_symval(DlGraph *g, const DlNode *n, DlValue *v,
                          const DlDim *el, int count) {
  if (!dl_dtype_is_int(v->dtype) || v->rank > 1 || count > DL_SH_SYMVAL_CAP)
    return DL_OK;
  DlDim *sv = dl_sh_alloc(g, sizeof(DlDim) * (size_t)count);
  if (!sv)
    return dl_sh_oom(g, n);
  bool all_const = true;
  for (int i = 0; i < count; i++) {
    sv[i] = el[i];
    if (!dl_dim_is_const(&el[i], NULL))
      all_const = false;
  }
  v->symval = sv;
  if (all_const && !v->data) {
    void *d = dl_sh_alloc(g, dl_dtype_size(v->dtype) * (size_t)count);
    if (!d)
      return dl_sh_oom(g, n);
    for (int i = 0; i < count; i++) {
      int64_t x = 0;
      dl_dim_is_const(&el[i], &x);
      write_int(d, v->dtype, i, x);
    }
    v->data = d;
  }
  return DL_OK;
}

bool dl_sh_known(const DlValue *v, DlDim *out, int *count) {
  if (!v || !dl_dtype_is_int(v->dtype) || v->rank < 0 || v->rank > 1)
    return false;
  if (v->rank == 1) {
    int64_t len;
    if (!dl_dim_is_const(&v->dims[0], &len) || len > DL_SH_SYMVAL_CAP)
      return false;
  }
  return dl_value_known_dims(v, out, DL_SH_SYMVAL_CAP, count);
}

DlStatus dl_sh_known_list(DlGraph *g, const DlNode *n, int i, const char *what,
                          DlDim *out, int *count) {
  DlValue *v = dl_in(g, n, i);
  if (!v)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "input '%s' is missing",
                         what);
  if (v->rank < 0 || v->rank > 1 || !dl_dtype_is_int(v->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input '%s' must be a 0-D or 1-D integer tensor",
                         what);
  if (!dl_sh_known(v, out, count))
    return dl_error_node(
        g->ctx, n, DL_ERR_UNSUPPORTED,
        "unsupported: input '%s': shape input is computed at run time", what);
  return DL_OK;
}

DlStatus dl_sh_const_list(DlGraph *g, const DlNode *n, int i, const char *what,
                          int64_t *out, int *count) {
  DlDim d[DL_SH_SYMVAL_CAP];
  DL_TRY(dl_sh_known_list(g, n, i, what, d, count));
  for (int k = 0; k < *count; k++)
    if (!dl_dim_is_const(&d[k], &out[k]))
      return dl_error_node(
          g->ctx, n, DL_ERR_UNSUPPORTED,
          "unsupported: input '%s' must be known at compile time", what);
  return DL_OK;
}

DlStatus dl_sh_attr_list(DlGraph *g, const DlNode *n, const char *name,
                         int64_t *out, int *count) {
  const int64_t *p = NULL;
  int c = dl_attr_ints(n, name, &p);
  if (c > DL_SH_SYMVAL_CAP)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: attribute '%s' has too many elements",
                         name);
  *count = c;
  for (int k = 0; k < c; k++)
    out[k] = p[k];
  return DL_OK;
}

DlStatus dl_sh_need_data_dtype(DlGraph *g, const DlNode *n, const DlValue *v) {
  if (dl_dtype_size(v->dtype) == 0)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "element type %s is not supported",
                         dl_dtype_name(v->dtype));
  return DL_OK;
}

KExpr *dl_sh_numel_expr(KBuilder *kb, int rank, const DlDim *dims) {
  KExpr *e = ke_int(kb, 1);
  for (int i = 0; i < rank; i++)
    e = ke_mul(kb, e, ke_dim(kb, &dims[i]));
  return e;
}

static const char *const loop_hints[DL_MAX_RANK] = {"i0", "i1", "i2", "i3",
                                                    "i4", "i5", "i6", "i7"};

void dl_sh_open_nest(KBuilder *kb, int rank, const DlDim *dims, KExpr **idx,
                     bool vector) {
  for (int i = 0; i < rank; i++) {
    unsigned f = KF_PARALLEL;
    if (vector && i == rank - 1)
      f |= KF_VECTOR;
    int v = kb_for(kb, ke_dim(kb, &dims[i]), loop_hints[i], f);
    idx[i] = ke_var(kb, v);
  }
}

void dl_sh_flat_copy(KBuilder *kb, const DlValue *in, const DlValue *out) {
  int bi = kb_buf(kb, in, false);
  int bo = kb_buf(kb, out, true);
  int i = kb_for(kb, dl_sh_numel_expr(kb, out->rank, out->dims), "i",
                 KF_PARALLEL | KF_VECTOR);
  kb_store(kb, bo, ke_var(kb, i), ke_load(kb, bi, ke_var(kb, i)));
  kb_end(kb);
  kb_flat_copy(kb, bi, bo);
}

static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0)
    v = ldexp(m, -24);
  else if (e == 31)
    v = m ? NAN : INFINITY;
  else
    v = ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

static double bf16_to_double(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

KExpr *dl_sh_elem_expr(KBuilder *kb, DlDType t, const void *data, int64_t i) {
  switch (t) {
  case DL_F32:
    return ke_const(kb, t, ((const float *)data)[i]);
  case DL_F64:
    return ke_const(kb, t, ((const double *)data)[i]);
  case DL_F16:
    return ke_const(kb, t, half_to_double(((const uint16_t *)data)[i]));
  case DL_BF16:
    return ke_const(kb, t, bf16_to_double(((const uint16_t *)data)[i]));
  case DL_I64:
    return ke_int(kb, ((const int64_t *)data)[i]);
  case DL_U64:
    return ke_cast(kb, t, ke_int(kb, (int64_t)((const uint64_t *)data)[i]));
  case DL_I32:
    return ke_const(kb, t, ((const int32_t *)data)[i]);
  case DL_U32:
    return ke_const(kb, t, ((const uint32_t *)data)[i]);
  case DL_I16:
    return ke_const(kb, t, ((const int16_t *)data)[i]);
  case DL_U16:
    return ke_const(kb, t, ((const uint16_t *)data)[i]);
  case DL_I8:
    return ke_const(kb, t, ((const int8_t *)data)[i]);
  case DL_U8:
    return ke_const(kb, t, ((const uint8_t *)data)[i]);
  case DL_BOOL:
    return ke_const(kb, t, ((const uint8_t *)data)[i] != 0);
  default:
    return ke_const(kb, t, 0);
  }
}

/* Copies the input's symval to the output when both are small 0-D/1-D. */
static DlStatus pass_symval(DlGraph *g, const DlNode *n, const DlValue *in,
                            DlValue *out) {
  DlDim el[DL_SH_SYMVAL_CAP];
  int c = 0;
  if (out->rank <= 1 && dl_sh_known(in, el, &c))
    return dl_sh_put_symval(g, n, out, el, c);
  return DL_OK;
}

static bool scalar_double(const DlValue *v, double *out);

/* ---- Identity, Dropout ------------------------------------------------ */

DlStatus dl_infer_Identity(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, in->rank, in->dims, &out));
  return pass_symval(g, n, in, out);
}

DlStatus dl_lower_Identity(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  dl_sh_flat_copy(kb, in, out);
  return DL_OK;
}

DlStatus dl_infer_Dropout(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  /* Inference only: training_mode must be absent or a constant false
   * (or true with a constant ratio of 0, which keeps every element). */
  DlValue *tm = dl_in(g, n, 2);
  if (tm) {
    if (!tm->data || dl_value_numel_const(tm) != 1 ||
        dl_dtype_size(tm->dtype) != 1)
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "training_mode is computed at run time (only "
                           "inference is supported)");
    double ratio = 0.5;
    DlValue *rv = dl_in(g, n, 1);
    bool zero_ratio = rv && scalar_double(rv, &ratio) && ratio == 0.0;
    if (*(const uint8_t *)tm->data != 0 && !zero_ratio)
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "training mode is not supported (inference only)");
  }
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, in->rank, in->dims, &out));
  DlValue *mask = dl_out(g, n, 1);
  if (mask)
    DL_TRY(dl_sh_set_out(g, n, 1, n->opset >= 10 ? DL_BOOL : in->dtype,
                         in->rank, in->dims, NULL));
  return pass_symval(g, n, in, out);
}

DlStatus dl_lower_Dropout(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  DL_TRY(dl_sh_need_data_dtype(g, n, in));
  /* Outputs already holding constant data (from a symval) are not
   * written: they live with the weights. */
  if (!out->data)
    dl_sh_flat_copy(kb, in, out);
  DlValue *mask = dl_out(g, n, 1);
  if (mask && !mask->data) {
    int bm = kb_buf(kb, mask, true);
    int i = kb_for(kb, dl_sh_numel_expr(kb, mask->rank, mask->dims), "i",
                   KF_PARALLEL | KF_VECTOR);
    kb_store(kb, bm, ke_var(kb, i), ke_const(kb, mask->dtype, 1));
    kb_end(kb);
  }
  return DL_OK;
}

/* ---- Reshape ---------------------------------------------------------- */

/* numerator / denominator where both are products of dims: equal factors
 * cancel first, then the rest must divide exactly. */
static bool div_products(const DlDim *num, int nn, const DlDim *den, int nd,
                         DlDim *out) {
  bool used[DL_SH_SYMVAL_CAP + DL_MAX_RANK] = {false};
  DlDim rest_den = dl_dim_const(1);
  for (int j = 0; j < nd; j++) {
    int k;
    for (k = 0; k < nn; k++)
      if (!used[k] && dl_dim_eq(&num[k], &den[j]))
        break;
    if (k < nn) {
      used[k] = true;
      continue;
    }
    DlDim t;
    if (!dl_dim_mul(&rest_den, &den[j], &t))
      return false;
    rest_den = t;
  }
  DlDim p = dl_dim_const(1);
  for (int k = 0; k < nn; k++) {
    if (used[k])
      continue;
    DlDim t;
    if (!dl_dim_mul(&p, &num[k], &t))
      return false;
    p = t;
  }
  int64_t a, b;
  if (dl_dim_is_const(&p, &a) && dl_dim_is_const(&rest_den, &b)) {
    if (b == 0 || a % b != 0)
      return false;
    *out = dl_dim_const(a / b);
    return true;
  }
  if (dl_dim_is_const(&rest_den, &b) && b == 0)
    return false;
  if (!dl_dim_div(&p, &rest_den, out))
    return false;
  DlDim chk; /* the division must be exact */
  return dl_dim_mul(out, &rest_den, &chk) && dl_dim_eq(&chk, &p);
}

static bool product(const DlDim *d, int c, DlDim *out) {
  DlDim p = dl_dim_const(1);
  for (int i = 0; i < c; i++) {
    DlDim t;
    if (!dl_dim_mul(&p, &d[i], &t))
      return false;
    p = t;
  }
  *out = p;
  return true;
}

DlStatus dl_infer_Reshape(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  DlDim sh[DL_SH_SYMVAL_CAP];
  int c = 0;
  if (dl_in(g, n, 1)) {
    DL_TRY(dl_sh_known_list(g, n, 1, "shape", sh, &c));
  } else {
    int64_t a[DL_SH_SYMVAL_CAP];
    DL_TRY(dl_sh_attr_list(g, n, "shape", a, &c));
    if (c < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "no target shape");
    for (int i = 0; i < c; i++)
      sh[i] = dl_dim_const(a[i]);
  }
  if (c > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: target rank %d exceeds %d", c,
                         DL_MAX_RANK);
  bool allowzero = dl_attr_int(n, "allowzero", 0) != 0;
  DlDim od[DL_MAX_RANK];
  int infer_at = -1;
  for (int i = 0; i < c; i++) {
    int64_t v;
    if (dl_dim_is_const(&sh[i], &v)) {
      if (v == 0 && !allowzero) {
        if (i >= in->rank)
          return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                               "shape[%d] = 0 copies a dim the input lacks", i);
        od[i] = in->dims[i];
      } else if (v == -1) {
        if (infer_at >= 0)
          return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                               "more than one -1 in the target shape");
        infer_at = i;
        od[i] = dl_dim_const(1);
      } else if (v < 0) {
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "invalid target dim %lld", (long long)v);
      } else {
        od[i] = sh[i];
      }
    } else {
      od[i] = sh[i];
    }
  }
  if (infer_at >= 0) {
    DlDim others[DL_MAX_RANK];
    int no = 0;
    for (int i = 0; i < c; i++)
      if (i != infer_at)
        others[no++] = od[i];
    if (!div_products(in->dims, in->rank, others, no, &od[infer_at]))
      return dl_error_node(
          g->ctx, n, DL_ERR_UNSUPPORTED,
          "unsupported: cannot infer the -1 dim: the element count is "
          "not an exact multiple of the other dims");
  } else {
    DlDim a, b;
    if (product(in->dims, in->rank, &a) && product(od, c, &b) &&
        !dl_dim_eq(&a, &b)) {
      int64_t x, y;
      if (dl_dim_is_const(&a, &x) && dl_dim_is_const(&b, &y))
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "cannot reshape %lld elements into %lld",
                             (long long)x, (long long)y);
      return dl_error_node(
          g->ctx, n, DL_ERR_UNSUPPORTED,
          "unsupported: cannot prove the target shape has the input's "
          "element count");
    }
  }
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, c, od, &out));
  return pass_symval(g, n, in, out);
}

DlStatus dl_lower_Reshape(KBuilder *kb, DlGraph *g, DlNode *n) {
  return dl_lower_Identity(kb, g, n);
}

/* ---- Flatten ---------------------------------------------------------- */

DlStatus dl_infer_Flatten(DlGraph *g, DlNode *n) {
  DlValue *in;
  DL_TRY(dl_need_input(g, n, 0, &in));
  int64_t axis = dl_attr_int(n, "axis", 1);
  if (axis < 0)
    axis += in->rank;
  if (axis < 0 || axis > in->rank)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "axis %lld out of range for rank %d",
                         (long long)dl_attr_int(n, "axis", 1), in->rank);
  DlDim od[2];
  if (!product(in->dims, (int)axis, &od[0]) ||
      !product(in->dims + axis, in->rank - (int)axis, &od[1]))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: flattened dim is not representable");
  return dl_sh_set_out(g, n, 0, in->dtype, 2, od, NULL);
}

DlStatus dl_lower_Flatten(KBuilder *kb, DlGraph *g, DlNode *n) {
  return dl_lower_Identity(kb, g, n);
}

/* ---- Squeeze, Unsqueeze ----------------------------------------------- */

/* Axes from the "axes" attribute (opset < 13) or input 1; *present is
 * false when neither is given. */
static DlStatus get_axes(DlGraph *g, const DlNode *n, int64_t *ax, int *c,
                         bool *present) {
  *present = false;
  *c = 0;
  if (n->opset >= 13 || dl_in(g, n, 1)) {
    if (!dl_in(g, n, 1))
      return DL_OK;
    DL_TRY(dl_sh_const_list(g, n, 1, "axes", ax, c));
    *present = true;
    return DL_OK;
  }
  DL_TRY(dl_sh_attr_list(g, n, "axes", ax, c));
  if (*c < 0) {
    *c = 0;
    return DL_OK;
  }
  *present = true;
  return DL_OK;
}

DlStatus dl_infer_Squeeze(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  int64_t ax[DL_SH_SYMVAL_CAP];
  int c;
  bool present;
  DL_TRY(get_axes(g, n, ax, &c, &present));
  bool drop[DL_MAX_RANK] = {false};
  if (!present || c == 0) {
    for (int i = 0; i < in->rank; i++) {
      int64_t v;
      if (dl_dim_is_const(&in->dims[i], &v)) {
        drop[i] = v == 1;
      } else {
        return dl_error_node(
            g->ctx, n, DL_ERR_UNSUPPORTED,
            "unsupported: Squeeze without axes on symbolic dim %d: the "
            "output rank depends on its run-time value",
            i);
      }
    }
  } else {
    for (int k = 0; k < c; k++) {
      int a;
      DL_TRY(dl_norm_axis(g, n, ax[k], in->rank, &a));
      int64_t v;
      if (dl_dim_is_const(&in->dims[a], &v) && v != 1)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "cannot squeeze axis %d of size %lld", a,
                             (long long)v);
      drop[a] = true;
    }
  }
  DlDim od[DL_MAX_RANK];
  int r = 0;
  for (int i = 0; i < in->rank; i++)
    if (!drop[i])
      od[r++] = in->dims[i];
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, r, od, &out));
  return pass_symval(g, n, in, out);
}

DlStatus dl_lower_Squeeze(KBuilder *kb, DlGraph *g, DlNode *n) {
  return dl_lower_Identity(kb, g, n);
}

DlStatus dl_infer_Unsqueeze(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  int64_t ax[DL_SH_SYMVAL_CAP];
  int c;
  bool present;
  DL_TRY(get_axes(g, n, ax, &c, &present));
  if (!present)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "axes are required");
  int r = in->rank + c;
  if (r > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: output rank %d exceeds %d", r,
                         DL_MAX_RANK);
  bool ins[DL_MAX_RANK] = {false};
  for (int k = 0; k < c; k++) {
    int a;
    DL_TRY(dl_norm_axis(g, n, ax[k], r, &a));
    if (ins[a])
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "axis %d repeated", a);
    ins[a] = true;
  }
  DlDim od[DL_MAX_RANK];
  for (int i = 0, j = 0; i < r; i++)
    od[i] = ins[i] ? dl_dim_const(1) : in->dims[j++];
  DL_TRY(dl_sh_set_out(g, n, 0, in->dtype, r, od, &out));
  return pass_symval(g, n, in, out);
}

DlStatus dl_lower_Unsqueeze(KBuilder *kb, DlGraph *g, DlNode *n) {
  return dl_lower_Identity(kb, g, n);
}

/* ---- Shape, Size ------------------------------------------------------ */

static void shape_range(const DlNode *n, int rank, int *start, int *end) {
  int64_t s = dl_attr_int(n, "start", 0), e = dl_attr_int(n, "end", rank);
  if (s < 0)
    s += rank;
  if (e < 0)
    e += rank;
  s = s < 0 ? 0 : s > rank ? rank : s;
  e = e < 0 ? 0 : e > rank ? rank : e;
  if (e < s)
    e = s;
  *start = (int)s;
  *end = (int)e;
}

DlStatus dl_infer_Shape(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  int s, e;
  shape_range(n, in->rank, &s, &e);
  DlDim len = dl_dim_const(e - s);
  DL_TRY(dl_sh_set_out(g, n, 0, DL_I64, 1, &len, &out));
  return dl_sh_put_symval(g, n, out, in->dims + s, e - s);
}

DlStatus dl_lower_Shape(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  int s, e;
  shape_range(n, in->rank, &s, &e);
  int bo = kb_buf(kb, out, true);
  for (int i = s; i < e; i++)
    kb_store(kb, bo, ke_int(kb, i - s), ke_dim(kb, &in->dims[i]));
  return DL_OK;
}

DlStatus dl_infer_Size(DlGraph *g, DlNode *n) {
  DlValue *in, *out;
  DL_TRY(dl_need_input(g, n, 0, &in));
  DL_TRY(dl_sh_set_out(g, n, 0, DL_I64, 0, NULL, &out));
  DlDim p;
  if (product(in->dims, in->rank, &p))
    return dl_sh_put_symval(g, n, out, &p, 1);
  return DL_OK;
}

DlStatus dl_lower_Size(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *in = dl_in(g, n, 0), *out = dl_out(g, n, 0);
  int bo = kb_buf(kb, out, true);
  kb_store(kb, bo, ke_int(kb, 0), dl_sh_numel_expr(kb, in->rank, in->dims));
  return DL_OK;
}

/* ---- Constant --------------------------------------------------------- */

DlStatus dl_infer_Constant(DlGraph *g, DlNode *n) {
  DlValue *out = dl_out(g, n, 0);
  if (!out)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output 0 is missing");
  const DlAttr *a;
  if ((a = dl_attr(n, "sparse_value")) != NULL)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "sparse_value constants are not supported");
  if (dl_attr(n, "value_string") || dl_attr(n, "value_strings"))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "string constants are not supported");
  if ((a = dl_attr(n, "value")) != NULL) {
    if (a->kind != DL_ATTR_TENSOR || !a->t)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "attribute 'value' is not a tensor");
    const DlValue *t = a->t;
    if (dl_dtype_size(t->dtype) == 0)
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "constant of element type %s is not supported",
                           dl_dtype_name(t->dtype));
    DL_TRY(dl_sh_set_out(g, n, 0, t->dtype, t->rank, t->dims, NULL));
    int64_t ne = dl_value_numel_const(t);
    if (!t->data && ne != 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "constant tensor has no data");
    out->data = t->data ? t->data : dl_sh_alloc(g, 1);
    if (!out->data)
      return dl_sh_oom(g, n);
    return DL_OK;
  }
  if ((a = dl_attr(n, "value_float")) != NULL) {
    float *d = dl_sh_alloc(g, sizeof(float));
    if (!d)
      return dl_sh_oom(g, n);
    d[0] = a->f;
    DL_TRY(dl_sh_set_out(g, n, 0, DL_F32, 0, NULL, NULL));
    out->data = d;
    return DL_OK;
  }
  if ((a = dl_attr(n, "value_int")) != NULL) {
    int64_t *d = dl_sh_alloc(g, sizeof(int64_t));
    if (!d)
      return dl_sh_oom(g, n);
    d[0] = a->i;
    DL_TRY(dl_sh_set_out(g, n, 0, DL_I64, 0, NULL, NULL));
    out->data = d;
    return DL_OK;
  }
  if ((a = dl_attr(n, "value_floats")) != NULL) {
    float *d = dl_sh_alloc(g, sizeof(float) * (size_t)a->n);
    if (!d)
      return dl_sh_oom(g, n);
    if (a->n)
      memcpy(d, a->floats, sizeof(float) * (size_t)a->n);
    DlDim len = dl_dim_const(a->n);
    DL_TRY(dl_sh_set_out(g, n, 0, DL_F32, 1, &len, NULL));
    out->data = d;
    return DL_OK;
  }
  if ((a = dl_attr(n, "value_ints")) != NULL) {
    int64_t *d = dl_sh_alloc(g, sizeof(int64_t) * (size_t)a->n);
    if (!d)
      return dl_sh_oom(g, n);
    if (a->n)
      memcpy(d, a->ints, sizeof(int64_t) * (size_t)a->n);
    DlDim len = dl_dim_const(a->n);
    DL_TRY(dl_sh_set_out(g, n, 0, DL_I64, 1, &len, NULL));
    out->data = d;
    return DL_OK;
  }
  return dl_error_node(g->ctx, n, DL_ERR_INVALID, "no value attribute");
}

/* A Constant's output carries its data and normally lives in the weights;
 * if it is lowered anyway (small constants), the kernel stores each
 * element. */
DlStatus dl_lower_Constant(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *out = dl_out(g, n, 0);
  int64_t ne = dl_value_numel_const(out);
  if (ne < 0 || ne > 65536 || !out->data)
    return dl_error_node(g->ctx, n, DL_ERR_INTERNAL,
                         "constant of %lld elements should be stored as "
                         "weights, not lowered",
                         (long long)ne);
  int bo = kb_buf(kb, out, true);
  for (int64_t i = 0; i < ne; i++)
    kb_store(kb, bo, ke_int(kb, i),
             dl_sh_elem_expr(kb, out->dtype, out->data, i));
  return DL_OK;
}

/* ---- ConstantOfShape -------------------------------------------------- */

static DlStatus cos_value(DlGraph *g, const DlNode *n, DlDType *t,
                          const void **data) {
  static const float zero = 0.0f;
  const DlAttr *a = dl_attr(n, "value");
  *t = DL_F32;
  *data = &zero;
  if (!a)
    return DL_OK;
  if (a->kind != DL_ATTR_TENSOR || !a->t || !a->t->data ||
      dl_value_numel_const(a->t) != 1)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "attribute 'value' must be a one-element tensor");
  if (dl_dtype_size(a->t->dtype) == 0)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "value of element type %s is not supported",
                         dl_dtype_name(a->t->dtype));
  *t = a->t->dtype;
  *data = a->t->data;
  return DL_OK;
}

static int64_t read_int(const void *p, DlDType t) {
  switch (t) {
  case DL_I8:
    return *(const int8_t *)p;
  case DL_U8:
  case DL_BOOL:
    return *(const uint8_t *)p;
  case DL_I16:
    return *(const int16_t *)p;
  case DL_U16:
    return *(const uint16_t *)p;
  case DL_I32:
    return *(const int32_t *)p;
  case DL_U32:
    return *(const uint32_t *)p;
  case DL_I64:
    return *(const int64_t *)p;
  case DL_U64:
    return (int64_t) * (const uint64_t *)p;
  default:
    return 0;
  }
}

DlStatus dl_infer_ConstantOfShape(DlGraph *g, DlNode *n) {
  DlDType t;
  const void *val;
  DL_TRY(cos_value(g, n, &t, &val));
  DlDim sh[DL_SH_SYMVAL_CAP];
  int c = 0;
  DL_TRY(dl_sh_known_list(g, n, 0, "input", sh, &c));
  if (c > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: output rank %d exceeds %d", c,
                         DL_MAX_RANK);
  for (int i = 0; i < c; i++) {
    int64_t v;
    if (dl_dim_is_const(&sh[i], &v) && v < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "negative dim %lld",
                           (long long)v);
  }
  DlValue *out;
  DL_TRY(dl_sh_set_out(g, n, 0, t, c, sh, &out));
  int64_t len;
  if (c <= 1 && dl_dtype_is_int(t) &&
      (c == 0 || (dl_dim_is_const(&sh[0], &len) && len <= DL_SH_SYMVAL_CAP))) {
    int cnt = c == 0 ? 1 : (int)len;
    DlDim el[DL_SH_SYMVAL_CAP];
    for (int i = 0; i < cnt; i++)
      el[i] = dl_dim_const(read_int(val, t));
    return dl_sh_put_symval(g, n, out, el, cnt);
  }
  return DL_OK;
}

DlStatus dl_lower_ConstantOfShape(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlDType t;
  const void *val;
  DL_TRY(cos_value(g, n, &t, &val));
  DlValue *out = dl_out(g, n, 0);
  int bo = kb_buf(kb, out, true);
  int i = kb_for(kb, dl_sh_numel_expr(kb, out->rank, out->dims), "i",
                 KF_PARALLEL | KF_VECTOR);
  kb_store(kb, bo, ke_var(kb, i), dl_sh_elem_expr(kb, t, val, 0));
  kb_end(kb);
  return DL_OK;
}

/* ---- Range ------------------------------------------------------------ */

static bool scalar_double(const DlValue *v, double *out) {
  if (!v || !v->data || dl_value_numel_const(v) != 1)
    return false;
  switch (v->dtype) {
  case DL_F32:
    *out = *(const float *)v->data;
    return true;
  case DL_F64:
    *out = *(const double *)v->data;
    return true;
  case DL_F16:
    *out = half_to_double(*(const uint16_t *)v->data);
    return true;
  case DL_BF16:
    *out = bf16_to_double(*(const uint16_t *)v->data);
    return true;
  default:
    if (!dl_dtype_is_int(v->dtype))
      return false;
    *out = (double)read_int(v->data, v->dtype);
    return true;
  }
}

static bool scalar_dim(const DlValue *v, DlDim *out) {
  DlDim el[DL_SH_SYMVAL_CAP];
  int c = 0;
  if (!dl_sh_known(v, el, &c) || c != 1)
    return false;
  *out = el[0];
  return true;
}

DlStatus dl_infer_Range(DlGraph *g, DlNode *n) {
  DlValue *st, *li, *de;
  DL_TRY(dl_need_input(g, n, 0, &st));
  DL_TRY(dl_need_input(g, n, 1, &li));
  DL_TRY(dl_need_input(g, n, 2, &de));
  DlDType t = st->dtype;
  if (li->dtype != t || de->dtype != t)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "start, limit and delta must have one type");
  if (dl_dtype_size(t) == 0 || t == DL_BOOL)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "element type %s is not supported", dl_dtype_name(t));
  DlDim len;
  DlDim ds, dl, dd;
  int64_t s, l, d;
  bool have_sym = false;
  if (dl_dtype_is_int(t) && scalar_dim(st, &ds) && scalar_dim(li, &dl) &&
      scalar_dim(de, &dd)) {
    have_sym = true;
    if (!dl_dim_is_const(&dd, &d))
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "unsupported: delta must be known at compile time");
    if (d == 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "delta is zero");
    if (dl_dim_is_const(&ds, &s) && dl_dim_is_const(&dl, &l)) {
      int64_t cnt = 0;
      if (d > 0 && l > s)
        cnt = (l - s - 1) / d + 1;
      if (d < 0 && s > l)
        cnt = (s - l - 1) / (-d) + 1;
      len = dl_dim_const(cnt);
    } else if (d == 1 || d == -1) {
      bool ok =
          d == 1 ? dl_dim_sub(&dl, &ds, &len) : dl_dim_sub(&ds, &dl, &len);
      int64_t v;
      if (!ok)
        return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                             "unsupported: range length is not representable");
      if (dl_dim_is_const(&len, &v) && v < 0)
        len = dl_dim_const(0);
    } else {
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "unsupported: symbolic range with step %lld",
                           (long long)d);
    }
  } else {
    double fs, fl, fd;
    if (!scalar_double(st, &fs) || !scalar_double(li, &fl) ||
        !scalar_double(de, &fd))
      return dl_error_node(
          g->ctx, n, DL_ERR_UNSUPPORTED,
          "unsupported: range bounds: shape input is computed at run "
          "time");
    if (fd == 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "delta is zero");
    double cnt = ceil((fl - fs) / fd);
    if (!(cnt > 0))
      cnt = 0;
    if (cnt > 9.0e15)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "range too long");
    len = dl_dim_const((int64_t)cnt);
  }
  DlValue *out;
  DL_TRY(dl_sh_set_out(g, n, 0, t, 1, &len, &out));
  int64_t cnt;
  if (have_sym && dl_dim_is_const(&len, &cnt) && cnt <= DL_SH_SYMVAL_CAP) {
    DlDim el[DL_SH_SYMVAL_CAP];
    for (int64_t i = 0; i < cnt; i++) {
      DlDim step = dl_dim_const(i * d);
      if (!dl_dim_add(&ds, &step, &el[i]))
        return DL_OK;
    }
    return dl_sh_put_symval(g, n, out, el, (int)cnt);
  }
  return DL_OK;
}

DlStatus dl_lower_Range(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *out = dl_out(g, n, 0);
  int bs = kb_buf(kb, dl_in(g, n, 0), false);
  int bd = kb_buf(kb, dl_in(g, n, 2), false);
  int bo = kb_buf(kb, out, true);
  int i = kb_for(kb, ke_dim(kb, &out->dims[0]), "i", KF_PARALLEL | KF_VECTOR);
  KExpr *v = ke_add(kb, ke_load(kb, bs, ke_int(kb, 0)),
                    ke_mul(kb, ke_cast(kb, out->dtype, ke_var(kb, i)),
                           ke_load(kb, bd, ke_int(kb, 0))));
  kb_store(kb, bo, ke_var(kb, i), v);
  kb_end(kb);
  return DL_OK;
}
