/*
 * shape_util.h - helpers private to the shape op family (ops/shape.c and
 * ops/movement.c).  Not a contract: nothing outside the family uses it.
 */
#ifndef DLCC_OPS_SHAPE_UTIL_H
#define DLCC_OPS_SHAPE_UTIL_H

#include "ops/ops.h"

/* Largest 0-D/1-D integer tensor whose elements are tracked as a symval,
 * and the longest shape-like list an op reads. */
#define DL_SH_SYMVAL_CAP 64

void *dl_sh_alloc(DlGraph *g, size_t bytes);
DlStatus dl_sh_oom(DlGraph *g, const DlNode *n);
/* Sets output i's dtype and shape; error if it is missing. */
DlStatus dl_sh_set_out(DlGraph *g, const DlNode *n, int i, DlDType t, int rank,
                       const DlDim *dims, DlValue **out);
/* Gives a small 0-D/1-D integer value the symval el[count]; when every
 * element is a constant the value also gets constant data. */
DlStatus dl_sh_put_symval(DlGraph *g, const DlNode *n, DlValue *v,
                          const DlDim *el, int count);
/* Elements of a small 0-D/1-D integer value known at compile time (data or
 * symval); at most DL_SH_SYMVAL_CAP. */
bool dl_sh_known(const DlValue *v, DlDim *out, int *count);
/* Shape-like input i read through dl_value_known_dims; unsupported naming
 * the node ("shape input is computed at run time") when it is not known. */
DlStatus dl_sh_known_list(DlGraph *g, const DlNode *n, int i, const char *what,
                          DlDim *out, int *count);
/* Same, every element must be a constant. */
DlStatus dl_sh_const_list(DlGraph *g, const DlNode *n, int i, const char *what,
                          int64_t *out, int *count);
/* INTS attribute copied to out; *count = -1 when absent. */
DlStatus dl_sh_attr_list(DlGraph *g, const DlNode *n, const char *name,
                         int64_t *out, int *count);
/* Error for element types kernels cannot move (strings). */
DlStatus dl_sh_need_data_dtype(DlGraph *g, const DlNode *n, const DlValue *v);

/* Product of dims as an I64 expression. */
KExpr *dl_sh_numel_expr(KBuilder *kb, int rank, const DlDim *dims);
/* rank nested KF_PARALLEL loops over dims (the innermost also KF_VECTOR
 * when `vector`); idx[] receives the loop variables.  Close with
 * kb_end_n(kb, rank). */
void dl_sh_open_nest(KBuilder *kb, int rank, const DlDim *dims, KExpr **idx,
                     bool vector);
/* out[i] = in[i] over the element count of out. */
void dl_sh_flat_copy(KBuilder *kb, const DlValue *in, const DlValue *out);
/* Constant expression of element i of data (of type t). */
KExpr *dl_sh_elem_expr(KBuilder *kb, DlDType t, const void *data, int64_t i);

#endif
