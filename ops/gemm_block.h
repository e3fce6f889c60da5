/*
 * gemm_block.h - register-blocked products in the kernel IR (ops/matmul.c),
 * shared by MatMul, Gemm and Conv.
 *
 * A block is mr x nr outputs kept in scalar locals while a reduction loop
 * (opened by the caller) adds A(r, k) * B(k, v) to each; B is read at
 * b0 + v * bstride, so with bstride 1 the nr columns are contiguous and a C
 * compiler's straight-line vectorizer turns every row into vector
 * multiply-adds with A(r, k) broadcast.  The caller stores the locals once
 * after the reduction (through dl_epilogue).
 */
#ifndef DLCC_OPS_GEMM_BLOCK_H
#define DLCC_OPS_GEMM_BLOCK_H

#include "codegen/kir.h"

#define KM_MAX_MR 4
#define KM_MAX_NR 16

/* Columns of a MatMul/Gemm register block (ops/matmul.c).  A MatMul with
 * the attribute "dlcc.split" (several outputs, made by passes/horizontal.c)
 * needs every branch width to be a multiple of MM_NR, so that each block of
 * columns lies inside one branch. */
#define MM_NR 16
/* Most outputs of a MatMul with "dlcc.split" (max_out in ops/ops.def). */
#define MM_MAX_SPLIT 16

typedef struct KMicro {
  int mr, nr;
  DlDType t;
  int acc[KM_MAX_MR * KM_MAX_NR];
} KMicro;

/* Declares the mr x nr accumulators (zero). */
void km_begin(KBuilder *kb, KMicro *m, int mr, int nr, DlDType t);
/* One reduction step: acc[r][v] += A[aidx[r]] * B[b0 + v * bstride]. */
void km_accum(KBuilder *kb, const KMicro *m, int abuf, KExpr *const *aidx,
              int bbuf, KExpr *b0, int64_t bstride);
/* The accumulator of row r, column v. */
KExpr *km_acc(KBuilder *kb, const KMicro *m, int r, int v);

#endif
