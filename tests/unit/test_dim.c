/*
 * test_dim - symbolic dim algebra and printing, plus a few IR basics that
 * the dims depend on (symbol interning, numel, known dims).
 */
#include "ir/ir.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static const char *const names[] = {"batch", "seq", "heads", "s3"};

static void check_print(const DlDim *d, const char *want, int line) {
  char buf[128];
  int n = dl_dim_print(buf, sizeof buf, d, names);
  if (strcmp(buf, want) != 0 || n != (int)strlen(want)) {
    fprintf(stderr, "%s:%d: printed '%s' (%d), want '%s'\n", __FILE__, line,
            buf, n, want);
    failures++;
  }
}
#define CHECK_PRINT(d, want) check_print((d), (want), __LINE__)

static DlDim C(int64_t c) {
  return dl_dim_const(c);
}
static DlDim S(int s) {
  return dl_dim_sym(s);
}
static DlDim add(DlDim a, DlDim b) {
  DlDim r = C(-999);
  CHECK(dl_dim_add(&a, &b, &r));
  return r;
}
static DlDim sub(DlDim a, DlDim b) {
  DlDim r = C(-999);
  CHECK(dl_dim_sub(&a, &b, &r));
  return r;
}
static DlDim mul(DlDim a, DlDim b) {
  DlDim r = C(-999);
  CHECK(dl_dim_mul(&a, &b, &r));
  return r;
}

static void test_const(void) {
  int64_t v = -1;
  DlDim z = C(0);
  CHECK(z.nterms == 0);
  CHECK(dl_dim_is_const(&z, &v) && v == 0);
  DlDim c = C(12);
  CHECK(dl_dim_is_const(&c, &v) && v == 12);
  CHECK(dl_dim_is_const(&c, NULL));
  DlDim b = S(0);
  CHECK(!dl_dim_is_const(&b, &v));
  CHECK_PRINT(&z, "0");
  CHECK_PRINT(&c, "12");
  DlDim m = C(-3);
  CHECK_PRINT(&m, "-3");
  DlDim s = add(C(5), C(7));
  CHECK(dl_dim_eq(&s, &c));
}

static void test_canonical(void) {
  /* batch*seq + 1 built in two different orders is the same dim */
  DlDim a = add(mul(S(0), S(1)), C(1));
  DlDim b = add(C(1), mul(S(1), S(0)));
  CHECK(dl_dim_eq(&a, &b));
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  CHECK_PRINT(&a, "batch*seq+1");
  /* like terms merge */
  DlDim two_seq = add(S(1), S(1));
  CHECK_PRINT(&two_seq, "2*seq");
  DlDim t = mul(C(2), S(1));
  CHECK(dl_dim_eq(&two_seq, &t));
  /* cancellation drops terms */
  DlDim zero = sub(S(1), S(1));
  CHECK(zero.nterms == 0);
  CHECK_PRINT(&zero, "0");
  DlDim back = sub(add(S(1), C(1)), C(1));
  DlDim seq = S(1);
  CHECK(dl_dim_eq(&back, &seq));
  /* negative terms and powers */
  DlDim neg = sub(C(2), S(1));
  CHECK_PRINT(&neg, "-seq+2");
  DlDim sm1 = sub(S(1), C(1));
  CHECK_PRINT(&sm1, "seq-1");
  DlDim sq = mul(S(1), S(1));
  CHECK_PRINT(&sq, "seq*seq");
  DlDim mixed = add(add(mul(C(3), mul(S(0), S(1))), mul(C(-2), S(2))), C(-4));
  CHECK_PRINT(&mixed, "3*batch*seq-2*heads-4");
  /* higher degree first */
  DlDim poly = add(S(0), mul(S(1), S(1)));
  CHECK_PRINT(&poly, "seq*seq+batch");
  /* NULL names fall back to sN */
  char buf[32];
  dl_dim_print(buf, sizeof buf, &a, NULL);
  CHECK(strcmp(buf, "s0*s1+1") == 0);
  /* snprintf semantics when truncated */
  char tiny[4];
  int n = dl_dim_print(tiny, sizeof tiny, &a, names);
  CHECK(n == (int)strlen("batch*seq+1"));
  CHECK(strcmp(tiny, "bat") == 0);
}

static void test_limits(void) {
  /* more than DL_DIM_TERMS terms fails */
  DlDim p = add(add(S(0), S(1)), add(S(2), S(3)));
  DlDim r;
  DlDim one = C(1);
  CHECK(!dl_dim_add(&p, &one, &r));
  /* more than DL_DIM_FACTORS factors in a term fails */
  DlDim cube = mul(mul(S(0), S(0)), S(0));
  DlDim b = S(0);
  CHECK(!dl_dim_mul(&cube, &b, &r));
  /* overflow fails */
  DlDim big = C(INT64_MAX);
  CHECK(!dl_dim_add(&big, &one, &r));
  DlDim two = C(2);
  CHECK(!dl_dim_mul(&big, &two, &r));
  /* (b+1)*(s+1) = b*s + b + s + 1 fits exactly */
  DlDim x = mul(add(S(0), C(1)), add(S(1), C(1)));
  CHECK_PRINT(&x, "batch*seq+batch+seq+1");
}

static void test_div(void) {
  DlDim r;
  /* constant floor division */
  DlDim a = C(7), b = C(2), m = C(-7);
  CHECK(dl_dim_div(&a, &b, &r));
  CHECK_PRINT(&r, "3");
  CHECK(dl_dim_div(&m, &b, &r));
  CHECK_PRINT(&r, "-4");
  DlDim z = C(0);
  CHECK(!dl_dim_div(&a, &z, &r));
  /* exact symbolic division */
  DlDim bs64 = mul(mul(S(0), S(1)), C(64));
  DlDim c64 = C(64);
  CHECK(dl_dim_div(&bs64, &c64, &r));
  CHECK_PRINT(&r, "batch*seq");
  DlDim sq = S(1);
  CHECK(dl_dim_div(&bs64, &sq, &r));
  CHECK_PRINT(&r, "64*batch");
  DlDim twoseq = mul(C(2), S(1));
  DlDim poly = add(mul(C(4), mul(S(0), S(1))), mul(C(6), S(1)));
  CHECK(dl_dim_div(&poly, &twoseq, &r));
  CHECK_PRINT(&r, "2*batch+3");
  /* inexact: fails */
  DlDim c3 = C(3);
  CHECK(!dl_dim_div(&bs64, &c3, &r));
  DlDim heads = S(2);
  CHECK(!dl_dim_div(&bs64, &heads, &r));
  DlDim sp1 = add(S(1), C(1));
  CHECK(!dl_dim_div(&sp1, &sq, &r));
  /* multi-term divisor fails */
  CHECK(!dl_dim_div(&bs64, &sp1, &r));
  /* symbol by itself */
  CHECK(dl_dim_div(&sq, &sq, &r));
  CHECK_PRINT(&r, "1");
  /* 0 / sym = 0 */
  CHECK(dl_dim_div(&z, &sq, &r));
  CHECK_PRINT(&r, "0");
}

static void test_eval_positive(void) {
  int64_t syms[] = {2, 5, 3, 1};
  DlDim a = add(mul(S(0), S(1)), C(1));
  CHECK(dl_dim_eval(&a, syms) == 11);
  DlDim neg = sub(C(2), S(1));
  CHECK(dl_dim_eval(&neg, syms) == -3);
  DlDim sq = mul(S(1), S(1));
  CHECK(dl_dim_eval(&sq, syms) == 25);
  DlDim z = C(0);
  CHECK(dl_dim_eval(&z, syms) == 0);
  CHECK(dl_dim_is_positive(&a));
  CHECK(!dl_dim_is_positive(&neg));
  CHECK(!dl_dim_is_positive(&z));
  DlDim one = C(1), m1 = C(-1);
  CHECK(dl_dim_is_positive(&one));
  CHECK(!dl_dim_is_positive(&m1));
  DlDim sm1 = sub(S(1), C(1)); /* may be 0 */
  CHECK(!dl_dim_is_positive(&sm1));
}

static void test_graph_syms(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test.ir");
  DlGraph *g = dl_graph_new(&ctx, "main");
  CHECK(g != NULL);
  if (!g)
    return;
  int b = dl_graph_sym(g, "batch");
  int s = dl_graph_sym(g, "seq");
  CHECK(b == 0 && s == 1);
  CHECK(dl_graph_sym(g, "batch") == 0);
  int f0 = dl_graph_fresh_sym(g, "seq");
  int f1 = dl_graph_fresh_sym(g, "seq");
  CHECK(f0 == 2 && f1 == 3);
  CHECK(strcmp(g->syms[f0], "seq_0") == 0 && strcmp(g->syms[f1], "seq_1") == 0);

  DlValue *v = dl_value_new(g, "x", DL_F32);
  DlDim dims[3] = {S(b), C(3), S(s)};
  dl_value_set_shape(v, 3, dims);
  DlDim n;
  CHECK(dl_value_numel(v, &n));
  char buf[64];
  dl_dim_print(buf, sizeof buf, &n, g->syms);
  CHECK(strcmp(buf, "3*batch*seq") == 0);
  CHECK(dl_value_numel_const(v) == -1);

  DlValue *shp = dl_value_new(g, NULL, DL_I64);
  CHECK(shp && shp->name[0] == 't');
  DlDim one = C(2);
  dl_value_set_shape(shp, 1, &one);
  CHECK(dl_value_numel_const(shp) == 2);
  int64_t data[2] = {-1, 64};
  shp->data = data;
  DlDim kd[4];
  int cnt = 0;
  CHECK(dl_value_known_dims(shp, kd, 4, &cnt) && cnt == 2);
  int64_t c;
  CHECK(dl_dim_is_const(&kd[0], &c) && c == -1);
  CHECK(dl_dim_is_const(&kd[1], &c) && c == 64);
  CHECK(!dl_value_known_dims(shp, kd, 1, &cnt));
  shp->data = NULL;
  CHECK(!dl_value_known_dims(shp, kd, 4, &cnt));
  DlDim sv[2] = {S(b), C(3)};
  shp->symval = sv;
  CHECK(dl_value_known_dims(shp, kd, 4, &cnt) && cnt == 2);
  CHECK(dl_dim_eq(&kd[0], &sv[0]));

  /* diagnostics carry the file and node prefixes */
  DlNode *node = dl_node_new(g, DL_OP_Add, NULL, "add0", 2, 1);
  CHECK(node && strcmp(node->op_type, "Add") == 0);
  dl_error(&ctx, DL_ERR_INVALID, "bad %d", 1);
  dl_error_node(&ctx, node, DL_ERR_INVALID, "shapes differ");
  CHECK(ctx.ndiags == 2);
  CHECK(strcmp(ctx.diags[0].msg, "test.ir: bad 1") == 0);
  CHECK(strcmp(ctx.diags[1].msg, "test.ir: node 'add0' (Add): shapes differ") ==
        0);
  CHECK(dl_op_from_name("", "MatMul") == DL_OP_MatMul);
  CHECK(dl_op_from_name("ai.onnx", "MatMul") == DL_OP_MatMul);
  CHECK(dl_op_from_name("com.microsoft", "MatMul") == DL_OP_UNKNOWN);
  CHECK(dl_op_from_name("", "NoSuchOp") == DL_OP_UNKNOWN);
  CHECK(strcmp(dl_op_name(DL_OP_Conv), "Conv") == 0);
  CHECK(dl_dtype_from_name("bf16") == DL_BF16 && dl_dtype_size(DL_BF16) == 2);
  CHECK(ctx.opt.opt_level == 2 && ctx.opt.fold_limit_bytes == 16u << 20);
  /* arena: alignment, zeroing, big blocks */
  char *p1 = dl_arena_alloc(&ctx.arena, 3);
  char *p2 = dl_arena_alloc(&ctx.arena, 1 << 20);
  CHECK(((uintptr_t)p1 & 15) == 0 && ((uintptr_t)p2 & 15) == 0);
  CHECK(p2 && p2[0] == 0 && p2[(1 << 20) - 1] == 0);
  char *str = dl_arena_printf(&ctx.arena, "%s_%d", "x", 42);
  CHECK(str && strcmp(str, "x_42") == 0);
  dl_ctx_free(&ctx);
}

/* Values built through the API may share names; the printed text must still
 * parse back and print the same. */
static void test_print_duplicates(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "dup.ir");
  DlGraph *g = dl_graph_new(&ctx, "main");
  int b = dl_graph_sym(g, "batch");
  DlValue *x = dl_value_new(g, "t1", DL_F32);
  DlDim d[2] = {S(b), C(4)};
  dl_value_set_shape(x, 2, d);
  x->is_input = true;
  int in = x->id;
  g->inputs = &in;
  g->ninputs = 1;
  DlNode *n = dl_node_new(g, DL_OP_Relu, NULL, "r", 1, 1);
  DlValue *y = dl_value_new(g, NULL, DL_F32); /* generated "t1" clashes */
  CHECK(strcmp(y->name, "t1") == 0);
  dl_value_set_shape(y, 2, d);
  n->in[0] = x->id;
  n->out[0] = y->id;
  y->producer = n->id;
  int outv = y->id;
  g->outputs = &outv;
  g->noutputs = 1;
  CHECK(dl_verify(g, true) == DL_OK);
  char *t1 = dl_ir_to_string(g);
  CHECK(t1 != NULL);
  DlGraph *g2 = NULL;
  CHECK(t1 && dl_ir_parse(&ctx, t1, &g2) == DL_OK);
  if (g2) {
    char *t2 = dl_ir_to_string(g2);
    CHECK(t2 && strcmp(t1, t2) == 0);
    CHECK(strstr(t1, "%\"t1~1\" : f32[batch,4] = Relu(%t1)") != NULL);
  }
  if (ctx.ndiags)
    dl_print_diags(&ctx, stderr);
  dl_ctx_free(&ctx);
}

/* Subgraph bodies may use values of the enclosing graph; the verifier
 * accepts those but still rejects names defined nowhere. */
static void test_verify_subgraph(void) {
  static const char *text =
      "graph \"main\" opset 17 {\n"
      "  input %c : bool[]\n"
      "  input %x : f32[2]\n"
      "  %y : f32[2] = If(%c) {then_branch = graph \"t\" opset 17 {\n"
      "    outer %x : f32[2]\n"
      "    outer %nowhere : f32[2]\n"
      "    %a : f32[2] = Relu(%x)\n"
      "    output %a\n"
      "    output %x\n"
      "  }, else_branch = graph \"e\" opset 17 {\n"
      "    outer %nowhere : f32[2]\n"
      "    %b : f32[2] = Neg(%nowhere)\n"
      "    output %b\n"
      "  }}\n"
      "  output %y\n"
      "}\n";
  DlCtx ctx;
  dl_ctx_init(&ctx, "sub.ir");
  DlGraph *g = NULL;
  CHECK(dl_ir_parse(&ctx, text, &g) == DL_OK);
  if (g) {
    CHECK(dl_verify(g, true) == DL_OK);
    const DlAttr *t = dl_attr(g->nodes[0], "then_branch");
    const DlAttr *e = dl_attr(g->nodes[0], "else_branch");
    CHECK(t && t->kind == DL_ATTR_GRAPH && t->g->parent == g);
    CHECK(e && e->kind == DL_ATTR_GRAPH);
    if (t && e) {
      CHECK(dl_verify(t->g, true) == DL_OK);
      CHECK(dl_verify(e->g, false) == DL_ERR_INVALID);
    }
  }
  dl_ctx_free(&ctx);
}

int main(void) {
  test_const();
  test_canonical();
  test_limits();
  test_div();
  test_eval_positive();
  test_graph_syms();
  test_print_duplicates();
  test_verify_subgraph();
  if (failures) {
    fprintf(stderr, "test_dim: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_dim: all checks passed\n");
  return 0;
}
