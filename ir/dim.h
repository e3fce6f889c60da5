/*
 * dim.h - tensor dimensions that are constants or expressions of named
 * symbols.
 *
 * A dim is a small polynomial with integer coefficients over the graph's
 * symbols (batch, seq, ...): a sum of terms, each a coefficient times a
 * product of symbols.  That covers what shape arithmetic in exported models
 * produces: batch*seq after a Reshape with -1, seq+1 after a Concat, 12*64.
 * Polynomials are kept canonical (terms sorted, like terms merged, no zero
 * terms) so equality is structural.  Operations that would leave the form
 * (a division that is not exact, too many terms) fail and return false;
 * callers report DL_ERR_UNSUPPORTED for that node.
 */
#ifndef DLCC_DIM_H
#define DLCC_DIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DL_DIM_TERMS 4   /* max terms in one polynomial  */
#define DL_DIM_FACTORS 3 /* max symbols in one term       */

typedef struct DlTerm {
  int64_t coef;
  uint8_t nsym;
  uint16_t
      sym[DL_DIM_FACTORS]; /* symbol ids, sorted ascending, repeats = powers */
} DlTerm;

typedef struct DlDim {
  uint8_t nterms; /* 0 terms == the constant 0 */
  DlTerm t[DL_DIM_TERMS];
} DlDim;

DlDim dl_dim_const(int64_t c);
DlDim dl_dim_sym(int sym_id);
bool dl_dim_is_const(const DlDim *d, int64_t *value); /* value may be NULL */
bool dl_dim_eq(const DlDim *a, const DlDim *b);
/* Each returns false when the result leaves the representable form. */
bool dl_dim_add(const DlDim *a, const DlDim *b, DlDim *out);
bool dl_dim_sub(const DlDim *a, const DlDim *b, DlDim *out);
bool dl_dim_mul(const DlDim *a, const DlDim *b, DlDim *out);
/* Exact division only (every term divisible by the divisor, which must be a
 * single term).  Constant/constant uses floor semantics. */
bool dl_dim_div(const DlDim *a, const DlDim *b, DlDim *out);
/* Evaluate with symbol values syms[]. */
int64_t dl_dim_eval(const DlDim *d, const int64_t *syms);
/* True when d is known to be >= 1 for all positive symbol values. */
bool dl_dim_is_positive(const DlDim *d);
/* Writes e.g. "batch*seq+1" using names[sym]; returns chars written
 * (snprintf semantics). */
int dl_dim_print(char *buf, size_t cap, const DlDim *d,
                 const char *const *names);

#endif
