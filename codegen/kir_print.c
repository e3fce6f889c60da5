/*
 * kir_print.c - a readable dump of kernel IR (for --emit=kir and tests).
 *
 * C-like pseudo code: buffers are b0..bN (listed with their graph value,
 * dtype and whether the kernel writes them), locals are printed as
 * hint_id, symbols by their graph names, loop flags as a trailing comment:
 *
 *   kernel k3_Add (node 3)
 *     b0: f32 x
 *     b1: f32 y
 *     b2: f32 z (written)
 *   {
 *     for (i0_0 = 0; i0_0 < batch; i0_0++) { // parallel
 *       b2[i0_0] = b0[i0_0] + b1[0];
 *     }
 *   }
 */
#include "codegen/kir.h"

#include <math.h>
#include <stdio.h>

static const char *const un_names[KU_COUNT] = {
    [KU_NEG] = "-",     [KU_ABS] = "abs",     [KU_NOT] = "!",
    [KU_EXP] = "exp",   [KU_LOG] = "log",     [KU_SQRT] = "sqrt",
    [KU_TANH] = "tanh", [KU_ERF] = "erf",     [KU_FLOOR] = "floor",
    [KU_CEIL] = "ceil", [KU_ROUND] = "round", [KU_SIN] = "sin",
    [KU_COS] = "cos"};

static const char *const bin_names[KB_COUNT] = {
    [KB_ADD] = "+", [KB_SUB] = "-",   [KB_MUL] = "*",   [KB_DIV] = "/",
    [KB_MOD] = "%", [KB_MIN] = "min", [KB_MAX] = "max", [KB_POW] = "pow",
    [KB_LT] = "<",  [KB_LE] = "<=",   [KB_GT] = ">",    [KB_GE] = ">=",
    [KB_EQ] = "==", [KB_NE] = "!=",   [KB_AND] = "&&",  [KB_OR] = "||",
    [KB_XOR] = "^^"};

static void pvar(const Kernel *k, int v, FILE *f) {
  const char *nm =
      (v >= 0 && v < k->nvars && k->vars[v].name) ? k->vars[v].name : "v";
  fprintf(f, "%s_%d", nm, v);
}

/* Binding strength of an infix expression (higher binds tighter); 9 for
 * anything printed as an atom or a call. */
static int prec(const KExpr *e) {
  if (e->kind == KE_SELECT)
    return 0;
  if (e->kind != KE_BINARY)
    return 9;
  switch (e->op) {
  case KB_MUL:
  case KB_DIV:
  case KB_MOD:
    return 5;
  case KB_ADD:
  case KB_SUB:
    return 4;
  case KB_LT:
  case KB_LE:
  case KB_GT:
  case KB_GE:
    return 3;
  case KB_EQ:
  case KB_NE:
    return 2;
  case KB_MIN:
  case KB_MAX:
  case KB_POW:
    return 9;
  default:
    return 1;
  }
}

static void pexpr(const DlGraph *g, const Kernel *k, const KExpr *e, FILE *f,
                  bool top);

/* Prints operand e of an infix operator of strength p; a right operand of
 * equal strength gets parentheses (a - (b - c)). */
static void poperand(const DlGraph *g, const Kernel *k, const KExpr *e, int p,
                     bool right, FILE *f) {
  int q = prec(e);
  bool paren = q < p || (right && q == p);
  if (paren)
    fputc('(', f);
  pexpr(g, k, e, f, true);
  if (paren)
    fputc(')', f);
}

static void pexpr(const DlGraph *g, const Kernel *k, const KExpr *e, FILE *f,
                  bool top) {
  switch (e->kind) {
  case KE_INT:
    if (e->dtype == DL_BOOL)
      fputs(e->i ? "true" : "false", f);
    else
      fprintf(f, "%lld", (long long)e->i);
    if (e->dtype != DL_I64 && e->dtype != DL_BOOL)
      fprintf(f, ":%s", dl_dtype_name(e->dtype));
    return;
  case KE_FLOAT:
    if (isnan(e->f))
      fputs("NAN", f);
    else if (isinf(e->f))
      fputs(e->f < 0 ? "-INFINITY" : "INFINITY", f);
    else
      fprintf(f, "%.9g%s", e->f, e->dtype == DL_F32 ? "f" : "");
    if (e->dtype != DL_F32 && e->dtype != DL_F64)
      fprintf(f, ":%s", dl_dtype_name(e->dtype));
    return;
  case KE_VAR:
    pvar(k, (int)e->i, f);
    return;
  case KE_SYM:
    if (g && e->i >= 0 && e->i < g->nsyms)
      fputs(g->syms[e->i], f);
    else
      fprintf(f, "sym%lld", (long long)e->i);
    return;
  case KE_LOAD:
    fprintf(f, "b%lld[", (long long)e->i);
    pexpr(g, k, e->a, f, true);
    fputc(']', f);
    return;
  case KE_UNARY: {
    const char *nm = e->op >= 0 && e->op < KU_COUNT && un_names[e->op]
                         ? un_names[e->op]
                         : "?";
    if (e->op == KU_NEG || e->op == KU_NOT) {
      fputs(nm, f);
      poperand(g, k, e->a, 9, false, f);
    } else {
      fprintf(f, "%s(", nm);
      pexpr(g, k, e->a, f, true);
      fputc(')', f);
    }
    return;
  }
  case KE_BINARY: {
    const char *nm = e->op >= 0 && e->op < KB_COUNT && bin_names[e->op]
                         ? bin_names[e->op]
                         : "?";
    if (e->op == KB_MIN || e->op == KB_MAX || e->op == KB_POW) {
      fprintf(f, "%s(", nm);
      pexpr(g, k, e->a, f, true);
      fputs(", ", f);
      pexpr(g, k, e->b, f, true);
      fputc(')', f);
      return;
    }
    (void)top;
    poperand(g, k, e->a, prec(e), false, f);
    fprintf(f, " %s ", nm);
    poperand(g, k, e->b, prec(e), true, f);
    return;
  }
  case KE_SELECT:
    poperand(g, k, e->a, 1, false, f);
    fputs(" ? ", f);
    poperand(g, k, e->b, 1, false, f);
    fputs(" : ", f);
    poperand(g, k, e->c, 1, false, f);
    return;
  case KE_CAST:
    fprintf(f, "(%s)", dl_dtype_name(e->dtype));
    poperand(g, k, e->a, 9, false, f);
    return;
  }
  fputs("?", f);
}

static void indent(int d, FILE *f) {
  for (int i = 0; i < d; i++)
    fputs("  ", f);
}

static void pflags(unsigned fl, FILE *f) {
  if (!fl)
    return;
  fputs(" //", f);
  if (fl & KF_PARALLEL)
    fputs(" parallel", f);
  if (fl & KF_REDUCE)
    fputs(" reduce", f);
  if (fl & KF_VECTOR)
    fputs(" vector", f);
  if (fl & KF_UNROLL)
    fputs(" unroll", f);
}

static void pstmt(const DlGraph *g, const Kernel *k, const KStmt *s, int d,
                  FILE *f) {
  switch (s->kind) {
  case KS_BLOCK:
    for (int i = 0; i < s->n; i++)
      pstmt(g, k, s->items[i], d, f);
    return;
  case KS_FOR:
    indent(d, f);
    fputs("for (", f);
    pvar(k, s->var, f);
    fputs(" = 0; ", f);
    pvar(k, s->var, f);
    fputs(" < ", f);
    pexpr(g, k, s->extent, f, true);
    fputs("; ", f);
    pvar(k, s->var, f);
    fputs("++) {", f);
    pflags(s->flags, f);
    fputc('\n', f);
    pstmt(g, k, s->body, d + 1, f);
    indent(d, f);
    fputs("}\n", f);
    return;
  case KS_IF:
    indent(d, f);
    fputs("if (", f);
    pexpr(g, k, s->cond, f, true);
    fputs(") {\n", f);
    pstmt(g, k, s->body, d + 1, f);
    if (s->els) {
      indent(d, f);
      fputs("} else {\n", f);
      pstmt(g, k, s->els, d + 1, f);
    }
    indent(d, f);
    fputs("}\n", f);
    return;
  case KS_DECL:
    indent(d, f);
    fprintf(f, "%s ",
            s->var >= 0 && s->var < k->nvars
                ? dl_dtype_name(k->vars[s->var].dtype)
                : "?");
    pvar(k, s->var, f);
    fputs(" = ", f);
    pexpr(g, k, s->value, f, true);
    fputs(";\n", f);
    return;
  case KS_ASSIGN:
    indent(d, f);
    pvar(k, s->var, f);
    fputs(" = ", f);
    pexpr(g, k, s->value, f, true);
    fputs(";\n", f);
    return;
  case KS_STORE:
    indent(d, f);
    fprintf(f, "b%d[", s->buf);
    pexpr(g, k, s->index, f, true);
    fputs("] = ", f);
    pexpr(g, k, s->value, f, true);
    fputs(";\n", f);
    return;
  }
}

void kir_print(const DlGraph *g, const Kernel *k, void *file) {
  FILE *f = file;
  if (!g)
    g = k->g;
  fprintf(f, "kernel %s (node %d)\n", k->name ? k->name : "?", k->node);
  for (int b = 0; b < k->nbufs; b++) {
    const KBuf *kb = &k->bufs[b];
    const char *nm = "?";
    if (g && kb->value >= 0 && kb->value < g->nvalues &&
        g->values[kb->value]->name)
      nm = g->values[kb->value]->name;
    fprintf(f, "  b%d: %s %s%s\n", b, dl_dtype_name(kb->dtype), nm,
            kb->written ? " (written)" : "");
  }
  fputs("{\n", f);
  if (k->body)
    pstmt(g, k, k->body, 1, f);
  fputs("}\n", f);
}
