/*
 * ops.h - how an operator is defined.
 *
 * Each op in ops.def is defined once, in ops/<family>.c, by two functions:
 *
 *   DlStatus dl_infer_<Name>(DlGraph *g, DlNode *n);
 *       Checks inputs and attributes, sets every output's dtype and shape
 *       (symbolic dims stay symbolic) and, for integer shape arithmetic,
 *       the output's symval.  Errors name the node (dl_error_node).
 *
 *   DlStatus dl_lower_<Name>(KBuilder *kb, DlGraph *g, DlNode *n);
 *       Emits the op as kernel IR with the KBuilder.  Called only after a
 *       successful infer; may rely on shapes being set.
 *
 * Constant folding needs nothing more: a node whose inputs are all constant
 * is lowered and run by the kernel interpreter (ops/infer.c).
 */
#ifndef DLCC_OPS_H
#define DLCC_OPS_H

#include "codegen/kir.h"
#include "ir/ir.h"

typedef DlStatus (*DlInferFn)(DlGraph *g, DlNode *n);
typedef DlStatus (*DlLowerFn)(KBuilder *kb, DlGraph *g, DlNode *n);

typedef struct DlOpInfo {
  const char *name;
  const char *family;
  int min_in, max_in, min_out, max_out;
  DlInferFn infer;
  DlLowerFn lower;
} DlOpInfo;

const DlOpInfo *dl_op_info(DlOp op);

#define DL_OP(name, fam, min_in, max_in, min_out, max_out)                     \
  DlStatus dl_infer_##name(DlGraph *g, DlNode *n);                             \
  DlStatus dl_lower_##name(KBuilder *kb, DlGraph *g, DlNode *n);
#include "ops/ops.def"
#undef DL_OP

/* ---- helpers shared by op families (ops/common.c) --------------------- */

/* numpy broadcasting of ranks/dims; error names the node. */
DlStatus dl_broadcast(DlGraph *g, const DlNode *n, int nshapes,
                      const DlValue *const *vals, int *out_rank,
                      DlDim *out_dims);
/* Normalizes a possibly negative axis against rank; error if out of range. */
DlStatus dl_norm_axis(DlGraph *g, const DlNode *n, int64_t axis, int rank,
                      int *out);
/* Requires input i to be present with known rank; returns it in *out. */
DlStatus dl_need_input(DlGraph *g, const DlNode *n, int i, DlValue **out);
/* Integer list from an input tensor that must be known at compile time
 * (constant data); error names the node when it is not. */
DlStatus dl_const_ints(DlGraph *g, const DlNode *n, int input,
                       int64_t *out, int cap, int *count);

#endif
