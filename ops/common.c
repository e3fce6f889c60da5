/*
 * common.c - helpers shared by the op families: broadcasting of symbolic
 * shapes, axis normalization, input checks and compile-time integer lists.
 */
#include "ops/ops.h"

#include <string.h>

static const char *dim_str(DlGraph *g, const DlDim *d) {
  char buf[256];
  dl_dim_print(buf, sizeof buf, d, g->syms);
  return dl_arena_strdup(&g->ctx->arena, buf);
}

DlStatus dl_broadcast(DlGraph *g, const DlNode *n, int nshapes,
                      const DlValue *const *vals, int *out_rank,
                      DlDim *out_dims) {
  int rank = 0;
  for (int k = 0; k < nshapes; k++) {
    const DlValue *v = vals[k];
    if (!v || v->rank < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "input %d has unknown shape", k);
    if (v->rank > rank)
      rank = v->rank;
  }
  if (rank > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED, "rank %d too large",
                         rank);
  for (int d = 0; d < rank; d++)
    out_dims[d] = dl_dim_const(1);
  for (int k = 0; k < nshapes; k++) {
    const DlValue *v = vals[k];
    int off = rank - v->rank;
    for (int d = 0; d < v->rank; d++) {
      DlDim *o = &out_dims[off + d];
      const DlDim *x = &v->dims[d];
      int64_t co, cx;
      bool ko = dl_dim_is_const(o, &co), kx = dl_dim_is_const(x, &cx);
      if (dl_dim_eq(o, x))
        continue;
      if (kx && cx == 1)
        continue;
      if (ko && co == 1) {
        *o = *x;
        continue;
      }
      if (ko && kx)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "cannot broadcast dimension %lld against %lld "
                             "(axis %d of the output)",
                             (long long)co, (long long)cx, off + d);
      if (ko || kx) {
        /* A symbol against a constant c != 1: the only valid outcomes
         * (symbol == c, or symbol == 1) both give c. */
        if (kx)
          *o = *x;
        continue;
      }
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "cannot broadcast %s against %s", dim_str(g, o),
                           dim_str(g, x));
    }
  }
  *out_rank = rank;
  return DL_OK;
}

DlStatus dl_norm_axis(DlGraph *g, const DlNode *n, int64_t axis, int rank,
                      int *out) {
  if (axis < -(int64_t)rank || axis >= (int64_t)rank)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "axis %lld out of range for rank %d", (long long)axis,
                         rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return DL_OK;
}

DlStatus dl_need_input(DlGraph *g, const DlNode *n, int i, DlValue **out) {
  DlValue *v = dl_in(g, n, i);
  if (!v)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "input %d is missing", i);
  if (v->rank < 0)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input %d ('%s') has unknown shape", i,
                         v->name ? v->name : "");
  *out = v;
  return DL_OK;
}

DlStatus dl_const_ints(DlGraph *g, const DlNode *n, int input, int64_t *out,
                       int cap, int *count) {
  DlValue *v;
  DL_TRY(dl_need_input(g, n, input, &v));
  if (!dl_dtype_is_int(v->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input %d must be an integer tensor, not %s", input,
                         dl_dtype_name(v->dtype));
  int64_t numel = dl_value_numel_const(v);
  if (numel < 0 || (!v->data && !v->symval))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "input %d ('%s') must be known at compile time", input,
                         v->name ? v->name : "");
  if (numel > cap)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "input %d has %lld elements (at most %d supported)",
                         input, (long long)numel, cap);
  for (int64_t k = 0; k < numel; k++) {
    if (v->data) {
      const char *p = (const char *)v->data;
      switch (v->dtype) {
      case DL_I8:
        out[k] = ((const int8_t *)p)[k];
        break;
      case DL_U8:
        out[k] = ((const uint8_t *)p)[k];
        break;
      case DL_I16:
        out[k] = ((const int16_t *)p)[k];
        break;
      case DL_U16:
        out[k] = ((const uint16_t *)p)[k];
        break;
      case DL_I32:
        out[k] = ((const int32_t *)p)[k];
        break;
      case DL_U32:
        out[k] = ((const uint32_t *)p)[k];
        break;
      case DL_I64:
        out[k] = ((const int64_t *)p)[k];
        break;
      case DL_U64:
        out[k] = (int64_t)((const uint64_t *)p)[k];
        break;
      default:
        return dl_error_node(g->ctx, n, DL_ERR_INVALID, "input %d has dtype %s",
                             input, dl_dtype_name(v->dtype));
      }
    } else if (!dl_dim_is_const(&v->symval[k], &out[k])) {
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "input %d ('%s') must be known at compile time "
                           "(element %lld is %s)",
                           input, v->name ? v->name : "", (long long)k,
                           dim_str(g, &v->symval[k]));
    }
  }
  *count = (int)numel;
  return DL_OK;
}

bool dl_same_layout(const DlValue *a, const DlValue *b) {
  if (!a || !b || a->rank < 0 || a->rank != b->rank ||
      dl_dtype_size(a->dtype) != dl_dtype_size(b->dtype))
    return false;
  for (int d = 0; d < a->rank; d++)
    if (!dl_dim_eq(&a->dims[d], &b->dims[d]))
      return false;
  return true;
}
