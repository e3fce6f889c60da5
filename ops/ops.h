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
DlStatus dl_const_ints(DlGraph *g, const DlNode *n, int input, int64_t *out,
                       int cap, int *count);
/* True when a and b have the same rank, equal dims and element size, so
 * element i of one sits where element i of the other does (in-place). */
bool dl_same_layout(const DlValue *a, const DlValue *b);

/* ---- fused epilogues (ops/epilogue.c) ---------------------------------
 * Conv, ConvTranspose, MatMul and Gemm nodes may carry an epilogue fused
 * into them by passes/fuse_epilogue.c (bias, activation, residual add).
 * Their lowerings call dl_epilogue on every final output value before it is
 * stored: v is the value, idx[out_rank] the output element's indices.  With
 * no epilogue it returns v unchanged. */
bool dl_has_epilogue(const DlNode *n);
KExpr *dl_epilogue(KBuilder *kb, DlGraph *g, const DlNode *n, KExpr *v,
                   KExpr *const *idx);
/* The epilogue is the GRAPH attribute "dlcc.epilogue" (input 0: the
 * node's own result, inputs 1..: the extra tensors, one output); the extra
 * tensors are the node's inputs from dl_epilogue_base(n) (the op's max_in)
 * on, each broadcasting to the output shape. */
int dl_epilogue_base(const DlNode *n);
/* Applies the epilogue in place over the whole output buffer, for lowerings
 * that accumulate into the output: one more loop nest in the same kernel. */
DlStatus dl_epilogue_inplace(KBuilder *kb, DlGraph *g, const DlNode *n);

/* ---- elementwise expressions (ops/elementwise.c) -----------------------
 * The element expression of an elementwise op (a row of the elementwise
 * table: unary, binary, variadic, Where, Clip, Cast) from its loaded input
 * elements in[n->nin] (NULL for omitted inputs), cast to the output dtype;
 * g is the graph n belongs to.  NULL if n is not elementwise.  Fusion
 * renders chains of ops through it, so each op is still defined once. */
KExpr *dl_elementwise_expr(KBuilder *kb, DlGraph *g, const DlNode *n,
                           KExpr *const *in);
bool dl_is_elementwise(DlOp op);

/* ---- fused subgraphs (ops/fused.c) -------------------------------------
 * The output of a subgraph of elementwise ops (an epilogue, the body of a
 * FusedElementwise) given its inputs' elements in[s->ninputs]; each body
 * value is kept in a scalar local.  NULL if the body is malformed. */
KExpr *dl_subgraph_expr(KBuilder *kb, const DlGraph *s, KExpr *const *in);

#endif
