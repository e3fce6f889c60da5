/*
 * test_emit_c.c - the C backend against the kernel interpreter.
 *
 * Builds one kernel whose outputs cover every KIR unary/binary op, casts,
 * selects, special float constants and every storage dtype, compiles it to
 * a shared object with the C backend (emit_shared), runs it through its
 * dlcc_module_v1 descriptor and requires bit-identical results with
 * kir_interpret_n.  Also checks that --emit=c style source (emit_source)
 * is written.  Usage: test_emit_c WORKDIR
 */
#include "codegen/module.h"
#include "dlcc/dlcc_module.h"
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define N 16
static DlGraph *g;
static DlCtx ctx;
static KBuilder *kb;
static DlValue *mkval(const char *name, DlDType t, bool in) {
  DlValue *v = dl_value_new(g, name, t);
  DlDim d = dl_dim_sym(0);
  dl_value_set_shape(v, 1, &d);
  v->producer = -1;
  if (in) {
    v->is_input = true;
    g->inputs[g->ninputs++] = v->id;
  } else {
    v->is_output = true;
    g->outputs[g->noutputs++] = v->id;
  }
  return v;
}
static KExpr *iv;
static int nout;
static void out(DlDType t, KExpr *e) {
  char nm[32];
  snprintf(nm, sizeof nm, "o%d", nout++);
  DlValue *v = mkval(nm, t, false);
  int b = kb_buf(kb, v, true);
  kb_store(kb, b, iv, e);
}
int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  char so_path[4096], c_path[4096];
  snprintf(so_path, sizeof so_path, "%s/emit_c_test.so", dir);
  snprintf(c_path, sizeof c_path, "%s/emit_c_test.c", dir);
  dl_ctx_init(&ctx, "t2");
  g = dl_graph_new(&ctx, "t2");
  dl_graph_sym(g, "n");
  g->inputs = dl_arena_alloc(&ctx.arena, 64 * sizeof(int));
  g->outputs = dl_arena_alloc(&ctx.arena, 256 * sizeof(int));
  DlDType it[] = {DL_F32, DL_F32, DL_I32,  DL_I32, DL_F16,
                  DL_I64, DL_U8,  DL_BOOL, DL_F64, DL_U64};
  const char *in_names[] = {"a", "b", "c", "d", "h", "e", "u", "q", "x", "w"};
  DlValue *ins[10];
  for (int i = 0; i < 10; i++)
    ins[i] = mkval(in_names[i], it[i], true);
  kb = kb_new(g, NULL);
  int ib[10];
  for (int i = 0; i < 10; i++)
    ib[i] = kb_buf(kb, ins[i], false);
  DlDim nd = dl_dim_sym(0);
  int lv = kb_for(kb, ke_dim(kb, &nd), "i", KF_PARALLEL);
  iv = ke_var(kb, lv);
  KExpr *A = ke_load(kb, ib[0], iv), *B = ke_load(kb, ib[1], iv),
        *C = ke_load(kb, ib[2], iv), *D = ke_load(kb, ib[3], iv),
        *H = ke_load(kb, ib[4], iv), *E = ke_load(kb, ib[5], iv),
        *U = ke_load(kb, ib[6], iv), *Q = ke_load(kb, ib[7], iv),
        *X = ke_load(kb, ib[8], iv), *W = ke_load(kb, ib[9], iv);
  for (int op = 0; op < KU_COUNT; op++)
    if (op != KU_NOT) {
      out(DL_F32, ke_un(kb, op, A));
      out(DL_F64, ke_un(kb, op, X));
    }
  out(DL_F16, ke_un(kb, KU_EXP, H));
  out(DL_BF16, ke_un(kb, KU_TANH, A));
  for (int op = KB_ADD; op <= KB_POW; op++) {
    out(DL_F32, ke_bin(kb, op, A, B));
    out(DL_F64, ke_bin(kb, op, X, ke_cast(kb, DL_F64, B)));
  }
  for (int op = KB_LT; op <= KB_NE; op++) {
    out(DL_BOOL, ke_bin(kb, op, A, B));
    out(DL_BOOL, ke_bin(kb, op, C, D));
    out(DL_BOOL, ke_bin(kb, op, W, ke_cast(kb, DL_U64, E)));
  }
  for (int op = KB_AND; op <= KB_XOR; op++)
    out(DL_BOOL, ke_bin(kb, op, Q, ke_bin(kb, KB_LT, A, B)));
  out(DL_BOOL, ke_un(kb, KU_NOT, Q));
  int ops_i[] = {KB_ADD, KB_SUB, KB_MUL, KB_DIV,
                 KB_MOD, KB_MIN, KB_MAX, KB_POW};
  for (int k = 0; k < 8; k++) {
    out(DL_I32, ke_bin(kb, ops_i[k], C, D));
    out(DL_I64, ke_bin(kb, ops_i[k], E, ke_cast(kb, DL_I64, D)));
    out(DL_U8, ke_bin(kb, ops_i[k], U, ke_cast(kb, DL_U8, D)));
    out(DL_U64, ke_bin(kb, ops_i[k], W, ke_cast(kb, DL_U64, D)));
  }
  out(DL_I32, ke_un(kb, KU_NEG, C));
  out(DL_I32, ke_un(kb, KU_ABS, C));
  out(DL_U8, ke_un(kb, KU_NEG, U));
  out(DL_I32,
      ke_cast(kb, DL_I32, ke_bin(kb, KB_MIN, A, ke_const(kb, DL_F32, 1e6))));
  out(DL_BOOL, ke_cast(kb, DL_BOOL, A));
  out(DL_F32, ke_cast(kb, DL_F32, C));
  out(DL_F16, A);
  out(DL_F32, H);
  out(DL_F32,
      ke_select(kb, ke_bin(kb, KB_LT, A, B), A, ke_const(kb, DL_F32, 1.5)));
  out(DL_F32, ke_add(kb, A, ke_const(kb, DL_F32, INFINITY)));
  out(DL_F64, ke_mul(kb, X, ke_const(kb, DL_F64, NAN)));
  out(DL_U8, ke_cast(kb, DL_U8, C));
  out(DL_I8, ke_cast(kb, DL_I8, C));
  out(DL_U64, ke_cast(kb, DL_U64, E));
  out(DL_I64, ke_add(kb, E, ke_int(kb, INT64_MIN)));
  out(DL_F32, ke_cast(kb, DL_F32, W));
  kb_end(kb);
  Kernel *k = kb_finish(kb);
  if (!k) {
    dl_print_diags(&ctx, stderr);
    return 1;
  }
  KProgram p = {g, 1, &k};
  KPlan *plan;
  if (kplan_build(&p, &plan)) {
    dl_print_diags(&ctx, stderr);
    return 1;
  }
  DlEmitRequest rq = {.prefix = "t2", .out_path = so_path, .opt_level = 2};
  if (dl_backend_c()->emit_shared(&p, plan, &rq)) {
    dl_print_diags(&ctx, stderr);
    return 1;
  }
  rq.out_path = c_path;
  if (dl_backend_c()->emit_source(&p, plan, &rq)) {
    dl_print_diags(&ctx, stderr);
    return 1;
  }
  /* data */
  srand(1);
  void *bufs[256];
  int64_t numel[256];
  int64_t shape[1] = {N};
  dlcc_tensor tin[10], tout[200];
  for (int i = 0; i < 10; i++) {
    size_t es = dl_dtype_size(it[i]);
    char *d = calloc(N, es);
    for (int j = 0; j < N; j++) {
      double v = (rand() % 2000 - 1000) / 100.0;
      if (j == 3)
        v = 0;
      if (j == 5 && dl_dtype_is_float(it[i]))
        v = NAN;
      int64_t iv2 = rand() % 200 - 100;
      if (i == 3 && iv2 == 0)
        iv2 = 7;
      if (j == 6)
        iv2 = 2147483647;
      if (i == 3 && j == 6)
        iv2 = 3;
      if (i == 9 && j == 7)
        iv2 = -5;
      switch (it[i]) {
      case DL_F32:
        ((float *)d)[j] = (float)v;
        break;
      case DL_F64:
        ((double *)d)[j] = v;
        break;
      case DL_F16:
        ((uint16_t *)d)[j] = (uint16_t)(0x3c00 + j * 37);
        break;
      case DL_I32:
        ((int32_t *)d)[j] = (int32_t)(i == 3 ? (iv2 % 9 ? iv2 % 9 : 2) : iv2);
        break;
      case DL_I64:
        ((int64_t *)d)[j] = iv2 * 1000003;
        break;
      case DL_U8:
        ((uint8_t *)d)[j] = (uint8_t)iv2;
        break;
      case DL_BOOL:
        ((uint8_t *)d)[j] = iv2 & 1;
        break;
      case DL_U64:
        ((uint64_t *)d)[j] = (uint64_t)iv2;
        break;
      default:
        break;
      }
    }
    tin[i] = (dlcc_tensor){d, shape, 1, it[i]};
  }
  int64_t sym[1] = {N};
  for (int b = 0; b < k->nbufs; b++) {
    DlValue *v = g->values[k->bufs[b].value];
    numel[b] = N;
    if (v->is_input) {
      for (int i = 0; i < 10; i++)
        if (ins[i] == v)
          bufs[b] = tin[i].data;
    } else
      bufs[b] = calloc(N, 8);
  }
  if (kir_interpret_n(&ctx, k, bufs, numel, sym)) {
    dl_print_diags(&ctx, stderr);
    return 1;
  }
  for (int o = 0; o < g->noutputs; o++) {
    DlValue *v = g->values[g->outputs[o]];
    tout[o] = (dlcc_tensor){calloc(N, 8), shape, 1, v->dtype};
  }
  void *h = dlopen(so_path, RTLD_NOW);
  if (!h) {
    puts(dlerror());
    return 1;
  }
  const dlcc_module_desc *(*fn)(void) =
      (const dlcc_module_desc *(*)(void))dlsym(h, "dlcc_module_v1");
  const dlcc_module_desc *md = fn();
  int st = md->run(tin, tout, NULL, 0, NULL);
  printf("run=%d outputs=%d\n", st, g->noutputs);
  int bad = 0;
  for (int b = 0; b < k->nbufs; b++) {
    DlValue *v = g->values[k->bufs[b].value];
    if (v->is_input)
      continue;
    int o = -1;
    for (int j = 0; j < g->noutputs; j++)
      if (g->outputs[j] == v->id)
        o = j;
    size_t es = dl_dtype_size(v->dtype);
    if (memcmp(bufs[b], tout[o].data, N * es)) {
      bad++;
      printf("mismatch %s dtype %s:", v->name, dl_dtype_name(v->dtype));
      for (int j = 0; j < N; j++) {
        if (v->dtype == DL_F32)
          printf(" %g/%g", ((float *)bufs[b])[j], ((float *)tout[o].data)[j]);
        else if (v->dtype == DL_F64)
          printf(" %g/%g", ((double *)bufs[b])[j], ((double *)tout[o].data)[j]);
        else {
          uint64_t x1 = 0, x2 = 0;
          memcpy(&x1, (char *)bufs[b] + j * es, es);
          memcpy(&x2, (char *)tout[o].data + j * es, es);
          if (x1 != x2)
            printf(" [%d]%llx/%llx", j, (unsigned long long)x1,
                   (unsigned long long)x2);
        }
      }
      printf("\n");
    }
  }
  printf("bad=%d\n", bad);
  for (int b = 0; b < k->nbufs; b++)
    if (!g->values[k->bufs[b].value]->is_input)
      free(bufs[b]);
  for (int i = 0; i < 10; i++)
    free(tin[i].data);
  for (int o = 0; o < g->noutputs; o++)
    free(tout[o].data);
  dlclose(h);
  dl_ctx_free(&ctx);
  return bad != 0;
}
