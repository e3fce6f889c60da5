/*
 * matmul.c - matrix products: MatMul (numpy semantics) and Gemm.
 *
 * MatMul promotes a 1-D left operand to [1, K] and a 1-D right operand to
 * [K, 1], broadcasts the batch dims numpy-style and removes the added dims
 * from the result.  Gemm is Y = alpha * A' * B' + beta * C on matrices,
 * with C broadcast to [M, N].
 *
 * Lowering: register blocks of MM_ROWS rows x MM_NR columns
 * (ops/gemm_block.h) accumulate in scalar locals over k and are stored
 * once; the column remainder is one block ending at the last column.
 * Alpha, C and the fused epilogue apply in a vector loop after the plain
 * stores.  Gemm with transB computes dot products of contiguous rows with
 * GEMM_LANES partial sums (vectorizable without reassociation).
 *
 * A MatMul made by passes/horizontal.c may have several outputs and the
 * INTS attribute "dlcc.split" = [n_1, .., n_k] (k = outputs, sum = N, N
 * constant): output i is the column slice of width n_i, [..., M, n_i].
 * Lowering needs every n_i to be a multiple of MM_NR, so each block of
 * columns lies inside one output: the block's stores go to that output
 * (an if on the block's first column), while the epilogue still sees the
 * merged column index.
 */
#include <string.h>

#include "ops/gemm_block.h"
#include "ops/ops.h"

/* Partial sums of the dot products of Gemm with transB (a power of 2). */
#define GEMM_LANES 8
/* Register block of MatMul: MM_ROWS rows x MM_NR columns. */
#define MM_ROWS 4
/* Column widths of the outputs of a MatMul with several outputs. */
#define MM_SPLIT_ATTR "dlcc.split"

static bool mm_type_ok(DlDType t) {
  return dl_dtype_is_float(t) || t == DL_I32 || t == DL_I64 || t == DL_U32 ||
         t == DL_U64;
}

/* Shape facts of a MatMul: batch dims of the result and of each operand
 * (right-aligned), M, K, N. */
typedef struct MmShape {
  int brank; /* batch rank of the result */
  DlDim bdims[DL_MAX_RANK];
  int arank, brank_b; /* batch ranks of A and B */
  DlDim abd[DL_MAX_RANK], bbd[DL_MAX_RANK];
  DlDim m, k, n;
  bool a1, b1; /* operand was 1-D */
} MmShape;

static DlStatus mm_shape(DlGraph *g, const DlNode *n, const DlValue *a,
                         const DlValue *b, MmShape *s) {
  DlCtx *ctx = g->ctx;
  memset(s, 0, sizeof *s);
  if (a->rank < 1 || b->rank < 1)
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "operands must have rank >= 1 (A rank %d, B rank %d)",
                         a->rank, b->rank);
  s->a1 = a->rank == 1;
  s->b1 = b->rank == 1;
  DlDim ak, bk;
  if (s->a1) {
    s->m = dl_dim_const(1);
    ak = a->dims[0];
  } else {
    s->m = a->dims[a->rank - 2];
    ak = a->dims[a->rank - 1];
    s->arank = a->rank - 2;
    for (int i = 0; i < s->arank; i++)
      s->abd[i] = a->dims[i];
  }
  if (s->b1) {
    s->n = dl_dim_const(1);
    bk = b->dims[0];
  } else {
    bk = b->dims[b->rank - 2];
    s->n = b->dims[b->rank - 1];
    s->brank_b = b->rank - 2;
    for (int i = 0; i < s->brank_b; i++)
      s->bbd[i] = b->dims[i];
  }
  if (!dl_dim_eq(&ak, &bk)) {
    char x[64], y[64];
    dl_dim_print(x, sizeof x, &ak, g->syms);
    dl_dim_print(y, sizeof y, &bk, g->syms);
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "inner dims differ: A has K=%s, B has K=%s", x, y);
  }
  s->k = ak;
  /* broadcast the batch dims */
  int r = s->arank > s->brank_b ? s->arank : s->brank_b;
  DlDim one = dl_dim_const(1);
  for (int i = 0; i < r; i++) {
    int ia = i - (r - s->arank), ib = i - (r - s->brank_b);
    const DlDim *da = ia >= 0 ? &s->abd[ia] : &one;
    const DlDim *db = ib >= 0 ? &s->bbd[ib] : &one;
    int64_t ca, cb;
    bool ka = dl_dim_is_const(da, &ca), kb2 = dl_dim_is_const(db, &cb);
    if (dl_dim_eq(da, db) || (kb2 && cb == 1))
      s->bdims[i] = *da;
    else if (ka && ca == 1)
      s->bdims[i] = *db;
    else {
      char x[64], y[64];
      dl_dim_print(x, sizeof x, da, g->syms);
      dl_dim_print(y, sizeof y, db, g->syms);
      return dl_error_node(ctx, n,
                           (ka && kb2) ? DL_ERR_INVALID : DL_ERR_UNSUPPORTED,
                           "batch dims %s and %s do not broadcast", x, y);
    }
  }
  s->brank = r;
  return DL_OK;
}

DlStatus dl_infer_MatMul(DlGraph *g, DlNode *n) {
  DlValue *a, *b;
  DL_TRY(dl_need_input(g, n, 0, &a));
  DL_TRY(dl_need_input(g, n, 1, &b));
  if (a->dtype != b->dtype)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "operand types differ: %s and %s",
                         dl_dtype_name(a->dtype), dl_dtype_name(b->dtype));
  if (!mm_type_ok(a->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "type %s is not supported", dl_dtype_name(a->dtype));
  MmShape s;
  DL_TRY(mm_shape(g, n, a, b, &s));
  DlDim dims[DL_MAX_RANK + 2];
  int r = 0;
  for (int i = 0; i < s.brank; i++)
    dims[r++] = s.bdims[i];
  if (!s.a1)
    dims[r++] = s.m;
  if (!s.b1)
    dims[r++] = s.n;
  if (r > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED, "result rank %d", r);
  const DlAttr *sa = dl_attr(n, MM_SPLIT_ATTR);
  if (!sa) {
    if (n->nout != 1)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "%d outputs without the attribute " MM_SPLIT_ATTR,
                           n->nout);
    DlValue *y = dl_out(g, n, 0);
    if (!y)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output missing");
    y->dtype = a->dtype;
    dl_value_set_shape(y, r, dims);
    return DL_OK;
  }
  /* several outputs: column slices of the product, widths in the
   * attribute, in order */
  int64_t nc;
  if (sa->kind != DL_ATTR_INTS || sa->n != n->nout || s.b1 ||
      !dl_dim_is_const(&s.n, &nc))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         MM_SPLIT_ATTR " must list one width per output (%d) "
                                       "of a product with constant columns",
                         n->nout);
  int64_t sum = 0;
  for (int i = 0; i < sa->n; i++) {
    if (sa->ints[i] <= 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           MM_SPLIT_ATTR " width %d is %lld", i,
                           (long long)sa->ints[i]);
    sum += sa->ints[i];
  }
  if (sum != nc)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         MM_SPLIT_ATTR " widths sum to %lld, not N=%lld",
                         (long long)sum, (long long)nc);
  for (int i = 0; i < n->nout; i++) {
    DlValue *y = dl_out(g, n, i);
    if (!y)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output %d missing", i);
    dims[r - 1] = dl_dim_const(sa->ints[i]);
    y->dtype = a->dtype;
    dl_value_set_shape(y, r, dims);
  }
  return DL_OK;
}

/* Flat offset of the batch block of an operand with batch dims bd[rank]
 * (right-aligned against the result's batch loops idx[brank]). */
static KExpr *mm_batch_off(KBuilder *kb, int rank, const DlDim *bd, int brank,
                           int *const vars) {
  KExpr *off = ke_int(kb, 0);
  for (int i = 0; i < rank; i++) {
    int64_t c;
    KExpr *ix = (dl_dim_is_const(&bd[i], &c) && c == 1)
                    ? ke_int(kb, 0)
                    : ke_var(kb, vars[brank - rank + i]);
    off = ke_add(kb, ke_mul(kb, off, ke_dim(kb, &bd[i])), ix);
  }
  return off;
}

/* ---- register blocks (ops/gemm_block.h) ---------------------------------- */

void km_begin(KBuilder *kb, KMicro *m, int mr, int nr, DlDType t) {
  m->mr = mr;
  m->nr = nr;
  m->t = t;
  for (int i = 0; i < mr * nr; i++)
    m->acc[i] = kb_decl(kb, "acc", t, ke_const(kb, t, 0.0));
}

void km_accum(KBuilder *kb, const KMicro *m, int abuf, KExpr *const *aidx,
              int bbuf, KExpr *b0, int64_t bstride) {
  int av[KM_MAX_MR];
  for (int r = 0; r < m->mr; r++)
    av[r] = kb_decl(kb, "a", m->t, ke_load(kb, abuf, aidx[r]));
  int vb = kb_decl(kb, "b0", DL_I64, b0);
  for (int r = 0; r < m->mr; r++)
    for (int v = 0; v < m->nr; v++) {
      int acc = m->acc[r * m->nr + v];
      KExpr *bi = ke_add(kb, ke_var(kb, vb), ke_int(kb, v * bstride));
      kb_assign(kb, acc,
                ke_add(kb, ke_var(kb, acc),
                       ke_mul(kb, ke_var(kb, av[r]), ke_load(kb, bbuf, bi))));
    }
}

KExpr *km_acc(KBuilder *kb, const KMicro *m, int r, int v) {
  return ke_var(kb, m->acc[r * m->nr + v]);
}

/* What a MatMul block needs: buffers, dims and batch offsets. */
typedef struct MmCtx {
  DlGraph *g;
  DlNode *n;
  const MmShape *s;
  DlDType t;
  int ba, bb, by;
  int vab, vbb, vyb; /* batch offsets of A, B, Y */
  int brank;
  int vb[DL_MAX_RANK]; /* batch loop variables */
  /* Gemm: A transposed, y = alpha * acc + beta * C */
  bool ta, gemm;
  double alpha, beta;
  int bc;
  const DlValue *cval;
  /* MatMul with "dlcc.split": nsplit outputs, output i holds the columns
   * soff[i] .. soff[i] + sn[i] - 1 in buffer bys[i] (batch offset vybs[i]) */
  int nsplit;
  int bys[MM_MAX_SPLIT], vybs[MM_MAX_SPLIT];
  int64_t soff[MM_MAX_SPLIT], sn[MM_MAX_SPLIT];
} MmCtx;

/*
 * Stores an mr x nr block of accumulators (rows from vr0, merged columns
 * from vc0) into buffer by at yb + row * dn + column - coff (coff NULL:
 * 0): plain stores
 * (a contiguous group per row, which the straight-line vectorizer starts
 * from), then the scaling, C and the epilogue in a vector loop over the
 * block's columns.  The epilogue sees the merged column index.
 */
static void mm_store(KBuilder *kb, const MmCtx *c, const KMicro *m, int vr0,
                     int vc0, int mr, int nr, int by, int vyb, KExpr *dn,
                     KExpr *coff) {
  const MmShape *s = c->s;
  int vyr[KM_MAX_MR];
  for (int r = 0; r < mr; r++) {
    KExpr *row = ke_add(kb, ke_var(kb, vr0), ke_int(kb, r));
    KExpr *col = ke_var(kb, vc0);
    if (coff)
      col = ke_sub(kb, col, coff);
    vyr[r] = kb_decl(
        kb, "yr", DL_I64,
        ke_add(kb, ke_add(kb, ke_var(kb, vyb), ke_mul(kb, row, dn)), col));
    for (int v = 0; v < nr; v++)
      kb_store(kb, by, ke_add(kb, ke_var(kb, vyr[r]), ke_int(kb, v)),
               km_acc(kb, m, r, v));
  }
  bool post = dl_has_epilogue(c->n) ||
              (c->gemm && (c->alpha != 1.0 || (c->cval && c->beta != 0.0)));
  if (!post)
    return;
  for (int r = 0; r < mr; r++) {
    KExpr *row = ke_add(kb, ke_var(kb, vr0), ke_int(kb, r));
    int vv = kb_for(kb, ke_int(kb, nr), "v", KF_VECTOR);
    KExpr *col = ke_add(kb, ke_var(kb, vc0), ke_var(kb, vv));
    KExpr *idx[DL_MAX_RANK + 2];
    int ir = 0;
    for (int i = 0; i < c->brank; i++)
      idx[ir++] = ke_var(kb, c->vb[i]);
    if (!s->a1)
      idx[ir++] = row;
    if (!s->b1)
      idx[ir++] = col;
    KExpr *yi = ke_add(kb, ke_var(kb, vyr[r]), ke_var(kb, vv));
    KExpr *val = ke_load(kb, by, yi);
    if (c->gemm) {
      if (c->alpha != 1.0)
        val = ke_mul(kb, ke_const(kb, c->t, c->alpha), val);
      if (c->cval && c->beta != 0.0) {
        KExpr *cv = ke_load(kb, c->bc, ke_bcast_index(kb, c->cval, 2, idx));
        if (c->beta != 1.0)
          cv = ke_mul(kb, ke_const(kb, c->t, c->beta), cv);
        val = ke_add(kb, val, cv);
      }
    }
    kb_store(kb, by, yi, dl_epilogue(kb, c->g, c->n, val, idx));
    kb_end(kb);
  }
}

/*
 * One mr x nr block of one batch: rows row0.., columns col0..; the k loop
 * accumulates in locals, then each output is stored once through the
 * epilogue.
 */
static void mm_block(KBuilder *kb, const MmCtx *c, KExpr *row0, int mr,
                     KExpr *col0, int nr) {
  const MmShape *s = c->s;
  KExpr *dn = ke_dim(kb, &s->n), *dk = ke_dim(kb, &s->k);
  int vr0 = kb_decl(kb, "r0", DL_I64, row0);
  int vc0 = kb_decl(kb, "c0", DL_I64, col0);
  int ar[KM_MAX_MR];
  for (int r = 0; r < mr; r++) {
    KExpr *row = ke_add(kb, ke_var(kb, vr0), ke_int(kb, r));
    ar[r] = kb_decl(
        kb, "ar", DL_I64,
        ke_add(kb, ke_var(kb, c->vab), c->ta ? row : ke_mul(kb, row, dk)));
  }
  KMicro m;
  km_begin(kb, &m, mr, nr, c->t);
  int vk = kb_for(kb, dk, "k", 0);
  KExpr *aidx[KM_MAX_MR];
  for (int r = 0; r < mr; r++)
    aidx[r] = ke_add(kb, ke_var(kb, ar[r]),
                     c->ta ? ke_mul(kb, ke_var(kb, vk), ke_dim(kb, &s->m))
                           : ke_var(kb, vk));
  KExpr *b0 =
      ke_add(kb, ke_add(kb, ke_var(kb, c->vbb), ke_mul(kb, ke_var(kb, vk), dn)),
             ke_var(kb, vc0));
  km_accum(kb, &m, c->ba, aidx, c->bb, b0, 1);
  kb_end(kb);
  if (c->nsplit == 0) {
    mm_store(kb, c, &m, vr0, vc0, mr, nr, c->by, c->vyb, dn, NULL);
    return;
  }
  /* the block lies inside one output (widths are multiples of MM_NR): one
   * branch per output, on the block's first column */
  for (int i = 0; i < c->nsplit; i++) {
    KExpr *lo = ke_bin(kb, KB_GE, ke_var(kb, vc0), ke_int(kb, c->soff[i]));
    KExpr *hi =
        ke_bin(kb, KB_LT, ke_var(kb, vc0), ke_int(kb, c->soff[i] + c->sn[i]));
    KExpr *cond = i == 0               ? hi
                  : i == c->nsplit - 1 ? lo
                                       : ke_bin(kb, KB_AND, lo, hi);
    kb_if(kb, cond);
    mm_store(kb, c, &m, vr0, vc0, mr, nr, c->bys[i], c->vybs[i],
             ke_int(kb, c->sn[i]), ke_int(kb, c->soff[i]));
    kb_end(kb);
  }
}

/*
 * All columns of mr rows from row0: blocks of MM_NR columns, then the rest
 * as one block ending at the last column (recomputing a few columns of the
 * previous block: stores are idempotent) or, for fewer than MM_NR columns,
 * one block of exactly that width (a loop of single columns when the width
 * is symbolic).
 */
static void mm_cols(KBuilder *kb, const MmCtx *c, KExpr *row0, int mr) {
  const MmShape *s = c->s;
  KExpr *dn = ke_dim(kb, &s->n);
  int vr0 = kb_decl(kb, "rb", DL_I64, row0);
  int64_t nc = -1;
  dl_dim_is_const(&s->n, &nc);
  if (nc < 0 || nc >= MM_NR) {
    int vjb = kb_for(kb, ke_div(kb, dn, ke_int(kb, MM_NR)), "jb", 0);
    mm_block(kb, c, ke_var(kb, vr0), mr,
             ke_mul(kb, ke_var(kb, vjb), ke_int(kb, MM_NR)), MM_NR);
    kb_end(kb);
  }
  if (nc >= 0) {
    if (nc % MM_NR == 0)
      return;
    if (nc > MM_NR)
      mm_block(kb, c, ke_var(kb, vr0), mr, ke_int(kb, nc - MM_NR), MM_NR);
    else
      mm_block(kb, c, ke_var(kb, vr0), mr, ke_int(kb, 0), (int)nc);
    return;
  }
  KExpr *rem = ke_bin(kb, KB_MOD, dn, ke_int(kb, MM_NR));
  kb_if(kb, ke_bin(kb, KB_AND, ke_bin(kb, KB_NE, rem, ke_int(kb, 0)),
                   ke_bin(kb, KB_GT, dn, ke_int(kb, MM_NR))));
  mm_block(kb, c, ke_var(kb, vr0), mr, ke_sub(kb, dn, ke_int(kb, MM_NR)),
           MM_NR);
  kb_end(kb);
  kb_if(kb, ke_bin(kb, KB_LT, dn, ke_int(kb, MM_NR)));
  int vj = kb_for(kb, dn, "j", 0);
  mm_block(kb, c, ke_var(kb, vr0), mr, ke_var(kb, vj), 1);
  kb_end_n(kb, 2);
}

DlStatus dl_lower_MatMul(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *a = dl_in(g, n, 0), *b = dl_in(g, n, 1), *y = dl_out(g, n, 0);
  MmShape s;
  DL_TRY(mm_shape(g, n, a, b, &s));
  MmCtx c;
  memset(&c, 0, sizeof c);
  c.g = g;
  c.n = n;
  c.s = &s;
  c.t = a->dtype;
  c.ba = kb_buf(kb, a, false);
  c.bb = kb_buf(kb, b, false);
  c.by = kb_buf(kb, y, true);
  c.brank = s.brank;
  for (int i = 0; i < s.brank; i++)
    c.vb[i] = kb_for(kb, ke_dim(kb, &s.bdims[i]), "b", KF_PARALLEL);
  KExpr *ybatch = ke_int(kb, 0);
  for (int i = 0; i < s.brank; i++)
    ybatch = ke_add(kb, ke_mul(kb, ybatch, ke_dim(kb, &s.bdims[i])),
                    ke_var(kb, c.vb[i]));
  KExpr *mk = ke_mul(kb, ke_dim(kb, &s.m), ke_dim(kb, &s.k));
  KExpr *kn = ke_mul(kb, ke_dim(kb, &s.k), ke_dim(kb, &s.n));
  KExpr *mn = ke_mul(kb, ke_dim(kb, &s.m), ke_dim(kb, &s.n));
  c.vab =
      kb_decl(kb, "ab", DL_I64,
              ke_mul(kb, mm_batch_off(kb, s.arank, s.abd, s.brank, c.vb), mk));
  c.vbb = kb_decl(
      kb, "bb", DL_I64,
      ke_mul(kb, mm_batch_off(kb, s.brank_b, s.bbd, s.brank, c.vb), kn));
  c.vyb = kb_decl(kb, "yb", DL_I64, ke_mul(kb, ybatch, mn));
  if (n->nout > 1) {
    /* "dlcc.split" (checked by dl_infer_MatMul): each output gets its own
     * buffer and batch offset; the blocks must not straddle two outputs */
    const DlAttr *sa = dl_attr(n, MM_SPLIT_ATTR);
    int64_t nc = -1, off = 0;
    dl_dim_is_const(&s.n, &nc);
    if (!sa || sa->kind != DL_ATTR_INTS || sa->n != n->nout ||
        n->nout > MM_MAX_SPLIT || nc < 0)
      return dl_error_node(
          g->ctx, n, DL_ERR_INVALID,
          "%d outputs need " MM_SPLIT_ATTR " and constant columns", n->nout);
    for (int i = 0; i < n->nout; i++) {
      if (sa->ints[i] % MM_NR != 0)
        return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                             "output %d is %lld columns wide, not a multiple "
                             "of %d",
                             i, (long long)sa->ints[i], MM_NR);
      c.bys[i] = kb_buf(kb, dl_out(g, n, i), true);
      c.vybs[i] = kb_decl(
          kb, "yb", DL_I64,
          ke_mul(kb, ybatch,
                 ke_mul(kb, ke_dim(kb, &s.m), ke_int(kb, sa->ints[i]))));
      c.soff[i] = off;
      c.sn[i] = sa->ints[i];
      off += sa->ints[i];
    }
    c.nsplit = n->nout;
  }
  int64_t mc = -1;
  dl_dim_is_const(&s.m, &mc);
  KExpr *dm = ke_dim(kb, &s.m);
  KExpr *mfull =
      ke_mul(kb, ke_div(kb, dm, ke_int(kb, MM_ROWS)), ke_int(kb, MM_ROWS));
  if (mc < 0 || mc >= MM_ROWS) {
    int vib =
        kb_for(kb, ke_div(kb, dm, ke_int(kb, MM_ROWS)), "ib", KF_PARALLEL);
    mm_cols(kb, &c, ke_mul(kb, ke_var(kb, vib), ke_int(kb, MM_ROWS)), MM_ROWS);
    kb_end(kb);
  }
  if (mc < 0 || mc % MM_ROWS != 0) {
    int vit = kb_for(kb, ke_sub(kb, dm, mfull), "it", KF_PARALLEL);
    mm_cols(kb, &c, ke_add(kb, mfull, ke_var(kb, vit)), 1);
    kb_end(kb);
  }
  kb_end_n(kb, s.brank);
  return DL_OK;
}

/* ---- Gemm ---------------------------------------------------------------- */

static DlStatus gemm_dims(DlGraph *g, const DlNode *n, DlDim *m, DlDim *k,
                          DlDim *nn) {
  DlValue *a, *b;
  DL_TRY(dl_need_input(g, n, 0, &a));
  DL_TRY(dl_need_input(g, n, 1, &b));
  if (a->rank != 2 || b->rank != 2)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "A and B must be 2-D (A rank %d, B rank %d)", a->rank,
                         b->rank);
  bool ta = dl_attr_int(n, "transA", 0) != 0;
  bool tb = dl_attr_int(n, "transB", 0) != 0;
  *m = a->dims[ta ? 1 : 0];
  *k = a->dims[ta ? 0 : 1];
  DlDim kb2 = b->dims[tb ? 1 : 0];
  *nn = b->dims[tb ? 0 : 1];
  if (!dl_dim_eq(k, &kb2)) {
    char x[64], y[64];
    dl_dim_print(x, sizeof x, k, g->syms);
    dl_dim_print(y, sizeof y, &kb2, g->syms);
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "inner dims differ: A gives K=%s, B gives K=%s", x, y);
  }
  return DL_OK;
}

DlStatus dl_infer_Gemm(DlGraph *g, DlNode *n) {
  DlDim m, k, nn;
  DL_TRY(gemm_dims(g, n, &m, &k, &nn));
  DlValue *a = dl_in(g, n, 0), *b = dl_in(g, n, 1), *c = dl_in(g, n, 2);
  if (!dl_dtype_is_float(a->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "type %s is not supported (floating types only)",
                         dl_dtype_name(a->dtype));
  if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "operand types differ");
  if (!c && n->opset < 11)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input C is required before opset 11");
  if (c) {
    if (c->rank < 0 || c->rank > 2)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "C has rank %d, expected 0, 1 or 2", c->rank);
    const DlDim *want[2] = {&m, &nn};
    for (int i = 0; i < c->rank; i++) {
      const DlDim *w = want[2 - c->rank + i];
      int64_t v;
      if (!dl_dim_eq(&c->dims[i], w) &&
          !(dl_dim_is_const(&c->dims[i], &v) && v == 1))
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "C dim %d does not broadcast to [M, N]", i);
    }
  }
  DlDim dims[2] = {m, nn};
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output missing");
  y->dtype = a->dtype;
  dl_value_set_shape(y, 2, dims);
  return DL_OK;
}

DlStatus dl_lower_Gemm(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlDim m, k, nn;
  DL_TRY(gemm_dims(g, n, &m, &k, &nn));
  DlValue *a = dl_in(g, n, 0), *b = dl_in(g, n, 1), *c = dl_in(g, n, 2);
  DlValue *y = dl_out(g, n, 0);
  DlDType t = a->dtype;
  bool ta = dl_attr_int(n, "transA", 0) != 0;
  bool tb = dl_attr_int(n, "transB", 0) != 0;
  double alpha = dl_attr_float(n, "alpha", 1.0f);
  double beta = dl_attr_float(n, "beta", 1.0f);
  int ba = kb_buf(kb, a, false), bb = kb_buf(kb, b, false);
  int bc = c ? kb_buf(kb, c, false) : -1;
  int by = kb_buf(kb, y, true);
  KExpr *dm = ke_dim(kb, &m), *dk = ke_dim(kb, &k), *dn = ke_dim(kb, &nn);

  if (!tb) {
    /* register blocks, as MatMul without batch dims */
    MmShape s;
    memset(&s, 0, sizeof s);
    s.m = m;
    s.k = k;
    s.n = nn;
    MmCtx cx;
    memset(&cx, 0, sizeof cx);
    cx.g = g;
    cx.n = n;
    cx.s = &s;
    cx.t = t;
    cx.ba = ba;
    cx.bb = bb;
    cx.by = by;
    cx.ta = ta;
    cx.gemm = true;
    cx.alpha = alpha;
    cx.beta = beta;
    cx.bc = bc;
    cx.cval = c;
    cx.vab = kb_decl(kb, "ab", DL_I64, ke_int(kb, 0));
    cx.vbb = kb_decl(kb, "bb", DL_I64, ke_int(kb, 0));
    cx.vyb = kb_decl(kb, "yb", DL_I64, ke_int(kb, 0));
    int64_t mc = -1;
    dl_dim_is_const(&m, &mc);
    KExpr *mfull =
        ke_mul(kb, ke_div(kb, dm, ke_int(kb, MM_ROWS)), ke_int(kb, MM_ROWS));
    if (mc < 0 || mc >= MM_ROWS) {
      int vib =
          kb_for(kb, ke_div(kb, dm, ke_int(kb, MM_ROWS)), "ib", KF_PARALLEL);
      mm_cols(kb, &cx, ke_mul(kb, ke_var(kb, vib), ke_int(kb, MM_ROWS)),
              MM_ROWS);
      kb_end(kb);
    }
    if (mc < 0 || mc % MM_ROWS != 0) {
      int vit = kb_for(kb, ke_sub(kb, dm, mfull), "it", KF_PARALLEL);
      mm_cols(kb, &cx, ke_add(kb, mfull, ke_var(kb, vit)), 1);
      kb_end(kb);
    }
    return DL_OK;
  }

  int vi = kb_for(kb, dm, "i", KF_PARALLEL);
  int vyr = kb_decl(kb, "yr", DL_I64, ke_mul(kb, ke_var(kb, vi), dn));
  /* C (broadcast) times beta, or zero */
  if (c && beta != 0.0) {
    /* index of C[i, j] with size-1 dims broadcast */
    int64_t v;
    bool c_rows = c->rank == 2 && !(dl_dim_is_const(&c->dims[0], &v) && v == 1);
    bool c_cols =
        c->rank >= 1 && !(dl_dim_is_const(&c->dims[c->rank - 1], &v) && v == 1);
    KExpr *cval_row =
        c_rows ? ke_mul(kb, ke_var(kb, vi), c_cols ? dn : ke_int(kb, 1))
               : ke_int(kb, 0);
    int vcr = kb_decl(kb, "cr", DL_I64, cval_row);
    int vj = kb_for(kb, dn, "j", KF_VECTOR);
    KExpr *ci =
        c_cols ? ke_add(kb, ke_var(kb, vcr), ke_var(kb, vj)) : ke_var(kb, vcr);
    KExpr *cv = ke_load(kb, bc, ci);
    if (beta != 1.0)
      cv = ke_mul(kb, ke_const(kb, t, beta), cv);
    kb_store(kb, by, ke_add(kb, ke_var(kb, vyr), ke_var(kb, vj)), cv);
    kb_end(kb);
  } else {
    int vj = kb_for(kb, dn, "j", KF_VECTOR);
    kb_store(kb, by, ke_add(kb, ke_var(kb, vyr), ke_var(kb, vj)),
             ke_const(kb, t, 0.0));
    kb_end(kb);
  }
  {
    /* B is [N, K]: y[i, j] += alpha * dot(A'[i, :], B[j, :]).  The dot
     * product keeps GEMM_LANES independent partial sums so that it
     * vectorizes without reassociating one sum; a tail loop takes the
     * K % GEMM_LANES rest. */
    int vj = kb_for(kb, dn, "j", 0);
    int acc[GEMM_LANES];
    for (int u = 0; u < GEMM_LANES; u++)
      acc[u] = kb_decl(kb, "acc", t, ke_const(kb, t, 0.0));
    int vbr = kb_decl(kb, "br", DL_I64, ke_mul(kb, ke_var(kb, vj), dk));
    int var_ =
        ta ? -1 : kb_decl(kb, "ar", DL_I64, ke_mul(kb, ke_var(kb, vi), dk));
    int vkb = kb_for(kb, ke_div(kb, dk, ke_int(kb, GEMM_LANES)), "kb", 0);
    int vk0 = kb_decl(kb, "k0", DL_I64,
                      ke_mul(kb, ke_var(kb, vkb), ke_int(kb, GEMM_LANES)));
    for (int u = 0; u < GEMM_LANES; u++) {
      KExpr *kk = ke_add(kb, ke_var(kb, vk0), ke_int(kb, u));
      KExpr *aidx = ta ? ke_add(kb, ke_mul(kb, kk, dm), ke_var(kb, vi))
                       : ke_add(kb, ke_var(kb, var_), kk);
      KExpr *bidx = ke_add(kb, ke_var(kb, vbr), kk);
      kb_assign(
          kb, acc[u],
          ke_add(kb, ke_var(kb, acc[u]),
                 ke_mul(kb, ke_load(kb, ba, aidx), ke_load(kb, bb, bidx))));
    }
    kb_end(kb);
    int vkt0 = kb_decl(kb, "kt0", DL_I64,
                       ke_mul(kb, ke_div(kb, dk, ke_int(kb, GEMM_LANES)),
                              ke_int(kb, GEMM_LANES)));
    int vkt = kb_for(kb, ke_sub(kb, dk, ke_var(kb, vkt0)), "kt", KF_REDUCE);
    {
      KExpr *kk = ke_add(kb, ke_var(kb, vkt0), ke_var(kb, vkt));
      KExpr *aidx = ta ? ke_add(kb, ke_mul(kb, kk, dm), ke_var(kb, vi))
                       : ke_add(kb, ke_var(kb, var_), kk);
      KExpr *bidx = ke_add(kb, ke_var(kb, vbr), kk);
      kb_assign(
          kb, acc[0],
          ke_add(kb, ke_var(kb, acc[0]),
                 ke_mul(kb, ke_load(kb, ba, aidx), ke_load(kb, bb, bidx))));
    }
    kb_end(kb);
    /* pairwise sum of the partial sums */
    KExpr *part[GEMM_LANES];
    for (int u = 0; u < GEMM_LANES; u++)
      part[u] = ke_var(kb, acc[u]);
    for (int w = GEMM_LANES; w > 1; w /= 2)
      for (int u = 0; u < w / 2; u++)
        part[u] = ke_add(kb, part[2 * u], part[2 * u + 1]);
    KExpr *r = part[0];
    if (alpha != 1.0)
      r = ke_mul(kb, ke_const(kb, t, alpha), r);
    KExpr *yi = ke_add(kb, ke_var(kb, vyr), ke_var(kb, vj));
    KExpr *oidx[2] = {ke_var(kb, vi), ke_var(kb, vj)};
    kb_store(kb, by, yi,
             dl_epilogue(kb, g, n, ke_add(kb, ke_load(kb, by, yi), r), oidx));
    kb_end(kb);
  }
  kb_end(kb); /* i */
  return DL_OK;
}
