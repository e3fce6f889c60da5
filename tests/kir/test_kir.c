/*
 * test_kir.c - unit tests of the kernel IR builder and interpreter.
 *
 * Kernels are built by hand with the KBuilder (elementwise with
 * broadcasting, a reduction with a local accumulator, if/else, symbolic
 * extents), run with kir_interpret, and compared with values computed here
 * in plain C.  Also checks that index arithmetic folds in the builder and
 * that bad accesses are errors, not crashes.
 */
#include "codegen/kir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static DlValue *value(DlGraph *g, const char *name, DlDType t, int rank,
                      const int64_t *dims) {
  DlValue *v = dl_value_new(g, name, t);
  DlDim d[DL_MAX_RANK];
  for (int i = 0; i < rank; i++)
    d[i] = dl_dim_const(dims[i]);
  dl_value_set_shape(v, rank, d);
  return v;
}

static bool last_diag_has(const DlCtx *ctx, const char *needle) {
  return ctx->ndiags > 0 && strstr(ctx->diags[ctx->ndiags - 1].msg, needle);
}

/* z[2,3,4] = x[2,3,4] + y[3,1] */
static void test_broadcast_add(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_F32, 3, (int64_t[]){2, 3, 4});
  DlValue *y = value(g, "y", DL_F32, 2, (int64_t[]){3, 1});
  DlValue *z = value(g, "z", DL_F32, 3, (int64_t[]){2, 3, 4});
  KBuilder *kb = kb_new(g, NULL);
  int bx = kb_buf(kb, x, false), by = kb_buf(kb, y, false);
  int bz = kb_buf(kb, z, true);
  CHECK(kb_buf(kb, x, false) == bx); /* deduplicated */
  KExpr *idx[3];
  kb_for_shape(kb, 3, z->dims, idx, KF_PARALLEL);
  KExpr *sum = ke_add(kb, ke_load(kb, bx, ke_bcast_index(kb, x, 3, idx)),
                      ke_load(kb, by, ke_bcast_index(kb, y, 3, idx)));
  kb_store(kb, bz, ke_flat_index(kb, 3, z->dims, idx), sum);
  kb_end_n(kb, 3);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  CHECK(k->nbufs == 3 && k->bufs[bz].written && !k->bufs[bx].written);

  float xs[24], ys[3], zs[24] = {0};
  for (int i = 0; i < 24; i++)
    xs[i] = 0.1f * (float)i;
  for (int i = 0; i < 3; i++)
    ys[i] = 100.0f * (float)(i + 1);
  void *bufs[3];
  bufs[bx] = xs, bufs[by] = ys, bufs[bz] = zs;
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_OK);
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 3; b++)
      for (int c = 0; c < 4; c++) {
        int i = (a * 3 + b) * 4 + c;
        CHECK(zs[i] == xs[i] + ys[b]);
      }

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  kir_print(g, k, f);
  fclose(f);
  CHECK(strstr(text, "parallel") && strstr(text, "for (") &&
        strstr(text, "b2["));
  if (getenv("KIR_TEST_PRINT"))
    fputs(text, stdout);
  free(text);
out:
  dl_ctx_free(&ctx);
}

/* r[i,j] = sum_k x[i,j,k] with a local accumulator, and a mean in f64. */
static void test_reduce(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_F32, 3, (int64_t[]){2, 3, 5});
  DlValue *r = value(g, "r", DL_F32, 2, (int64_t[]){2, 3});
  KBuilder *kb = kb_new(g, NULL);
  int bx = kb_buf(kb, x, false), br = kb_buf(kb, r, true);
  KExpr *idx[3];
  kb_for_shape(kb, 2, r->dims, idx, KF_PARALLEL);
  int acc = kb_decl(kb, "acc", DL_F32, ke_const(kb, DL_F32, 0));
  int kv = kb_for(kb, ke_dim(kb, &x->dims[2]), "k", KF_REDUCE);
  idx[2] = ke_var(kb, kv);
  kb_assign(kb, acc,
            ke_add(kb, ke_var(kb, acc),
                   ke_load(kb, bx, ke_flat_index(kb, 3, x->dims, idx))));
  kb_end(kb);
  kb_store(kb, br, ke_flat_index(kb, 2, r->dims, idx), ke_var(kb, acc));
  kb_end_n(kb, 2);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  float xs[30], rs[6];
  for (int i = 0; i < 30; i++)
    xs[i] = 1.0f / (float)(i + 1);
  void *bufs[2] = {xs, rs};
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_OK);
  for (int i = 0; i < 6; i++) {
    float s = 0;
    for (int j = 0; j < 5; j++)
      s += xs[i * 5 + j];
    CHECK(rs[i] == s); /* bit-exact: accumulated in float like C */
  }
out:
  dl_ctx_free(&ctx);
}

/* o[i] = i % 3 == 0 ? x[i] * 2 : -x[i], via if/else, in int32 (wrapping). */
static void test_if_else(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_I32, 1, (int64_t[]){7});
  DlValue *o = value(g, "o", DL_I32, 1, (int64_t[]){7});
  KBuilder *kb = kb_new(g, NULL);
  int bx = kb_buf(kb, x, false), bo = kb_buf(kb, o, true);
  int i = kb_for(kb, ke_int(kb, 7), "i", KF_PARALLEL);
  KExpr *iv = ke_var(kb, i);
  kb_if(kb, ke_bin(kb, KB_EQ, ke_bin(kb, KB_MOD, iv, ke_int(kb, 3)),
                   ke_int(kb, 0)));
  kb_store(kb, bo, iv,
           ke_mul(kb, ke_load(kb, bx, iv), ke_const(kb, DL_I32, 2)));
  kb_else(kb);
  kb_store(kb, bo, iv, ke_un(kb, KU_NEG, ke_load(kb, bx, iv)));
  kb_end(kb);
  kb_end(kb);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  int32_t xs[7] = {1, -2, 3, 2000000000, 5, -6, INT32_MIN}, os[7];
  void *bufs[2] = {xs, os};
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_OK);
  for (int j = 0; j < 7; j++) {
    int32_t want = j % 3 == 0 ? (int32_t)((uint32_t)xs[j] * 2u)
                              : (int32_t)(0u - (uint32_t)xs[j]);
    CHECK(os[j] == want);
  }
out:
  dl_ctx_free(&ctx);
}

/* Symbolic extents: y[batch, 3] = exp(x[batch, 3]) and y2 = select. */
static void test_symbolic(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  int batch = dl_graph_sym(g, "batch");
  DlDim dims[2] = {dl_dim_sym(batch), dl_dim_const(3)};
  DlValue *x = dl_value_new(g, "x", DL_F32);
  DlValue *y = dl_value_new(g, "y", DL_F32);
  dl_value_set_shape(x, 2, dims);
  dl_value_set_shape(y, 2, dims);
  KBuilder *kb = kb_new(g, NULL);
  int bx = kb_buf(kb, x, false), by = kb_buf(kb, y, true);
  KExpr *idx[2];
  kb_for_shape(kb, 2, dims, idx, KF_PARALLEL);
  KExpr *fi = ke_flat_index(kb, 2, dims, idx);
  KExpr *xv = ke_load(kb, bx, fi);
  KExpr *pos = ke_bin(kb, KB_GT, xv, ke_const(kb, DL_F32, 0));
  kb_store(kb, by, fi, ke_select(kb, pos, ke_un(kb, KU_EXP, xv), xv));
  kb_end_n(kb, 2);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  float xs[15], ys[15];
  for (int i = 0; i < 15; i++)
    xs[i] = (float)(i - 7) * 0.37f;
  void *bufs[2] = {xs, ys};
  int64_t syms[1] = {5};
  CHECK(kir_interpret(&ctx, k, bufs, syms) == DL_OK);
  for (int i = 0; i < 15; i++)
    CHECK(ys[i] == (xs[i] > 0 ? expf(xs[i]) : xs[i]));
  /* Without symbol values the sizes are unknown: an error, no crash. */
  CHECK(kir_interpret(&ctx, k, bufs, NULL) != DL_OK);
  /* Explicit element counts: batch = 2 runs over 6 elements only. */
  int64_t numel[2] = {6, 6};
  syms[0] = 2;
  memset(ys, 0, sizeof ys);
  CHECK(kir_interpret_n(&ctx, k, bufs, numel, syms) == DL_OK);
  CHECK(ys[5] == xs[5] && ys[6] == 0);
  /* batch = 3 with buffers of 6 elements: out of range. */
  syms[0] = 3;
  CHECK(kir_interpret_n(&ctx, k, bufs, numel, syms) == DL_ERR_INVALID);
  CHECK(last_diag_has(&ctx, "outside"));
out:
  dl_ctx_free(&ctx);
}

/* Out-of-range loads and integer division by zero name the node. */
static void test_errors(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_I64, 1, (int64_t[]){4});
  DlValue *o = value(g, "o", DL_I64, 1, (int64_t[]){4});
  DlNode *n = dl_node_new(g, DL_OP_Gather, "Gather", "gather_7", 2, 1);
  KBuilder *kb = kb_new(g, n);
  int bx = kb_buf(kb, x, false), bo = kb_buf(kb, o, true);
  int i = kb_for(kb, ke_int(kb, 4), "i", 0);
  KExpr *iv = ke_var(kb, i);
  kb_store(kb, bo, iv, ke_load(kb, bx, ke_add(kb, iv, ke_int(kb, 1))));
  kb_end(kb);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL && strcmp(k->name, "k0_Gather") == 0);
  if (!k)
    goto out;
  int64_t xs[4] = {1, 2, 3, 4}, os[4];
  void *bufs[2] = {xs, os};
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_ERR_INVALID);
  CHECK(last_diag_has(&ctx, "gather_7") && last_diag_has(&ctx, "Gather"));

  kb = kb_new(g, n);
  bx = kb_buf(kb, x, false), bo = kb_buf(kb, o, true);
  i = kb_for(kb, ke_int(kb, 4), "i", 0);
  iv = ke_var(kb, i);
  kb_store(kb, bo, iv, ke_div(kb, ke_int(kb, 12), ke_load(kb, bx, iv)));
  kb_end(kb);
  k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  int64_t zs[4] = {1, 2, 0, 4};
  bufs[0] = zs;
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_ERR_INVALID);
  CHECK(last_diag_has(&ctx, "division by zero"));
  zs[2] = -3;
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_OK);
  CHECK(os[0] == 12 && os[1] == 6 && os[2] == -4 && os[3] == 3);

  /* Unbalanced blocks: kb_finish fails with an internal error. */
  kb = kb_new(g, n);
  kb_for(kb, ke_int(kb, 4), "i", 0);
  int before = ctx.ndiags;
  CHECK(kb_finish(kb) == NULL);
  CHECK(ctx.ndiags == before + 1 && ctx.diags[before].code == DL_ERR_INTERNAL);
  kb = kb_new(g, n);
  kb_end(kb);
  CHECK(kb_finish(kb) == NULL);
out:
  dl_ctx_free(&ctx);
}

/* The builder folds I64 index arithmetic. */
static void test_folding(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_F32, 4, (int64_t[]){2, 1, 3, 1});
  KBuilder *kb = kb_new(g, NULL);
  int i = kb_for(kb, ke_int(kb, 10), "i", 0);
  KExpr *v = ke_var(kb, i);
  KExpr *c;
  CHECK(ke_add(kb, ke_int(kb, 0), v) == v);
  CHECK(ke_add(kb, v, ke_int(kb, 0)) == v);
  CHECK(ke_sub(kb, v, ke_int(kb, 0)) == v);
  CHECK(ke_mul(kb, ke_int(kb, 1), v) == v);
  CHECK(ke_mul(kb, v, ke_int(kb, 1)) == v);
  CHECK(ke_div(kb, v, ke_int(kb, 1)) == v);
  c = ke_mul(kb, v, ke_int(kb, 0));
  CHECK(c->kind == KE_INT && c->i == 0);
  c = ke_mul(kb, ke_add(kb, ke_int(kb, 2), ke_int(kb, 3)), ke_int(kb, 7));
  CHECK(c->kind == KE_INT && c->i == 35);
  c = ke_bin(kb, KB_LT, ke_int(kb, 2), ke_int(kb, 3));
  CHECK(c->kind == KE_INT && c->i == 1 && c->dtype == DL_BOOL);
  /* (v + 2) + 3 -> v + 5 */
  c = ke_add(kb, ke_add(kb, v, ke_int(kb, 2)), ke_int(kb, 3));
  CHECK(c->kind == KE_BINARY && c->a == v && c->b->kind == KE_INT &&
        c->b->i == 5);
  /* Division by a constant zero is left for run time. */
  c = ke_div(kb, ke_int(kb, 1), ke_int(kb, 0));
  CHECK(c->kind == KE_BINARY);

  /* Flat index of constant indices in a constant shape is a constant. */
  KExpr *idx[4] = {ke_int(kb, 1), ke_int(kb, 0), ke_int(kb, 2), ke_int(kb, 0)};
  c = ke_flat_index(kb, 4, x->dims, idx);
  CHECK(c->kind == KE_INT && c->i == 1 * 3 + 2);
  c = ke_flat_index(kb, 0, NULL, NULL);
  CHECK(c->kind == KE_INT && c->i == 0);
  DlDim d12 = dl_dim_const(12);
  c = ke_dim(kb, &d12);
  CHECK(c->kind == KE_INT && c->i == 12);
  /* Broadcasting a [2,1,3,1] input into a rank-5 output: size-1 dims
   * contribute nothing, the rest use the input's own strides. */
  KExpr *o[5] = {v, ke_int(kb, 0), v, ke_int(kb, 2), v};
  c = ke_bcast_index(kb, x, 5, o);
  CHECK(c->kind == KE_INT && c->i == 2);
  o[1] = ke_int(kb, 1);
  c = ke_bcast_index(kb, x, 5, o);
  CHECK(c->kind == KE_INT && c->i == 5);
  kb_end(kb);
  CHECK(kb_finish(kb) != NULL);
  dl_ctx_free(&ctx);
}

/* F32 arithmetic rounds like C float; casts wrap like C. */
static void test_numerics(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_F32, 1, (int64_t[]){3});
  DlValue *o = value(g, "o", DL_U8, 1, (int64_t[]){3});
  DlValue *p = value(g, "p", DL_F32, 1, (int64_t[]){3});
  KBuilder *kb = kb_new(g, NULL);
  int bx = kb_buf(kb, x, false), bo = kb_buf(kb, o, true);
  int bp = kb_buf(kb, p, true);
  int i = kb_for(kb, ke_int(kb, 3), "i", 0);
  KExpr *iv = ke_var(kb, i);
  KExpr *xv = ke_load(kb, bx, iv);
  kb_store(kb, bo, iv,
           ke_cast(kb, DL_U8, ke_cast(kb, DL_I32, xv))); /* wraps mod 256 */
  kb_store(kb, bp, iv, ke_sub(kb, ke_add(kb, xv, ke_const(kb, DL_F32, 1)), xv));
  kb_end(kb);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  float xs[3] = {1e8f, 300.7f, -1.5f}, ps[3];
  uint8_t os[3];
  void *bufs[3] = {xs, os, ps};
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_OK);
  for (int j = 0; j < 3; j++) {
    volatile float t = xs[j] + 1.0f;
    CHECK(ps[j] == t - xs[j]);
    CHECK(os[j] == (uint8_t)(int32_t)xs[j]);
  }
  CHECK(ps[0] == 0.0f); /* 1e8f + 1 rounds back to 1e8f in float */
out:
  dl_ctx_free(&ctx);
}

/* Select evaluates only the chosen operand (padding reads no out-of-range
 * element); nested loops with an invariant index part and a local. */
static void test_select_pad(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test");
  DlGraph *g = dl_graph_new(&ctx, "t");
  DlValue *x = value(g, "x", DL_F64, 2, (int64_t[]){3, 4});
  DlValue *o = value(g, "o", DL_F64, 2, (int64_t[]){3, 6});
  KBuilder *kb = kb_new(g, NULL);
  int bx = kb_buf(kb, x, false), bo = kb_buf(kb, o, true);
  KExpr *idx[2];
  kb_for_shape(kb, 2, o->dims, idx, KF_PARALLEL);
  int cnt = kb_decl(kb, "cnt", DL_I32, ke_int(kb, 0));
  KExpr *j = ke_sub(kb, idx[1], ke_int(kb, 1));
  KExpr *in = ke_bin(kb, KB_AND, ke_bin(kb, KB_GE, j, ke_int(kb, 0)),
                     ke_bin(kb, KB_LT, j, ke_int(kb, 4)));
  KExpr *src[2] = {idx[0], j};
  kb_assign(kb, cnt, ke_add(kb, ke_var(kb, cnt), ke_int(kb, 1)));
  kb_store(kb, bo, ke_flat_index(kb, 2, o->dims, idx),
           ke_add(kb,
                  ke_select(kb, in,
                            ke_load(kb, bx, ke_flat_index(kb, 2, x->dims, src)),
                            ke_const(kb, DL_F64, -1)),
                  ke_cast(kb, DL_F64, ke_var(kb, cnt))));
  kb_end_n(kb, 2);
  Kernel *k = kb_finish(kb);
  CHECK(k != NULL);
  if (!k)
    goto out;
  double xs[12], os[18];
  for (int i = 0; i < 12; i++)
    xs[i] = 0.5 * i;
  void *bufs[2] = {xs, os};
  CHECK(kir_interpret(&ctx, k, bufs, NULL) == DL_OK);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 6; b++) {
      double want = (b >= 1 && b <= 4) ? xs[a * 4 + b - 1] : -1;
      CHECK(os[a * 6 + b] == want + 1);
    }
out:
  dl_ctx_free(&ctx);
}

int main(void) {
  test_broadcast_add();
  test_reduce();
  test_if_else();
  test_symbolic();
  test_errors();
  test_folding();
  test_numerics();
  test_select_pad();
  if (failures) {
    fprintf(stderr, "test_kir: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_kir: all passed\n");
  return 0;
}
