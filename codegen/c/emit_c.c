/*
 * emit_c.c - the C backend: renders a KProgram and its storage plan as one
 * self-contained C99 source (libc + libm only) exporting the module ABI of
 * include/dlcc/dlcc_module.h, and builds it into a shared object with the
 * host C compiler.
 *
 * Each kernel becomes one static function taking its buffers as typed
 * pointers plus `const int64_t *sym`.  Float16/bfloat16 buffers are stored
 * as uint16_t and computed in float.  The weight blob is embedded as a hex
 * array (--emit=c), assembled with .incbin (shared objects), or left to a
 * sidecar file passed to run().
 */
#include "codegen/c/emit_c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- symbols ------------------------------------------------------------ */

static bool dim_single_sym(const DlDim *d, int *sym) {
  if (d->nterms == 1 && d->t[0].coef == 1 && d->t[0].nsym == 1) {
    if (sym)
      *sym = d->t[0].sym[0];
    return true;
  }
  return false;
}

DlStatus dlc_collect_syms(KProgram *p, DlcSyms *s) {
  DlGraph *g = p->g;
  DlArena *a = &g->ctx->arena;
  memset(s, 0, sizeof *s);
  s->nbase = g->nsyms;
  int cap = (g->ninputs + g->noutputs) * DL_MAX_RANK + 1;
  s->derived = dl_arena_alloc(a, (size_t)cap * sizeof *s->derived);
  if (!s->derived)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int io = 0; io < 2; io++) {
    int n = io ? g->noutputs : g->ninputs;
    const int *ids = io ? g->outputs : g->inputs;
    for (int i = 0; i < n; i++) {
      const DlValue *v = g->values[ids[i]];
      for (int d = 0; d < v->rank; d++) {
        const DlDim *dd = &v->dims[d];
        if (dl_dim_is_const(dd, NULL) || dim_single_sym(dd, NULL))
          continue;
        bool seen = false;
        for (int k = 0; k < s->nderived && !seen; k++)
          seen = dl_dim_eq(&s->derived[k], dd);
        if (!seen)
          s->derived[s->nderived++] = *dd;
      }
    }
  }
  s->total = s->nbase + s->nderived;
  s->names = dl_arena_alloc(a, (size_t)(s->total + 1) * sizeof *s->names);
  if (!s->names)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < s->nbase; i++)
    s->names[i] = g->syms[i];
  for (int k = 0; k < s->nderived; k++) {
    char buf[256];
    dl_dim_print(buf, sizeof buf, &s->derived[k], g->syms);
    s->names[s->nbase + k] = dl_arena_strdup(a, buf);
  }
  return DL_OK;
}

int64_t dlc_desc_dim(const DlcSyms *s, const DlDim *d) {
  int64_t c;
  int sym;
  if (dl_dim_is_const(d, &c))
    return c;
  if (dim_single_sym(d, &sym))
    return -1 - (int64_t)sym;
  for (int k = 0; k < s->nderived; k++)
    if (dl_dim_eq(&s->derived[k], d))
      return -1 - (int64_t)(s->nbase + k);
  return 0; /* not reached for io dims */
}

void dlc_write_dim(FILE *f, const DlDim *d, const char *symvar) {
  if (d->nterms == 0) {
    fputs("INT64_C(0)", f);
    return;
  }
  fputc('(', f);
  for (int t = 0; t < d->nterms; t++) {
    const DlTerm *tm = &d->t[t];
    if (t)
      fputs(" + ", f);
    fprintf(f, "INT64_C(%lld)", (long long)tm->coef);
    for (int k = 0; k < tm->nsym; k++)
      fprintf(f, " * %s[%d]", symvar, tm->sym[k]);
  }
  fputc(')', f);
}

void dlc_write_cstr(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(f, "\\%c", *c);
    else if (*c < 32 || *c >= 127)
      fprintf(f, "\\%03o", *c);
    else
      fputc(*c, f);
  }
  fputc('"', f);
}

void dlc_write_abi(FILE *f) {
  fputs("#ifndef DLCC_MODULE_H\n"
        "#define DLCC_MODULE_H\n"
        "#include <stddef.h>\n"
        "#include <stdint.h>\n"
        "#ifdef __cplusplus\n"
        "extern \"C\" {\n"
        "#endif\n"
        "#define DLCC_ABI_VERSION 1\n"
        "#define DLCC_MAX_RANK 8\n"
        "enum dlcc_dtype {\n"
        "  DLCC_FLOAT32 = 1, DLCC_UINT8 = 2, DLCC_INT8 = 3, DLCC_UINT16 = 4,\n"
        "  DLCC_INT16 = 5, DLCC_INT32 = 6, DLCC_INT64 = 7, DLCC_BOOL = 9,\n"
        "  DLCC_FLOAT16 = 10, DLCC_FLOAT64 = 11, DLCC_UINT32 = 12,\n"
        "  DLCC_UINT64 = 13\n"
        "};\n"
        "enum dlcc_status {\n"
        "  DLCC_OK = 0, DLCC_ERR_ARGUMENT = 1, DLCC_ERR_SHAPE = 2,\n"
        "  DLCC_ERR_DTYPE = 3, DLCC_ERR_WORKSPACE = 4, DLCC_ERR_WEIGHTS = 5,\n"
        "  DLCC_ERR_RUNTIME = 6\n"
        "};\n"
        "typedef struct dlcc_tensor {\n"
        "  void *data;\n"
        "  const int64_t *shape;\n"
        "  int32_t ndim;\n"
        "  int32_t dtype;\n"
        "} dlcc_tensor;\n"
        "typedef struct dlcc_io_desc {\n"
        "  const char *name;\n"
        "  int32_t dtype;\n"
        "  int32_t ndim;\n"
        "  int64_t dims[DLCC_MAX_RANK];\n"
        "} dlcc_io_desc;\n"
        "typedef struct dlcc_module_desc {\n"
        "  int32_t abi_version;\n"
        "  const char *name;\n"
        "  int32_t num_inputs, num_outputs, num_syms;\n"
        "  const dlcc_io_desc *inputs;\n"
        "  const dlcc_io_desc *outputs;\n"
        "  const char *const *sym_names;\n"
        "  uint64_t sidecar_weights_bytes;\n"
        "  int32_t (*bind)(const dlcc_tensor *inputs, int64_t *syms);\n"
        "  uint64_t (*workspace_size)(const int64_t *syms);\n"
        "  int32_t (*output_shape)(int32_t i, const int64_t *syms, int64_t "
        "*dims);\n"
        "  int32_t (*run)(const dlcc_tensor *inputs, dlcc_tensor *outputs,\n"
        "                 void *workspace, uint64_t workspace_bytes,\n"
        "                 const void *weights);\n"
        "} dlcc_module_desc;\n"
        "typedef const dlcc_module_desc *(*dlcc_module_v1_fn)(void);\n"
        "#define DLCC_MODULE_SYMBOL \"dlcc_module_v1\"\n"
        "#ifdef __cplusplus\n"
        "}\n"
        "#endif\n"
        "#endif /* DLCC_MODULE_H */\n",
        f);
}

/* ---- types -------------------------------------------------------------- */

/* Type used for computation (locals, expression results). */
static const char *ctype(DlDType t) {
  switch (t) {
  case DL_F32:
    return "float";
  case DL_F64:
    return "double";
  case DL_F16:
  case DL_BF16:
    return "float";
  case DL_I8:
    return "int8_t";
  case DL_U8:
    return "uint8_t";
  case DL_I16:
    return "int16_t";
  case DL_U16:
    return "uint16_t";
  case DL_I32:
    return "int32_t";
  case DL_U32:
    return "uint32_t";
  case DL_I64:
    return "int64_t";
  case DL_U64:
    return "uint64_t";
  case DL_BOOL:
    return "uint8_t";
  default:
    return NULL;
  }
}

/* Type used for storage in buffers. */
static const char *stype(DlDType t) {
  if (t == DL_F16 || t == DL_BF16)
    return "uint16_t";
  return ctype(t);
}

static bool is_flt(DlDType t) {
  return t == DL_F32 || t == DL_F64 || t == DL_F16 || t == DL_BF16;
}
static bool is_unsigned(DlDType t) {
  return t == DL_U8 || t == DL_U16 || t == DL_U32 || t == DL_U64 ||
         t == DL_BOOL;
}
/* Narrow integer types whose arithmetic promotes to int in C. */
static bool needs_cast(DlDType t) {
  return t == DL_I8 || t == DL_U8 || t == DL_I16 || t == DL_U16 || t == DL_BOOL;
}

/* ---- expressions and statements ---------------------------------------- */

typedef struct Emit {
  FILE *f;
  DlCtx *ctx;
  const Kernel *k;
  DlStatus st;
  int depth;
} Emit;

static void bad(Emit *e, const char *what) {
  if (e->st == DL_OK)
    e->st = dl_error(e->ctx, DL_ERR_UNSUPPORTED, "C backend: kernel %s: %s",
                     e->k ? e->k->name : "?", what);
}

static void write_float(FILE *f, double v, bool single) {
  if (v != v) {
    fputs(single ? "((float)NAN)" : "((double)NAN)", f);
    return;
  }
  if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
    fputs(v < 0 ? "(-" : "(", f);
    fputs(single ? "HUGE_VALF)" : "HUGE_VAL)", f);
    return;
  }
  if (single && (v > 3.4028234663852886e38 || v < -3.4028234663852886e38)) {
    fputs(v < 0 ? "(-HUGE_VALF)" : "HUGE_VALF", f);
    return;
  }
  char buf[64];
  snprintf(buf, sizeof buf, single ? "%.9g" : "%.17g", v);
  bool dot = strpbrk(buf, ".e") != NULL;
  fprintf(f, "(%s%s%s)", buf, dot ? "" : ".0", single ? "f" : "");
}

static void expr(Emit *e, const KExpr *x);

static const char *fsuffix(DlDType t) {
  return t == DL_F64 ? "" : "f";
}

static void call1(Emit *e, const char *fn, DlDType t, const KExpr *a) {
  fprintf(e->f, "%s%s(", fn, fsuffix(t));
  expr(e, a);
  fputc(')', e->f);
}

static void unary(Emit *e, const KExpr *x) {
  FILE *f = e->f;
  DlDType t = x->a ? x->a->dtype : x->dtype;
  if (!x->a) {
    bad(e, "unary without operand");
    return;
  }
  if (is_flt(t)) {
    static const char *fn[KU_COUNT] = {
        [KU_ABS] = "fabs",    [KU_EXP] = "exp",   [KU_LOG] = "log",
        [KU_SQRT] = "sqrt",   [KU_TANH] = "tanh", [KU_ERF] = "erf",
        [KU_FLOOR] = "floor", [KU_CEIL] = "ceil", [KU_ROUND] = "rint",
        [KU_SIN] = "sin",     [KU_COS] = "cos"};
    if (x->op == KU_NEG) {
      fputs("(-", f);
      expr(e, x->a);
      fputc(')', f);
    } else if (x->op == KU_NOT) {
      fputs("(!", f);
      expr(e, x->a);
      fputc(')', f);
    } else if (x->op >= 0 && x->op < KU_COUNT && fn[x->op]) {
      call1(e, fn[x->op], t, x->a);
    } else {
      bad(e, "unknown unary op");
    }
    return;
  }
  const char *ct = ctype(x->dtype);
  switch (x->op) {
  case KU_NEG:
    fprintf(f, "((%s)-", ct);
    expr(e, x->a);
    fputc(')', f);
    break;
  case KU_ABS:
    if (is_unsigned(t)) {
      expr(e, x->a);
    } else {
      fprintf(f, "((%s)dl_absi(", ct);
      expr(e, x->a);
      fputs("))", f);
    }
    break;
  case KU_NOT:
    fputs("(!", f);
    expr(e, x->a);
    fputc(')', f);
    break;
  case KU_FLOOR:
  case KU_CEIL:
  case KU_ROUND:
    expr(e, x->a);
    break;
  default:
    bad(e, "float unary op on an integer");
  }
}

/* 32-bit signed add/sub/mul wrap like the interpreter (no C overflow). */
static void wrap32(Emit *e, const char *op, const KExpr *x) {
  FILE *f = e->f;
  fputs("((int32_t)((uint32_t)", f);
  expr(e, x->a);
  fprintf(f, " %s (uint32_t)", op);
  expr(e, x->b);
  fputs("))", f);
}

static void binop(Emit *e, const char *op, const KExpr *x) {
  FILE *f = e->f;
  if (x->dtype == DL_I32 && (op[0] == '+' || op[0] == '-' || op[0] == '*') &&
      !op[1]) {
    wrap32(e, op, x);
    return;
  }
  bool c = needs_cast(x->dtype) && ctype(x->dtype);
  if (c)
    fprintf(f, "((%s)", ctype(x->dtype));
  fputc('(', f);
  expr(e, x->a);
  fprintf(f, " %s ", op);
  expr(e, x->b);
  fputc(')', f);
  if (c)
    fputc(')', f);
}

static void call2(Emit *e, const char *fn, const KExpr *x) {
  fprintf(e->f, "%s(", fn);
  expr(e, x->a);
  fputs(", ", e->f);
  expr(e, x->b);
  fputc(')', e->f);
}

static void binary(Emit *e, const KExpr *x) {
  FILE *f = e->f;
  if (!x->a || !x->b) {
    bad(e, "binary without operands");
    return;
  }
  DlDType t = x->a->dtype;
  bool fl = is_flt(t);
  bool single = t != DL_F64;
  bool u = is_unsigned(t);
  switch (x->op) {
  case KB_ADD:
    binop(e, "+", x);
    break;
  case KB_SUB:
    binop(e, "-", x);
    break;
  case KB_MUL:
    binop(e, "*", x);
    break;
  case KB_DIV:
    binop(e, "/", x);
    break;
  case KB_MOD:
    if (fl)
      call2(e, single ? "fmodf" : "fmod", x);
    else
      binop(e, "%", x);
    break;
  case KB_MIN:
  case KB_MAX: {
    bool mn = x->op == KB_MIN;
    if (fl) {
      call2(e,
            single ? (mn ? "dl_fminf" : "dl_fmaxf")
                   : (mn ? "dl_fmin" : "dl_fmax"),
            x);
    } else {
      fprintf(f, "((%s)", ctype(x->dtype));
      call2(e, u ? (mn ? "dl_minu" : "dl_maxu") : (mn ? "dl_mini" : "dl_maxi"),
            x);
      fputc(')', f);
    }
    break;
  }
  case KB_POW:
    if (fl) {
      call2(e, single ? "powf" : "pow", x);
    } else {
      fprintf(f, "((%s)", ctype(x->dtype));
      call2(e, "dl_powi", x);
      fputc(')', f);
    }
    break;
  case KB_LT:
    binop(e, "<", x);
    break;
  case KB_LE:
    binop(e, "<=", x);
    break;
  case KB_GT:
    binop(e, ">", x);
    break;
  case KB_GE:
    binop(e, ">=", x);
    break;
  case KB_EQ:
    binop(e, "==", x);
    break;
  case KB_NE:
    binop(e, "!=", x);
    break;
  case KB_AND:
    binop(e, "&&", x);
    break;
  case KB_OR:
    binop(e, "||", x);
    break;
  case KB_XOR:
    fputs("(!", f);
    expr(e, x->a);
    fputs(" != !", f);
    expr(e, x->b);
    fputc(')', f);
    break;
  default:
    bad(e, "unknown binary op");
  }
}

static void expr(Emit *e, const KExpr *x) {
  FILE *f = e->f;
  if (!x) {
    bad(e, "missing expression");
    return;
  }
  if (x->kind != KE_INT && x->kind != KE_FLOAT && !ctype(x->dtype)) {
    bad(e, "unsupported dtype in expression");
    return;
  }
  switch (x->kind) {
  case KE_INT:
    if (x->dtype == DL_BOOL)
      fputs(x->i ? "1" : "0", f);
    else if (x->dtype == DL_U64)
      fprintf(f, "UINT64_C(%llu)", (unsigned long long)x->i);
    else if (x->i == INT64_MIN)
      fputs("(-INT64_C(9223372036854775807) - 1)", f);
    else if (is_flt(x->dtype))
      write_float(f, (double)x->i, x->dtype != DL_F64);
    else if (x->dtype == DL_I64 || x->dtype == DL_U32)
      fprintf(f, "INT64_C(%lld)", (long long)x->i);
    else if (x->i < 0)
      fprintf(f, "(%lld)", (long long)x->i);
    else
      fprintf(f, "%lld", (long long)x->i);
    break;
  case KE_FLOAT:
    if (is_flt(x->dtype) || x->dtype == DL_UNDEFINED)
      write_float(f, x->f, x->dtype != DL_F64);
    else
      fprintf(f, "((%s)%.17g)", ctype(x->dtype), x->f);
    break;
  case KE_VAR:
    fprintf(f, "v%lld", (long long)x->i);
    break;
  case KE_SYM:
    fprintf(f, "sym[%lld]", (long long)x->i);
    break;
  case KE_LOAD: {
    if (!e->k || x->i < 0 || x->i >= e->k->nbufs) {
      bad(e, "load from a buffer out of range");
      return;
    }
    DlDType bt = e->k->bufs[x->i].dtype;
    const char *conv = bt == DL_F16    ? "dl_h2f("
                       : bt == DL_BF16 ? "dl_bf2f("
                                       : "";
    fprintf(f, "%sb%lld[", conv, (long long)x->i);
    expr(e, x->a);
    fputc(']', f);
    if (*conv)
      fputc(')', f);
    break;
  }
  case KE_UNARY:
    unary(e, x);
    break;
  case KE_BINARY:
    binary(e, x);
    break;
  case KE_SELECT:
    fputc('(', f);
    expr(e, x->a);
    fputs(" ? ", f);
    expr(e, x->b);
    fputs(" : ", f);
    expr(e, x->c);
    fputc(')', f);
    break;
  case KE_CAST:
    if (!x->a) {
      bad(e, "cast without operand");
    } else if (x->dtype == DL_BOOL) {
      fputs("((uint8_t)(", f);
      expr(e, x->a);
      fputs(" != 0))", f);
    } else if (is_flt(x->a->dtype) && !is_flt(x->dtype)) {
      /* NaN -> 0, saturate to the 64-bit range, then wrap (interpreter) */
      fprintf(f, "((%s)%s(", ctype(x->dtype),
              x->dtype == DL_U64 ? "dl_f2u" : "dl_f2i");
      expr(e, x->a);
      fputs("))", f);
    } else {
      fprintf(f, "((%s)", ctype(x->dtype));
      expr(e, x->a);
      fputc(')', f);
    }
    break;
  default:
    bad(e, "unknown expression kind");
  }
}

static void indent(Emit *e) {
  for (int i = 0; i < e->depth; i++)
    fputs("  ", e->f);
}

/* True when statement s (inside a loop body) assigns a local it does not
 * declare itself: such a local carries a value across iterations. */
static bool assigns_outer(const KStmt *s, const uint8_t *declared, int nvars) {
  if (!s)
    return false;
  switch (s->kind) {
  case KS_BLOCK:
    for (int i = 0; i < s->n; i++)
      if (assigns_outer(s->items[i], declared, nvars))
        return true;
    return false;
  case KS_FOR:
    return assigns_outer(s->body, declared, nvars);
  case KS_IF:
    return assigns_outer(s->body, declared, nvars) ||
           assigns_outer(s->els, declared, nvars);
  case KS_ASSIGN:
    return s->var < 0 || s->var >= nvars || !declared[s->var];
  default:
    return false;
  }
}

/* Marks the locals declared (and loop variables opened) inside s. */
static void mark_declared(const KStmt *s, uint8_t *declared, int nvars) {
  if (!s)
    return;
  switch (s->kind) {
  case KS_BLOCK:
    for (int i = 0; i < s->n; i++)
      mark_declared(s->items[i], declared, nvars);
    break;
  case KS_FOR:
    if (s->var >= 0 && s->var < nvars)
      declared[s->var] = 1;
    mark_declared(s->body, declared, nvars);
    break;
  case KS_IF:
    mark_declared(s->body, declared, nvars);
    mark_declared(s->els, declared, nvars);
    break;
  case KS_DECL:
    if (s->var >= 0 && s->var < nvars)
      declared[s->var] = 1;
    break;
  default:
    break;
  }
}

static bool has_loop(const KStmt *s) {
  if (!s)
    return false;
  if (s->kind == KS_FOR)
    return true;
  if (s->kind == KS_BLOCK) {
    for (int i = 0; i < s->n; i++)
      if (has_loop(s->items[i]))
        return true;
  } else if (s->kind == KS_IF) {
    return has_loop(s->body) || has_loop(s->els);
  }
  return false;
}

/* A KF_VECTOR loop (not a reduction) whose body is straight-line code that
 * carries no local across iterations gets `#pragma omp simd`. */
static bool simd_loop(const KStmt *s) {
  if (!(s->flags & KF_VECTOR) || (s->flags & KF_REDUCE) || has_loop(s->body))
    return false;
  uint8_t declared[512];
  int nv = (int)sizeof declared;
  memset(declared, 0, sizeof declared);
  mark_declared(s->body, declared, nv);
  return !assigns_outer(s->body, declared, nv);
}

static void stmt(Emit *e, const KStmt *s) {
  FILE *f = e->f;
  if (!s || e->st)
    return;
  const Kernel *k = e->k;
  switch (s->kind) {
  case KS_BLOCK:
    for (int i = 0; i < s->n; i++)
      stmt(e, s->items[i]);
    break;
  case KS_FOR:
    if (simd_loop(s)) {
      /* the loop's iterations are independent and carry no local across
       * them: a vector loop (in the canonical form OpenMP requires) */
      indent(e);
      fprintf(f, "{\n");
      e->depth++;
      indent(e);
      fprintf(f, "const int64_t n%d = ", s->var);
      expr(e, s->extent);
      fputs(";\n", f);
      indent(e);
      fputs("DLCC_SIMD\n", f);
      indent(e);
      fprintf(f, "for (int64_t v%d = 0; v%d < n%d; v%d++) {\n", s->var, s->var,
              s->var, s->var);
    } else {
      indent(e);
      fprintf(f, "for (int64_t v%d = 0, n%d = ", s->var, s->var);
      expr(e, s->extent);
      fprintf(f, "; v%d < n%d; v%d++) {\n", s->var, s->var, s->var);
    }
    e->depth++;
    stmt(e, s->body);
    e->depth--;
    indent(e);
    fputs("}\n", f);
    if (simd_loop(s)) {
      e->depth--;
      indent(e);
      fputs("}\n", f);
    }
    break;
  case KS_IF:
    indent(e);
    fputs("if (", f);
    expr(e, s->cond);
    fputs(") {\n", f);
    e->depth++;
    stmt(e, s->body);
    e->depth--;
    if (s->els) {
      indent(e);
      fputs("} else {\n", f);
      e->depth++;
      stmt(e, s->els);
      e->depth--;
    }
    indent(e);
    fputs("}\n", f);
    break;
  case KS_DECL:
    if (s->var < 0 || s->var >= k->nvars || !ctype(k->vars[s->var].dtype)) {
      bad(e, "bad local variable");
      return;
    }
    indent(e);
    fprintf(f, "%s v%d = ", ctype(k->vars[s->var].dtype), s->var);
    expr(e, s->value);
    fputs(";\n", f);
    break;
  case KS_ASSIGN:
    indent(e);
    fprintf(f, "v%d = ", s->var);
    expr(e, s->value);
    fputs(";\n", f);
    break;
  case KS_STORE: {
    if (s->buf < 0 || s->buf >= k->nbufs) {
      bad(e, "store to a buffer out of range");
      return;
    }
    DlDType bt = k->bufs[s->buf].dtype;
    indent(e);
    fprintf(f, "b%d[", s->buf);
    expr(e, s->index);
    fputs("] = ", f);
    if (bt == DL_F16 || bt == DL_BF16) {
      fputs(bt == DL_F16 ? "dl_f2h(" : "dl_f2bf(", f);
      expr(e, s->value);
      fputc(')', f);
    } else if (bt == DL_BOOL) {
      fputs("(uint8_t)(", f);
      expr(e, s->value);
      fputc(')', f);
    } else {
      expr(e, s->value);
    }
    fputs(";\n", f);
    break;
  }
  default:
    bad(e, "unknown statement kind");
  }
}

static void kernel(Emit *e, const KPlan *plan, const Kernel *k) {
  FILE *f = e->f;
  e->k = k;
  fprintf(f, "\nstatic void %s(", k->name);
  for (int b = 0; b < k->nbufs; b++) {
    const char *t = stype(k->bufs[b].dtype);
    if (!t) {
      bad(e, "unsupported buffer dtype");
      return;
    }
    /* Buffers are restrict unless the plan gave two of them one storage
     * (an op working in place); callers must not alias inputs and outputs
     * either. */
    bool shared = false;
    for (int o = 0; o < k->nbufs && !shared; o++)
      shared = o != b && kplan_bufs_share(plan, k, b, o);
    fprintf(f, "%s%s *%sb%d, ", k->bufs[b].written ? "" : "const ", t,
            shared ? "" : "restrict ", b);
  }
  fputs("const int64_t *sym) {\n  (void)sym;\n", f);
  e->depth = 1;
  stmt(e, k->body);
  fputs("}\n", f);
}

static const char *prelude =
    "static inline float dl_fminf(float a, float b) {\n"
    "  return a != a ? a : b != b ? b : a < b ? a : b;\n}\n"
    "static inline float dl_fmaxf(float a, float b) {\n"
    "  return a != a ? a : b != b ? b : a > b ? a : b;\n}\n"
    "static inline double dl_fmin(double a, double b) {\n"
    "  return a != a ? a : b != b ? b : a < b ? a : b;\n}\n"
    "static inline double dl_fmax(double a, double b) {\n"
    "  return a != a ? a : b != b ? b : a > b ? a : b;\n}\n"
    "static inline int64_t dl_mini(int64_t a, int64_t b) { return a < b ? a "
    ": b; }\n"
    "static inline int64_t dl_maxi(int64_t a, int64_t b) { return a > b ? a "
    ": b; }\n"
    "static inline uint64_t dl_minu(uint64_t a, uint64_t b) { return a < b ? "
    "a : b; }\n"
    "static inline uint64_t dl_maxu(uint64_t a, uint64_t b) { return a > b ? "
    "a : b; }\n"
    "static inline int64_t dl_f2i(double v) {\n"
    "  if (v != v) return 0;\n"
    "  if (v >= 9223372036854775807.0) return INT64_MAX;\n"
    "  if (v <= -9223372036854775808.0) return INT64_MIN;\n"
    "  return (int64_t)v;\n}\n"
    "static inline uint64_t dl_f2u(double v) {\n"
    "  if (v != v) return 0;\n"
    "  if (v <= 0) return (uint64_t)(v > -9.2e18 ? (int64_t)v : 0);\n"
    "  if (v >= 18446744073709551615.0) return UINT64_MAX;\n"
    "  return (uint64_t)v;\n}\n"
    "static inline int64_t dl_absi(int64_t a) { return a < 0 ? -a : a; }\n"
    "static inline int64_t dl_powi(int64_t b, int64_t e) {\n"
    "  int64_t r = 1;\n"
    "  if (e < 0) return b == 1 ? 1 : b == -1 ? (e % 2 ? -1 : 1) : 0;\n"
    "  while (e) { if (e & 1) r *= b; b *= b; e >>= 1; }\n"
    "  return r;\n}\n"
    "static inline float dl_h2f(uint16_t h) {\n"
    "  uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f,\n"
    "           m = h & 0x3ffu, u;\n"
    "  float f;\n"
    "  if (e == 0) {\n"
    "    f = (float)m * 5.9604644775390625e-8f;\n"
    "    memcpy(&u, &f, 4);\n"
    "    u |= s;\n"
    "  } else if (e == 31) {\n"
    "    u = s | 0x7f800000u | (m << 13);\n"
    "  } else {\n"
    "    u = s | ((e + 112) << 23) | (m << 13);\n"
    "  }\n"
    "  memcpy(&f, &u, 4);\n"
    "  return f;\n}\n"
    "static inline uint16_t dl_f2h(float f) {\n"
    "  uint32_t u;\n"
    "  memcpy(&u, &f, 4);\n"
    "  uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;\n"
    "  if (a > 0x7f800000u) return (uint16_t)(s | 0x7e00u);\n"
    "  if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u);\n"
    "  if (a < 0x38800000u) {\n"
    "    float v;\n"
    "    memcpy(&v, &a, 4);\n"
    "    return (uint16_t)(s | (uint32_t)rintf(v * 16777216.0f));\n"
    "  }\n"
    "  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);\n"
    "  return (uint16_t)(s | ((r - 0x38000000u) >> 13));\n}\n"
    "static inline float dl_bf2f(uint16_t h) {\n"
    "  uint32_t u = (uint32_t)h << 16;\n"
    "  float f;\n"
    "  memcpy(&f, &u, 4);\n"
    "  return f;\n}\n"
    "static inline uint16_t dl_f2bf(float f) {\n"
    "  uint32_t u;\n"
    "  memcpy(&u, &f, 4);\n"
    "  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | "
    "0x40u);\n"
    "  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);\n}\n";

/* ---- the module ---------------------------------------------------------- */

typedef enum WeightsMode {
  W_NONE,   /* no weights */
  W_ARRAY,  /* hex array in the C file */
  W_EXTERN, /* defined by an assembled .incbin */
  W_SIDECAR /* passed to run() */
} WeightsMode;

static void write_hex_blob(FILE *f, const uint8_t *p, uint64_t n) {
  static const char hx[] = "0123456789abcdef";
  char line[16 * 5 + 2];
  for (uint64_t i = 0; i < n; i += 16) {
    int len = 0;
    for (uint64_t j = i; j < n && j < i + 16; j++) {
      line[len++] = '0';
      line[len++] = 'x';
      line[len++] = hx[p[j] >> 4];
      line[len++] = hx[p[j] & 15];
      line[len++] = ',';
    }
    line[len++] = '\n';
    fwrite(line, 1, (size_t)len, f);
  }
}

static void io_desc(FILE *f, const DlcSyms *s, const DlValue *v) {
  fputs("  {", f);
  dlc_write_cstr(f, v->name);
  fprintf(f, ", %d, %d, {", (int)v->dtype, v->rank);
  for (int d = 0; d < v->rank; d++)
    fprintf(f, "%s%lld", d ? ", " : "",
            (long long)dlc_desc_dim(s, &v->dims[d]));
  if (v->rank == 0)
    fputc('0', f);
  fputs("}},\n", f);
}

/* Does any kernel, slot or io dim use symbol `sym`? */

static void write_bind(FILE *f, KProgram *p, KPlan *plan, const DlcSyms *s,
                       const char *P) {
  DlGraph *g = p->g;
  DlArena *a = &g->ctx->arena;
  bool *bound = dl_arena_alloc(a, (size_t)(s->nbase + 1));
  fprintf(f,
          "\n__attribute__((visibility(\"default\"))) int32_t %s_bind(const "
          "dlcc_tensor *in, int64_t *syms) {\n"
          "  if (!in || (!syms && %d)) return DLCC_ERR_ARGUMENT;\n",
          P, s->total);
  for (int i = 0; i < g->ninputs; i++) {
    const DlValue *v = g->values[g->inputs[i]];
    fprintf(f,
            "  if (in[%d].dtype != %d) return DLCC_ERR_DTYPE;\n"
            "  if (in[%d].ndim != %d) return DLCC_ERR_SHAPE;\n",
            i, (int)v->dtype, i, v->rank);
    if (v->rank)
      fprintf(f, "  if (!in[%d].shape) return DLCC_ERR_ARGUMENT;\n", i);
    for (int d = 0; d < v->rank; d++) {
      int64_t c;
      int sym;
      if (dl_dim_is_const(&v->dims[d], &c)) {
        fprintf(f, "  if (in[%d].shape[%d] != %lld) return DLCC_ERR_SHAPE;\n",
                i, d, (long long)c);
      } else if (dim_single_sym(&v->dims[d], &sym) && bound && !bound[sym]) {
        bound[sym] = true;
        fprintf(f,
                "  if (in[%d].shape[%d] < 0) return DLCC_ERR_SHAPE;\n"
                "  syms[%d] = in[%d].shape[%d];\n",
                i, d, sym, i, d);
      }
    }
  }
  for (int k = 0; k < s->nbase; k++) {
    if (bound && bound[k])
      continue;
    if (kplan_sym_used(p, plan, k))
      fprintf(
          f, "  return DLCC_ERR_SHAPE; /* symbol '%s' is not an input dim */\n",
          s->names[k]);
    else
      fprintf(f, "  syms[%d] = 0;\n", k);
  }
  /* Second round: every non-constant input dim must agree. */
  for (int i = 0; i < g->ninputs; i++) {
    const DlValue *v = g->values[g->inputs[i]];
    for (int d = 0; d < v->rank; d++) {
      if (dl_dim_is_const(&v->dims[d], NULL))
        continue;
      fprintf(f, "  if (in[%d].shape[%d] != ", i, d);
      dlc_write_dim(f, &v->dims[d], "syms");
      fputs(") return DLCC_ERR_SHAPE;\n", f);
    }
  }
  for (int k = 0; k < s->nderived; k++) {
    fprintf(f, "  syms[%d] = ", s->nbase + k);
    dlc_write_dim(f, &s->derived[k], "syms");
    fputs(";\n", f);
  }
  fputs("  return DLCC_OK;\n}\n", f);
}

static void write_slots(FILE *f, KPlan *plan, const char *P) {
  fprintf(f,
          "\nstatic uint64_t %s_slots(const int64_t *sym, uint64_t *off) {\n"
          "  uint64_t o = 0;\n  (void)sym;\n  (void)off;\n",
          P);
  if (plan->nslots)
    fputs("  uint64_t s, t;\n  (void)t;\n", f);
  for (int i = 0; i < plan->nslots; i++) {
    const KSlot *sl = &plan->slots[i];
    /* the slot's size: the largest of the sizes placed in it */
    for (int j = 0; j < sl->nsizes; j++) {
      fputs(j ? "  t = (uint64_t)" : "  s = (uint64_t)", f);
      dlc_write_dim(f, &sl->sizes[j], "sym");
      fputs(j ? ";\n  if (t > s) s = t;\n" : ";\n", f);
    }
    fprintf(f, "  off[%d] = o;\n  o = (o + s + 63) & ~(uint64_t)63;\n", i);
  }
  fputs("  return o;\n}\n", f);
  fprintf(f,
          "\n__attribute__((visibility(\"default\"))) uint64_t "
          "%s_workspace_size(const int64_t *syms) {\n"
          "  uint64_t off[%d];\n"
          "  return %s_slots(syms, off);\n}\n",
          P, plan->nslots ? plan->nslots : 1, P);
}

static void write_output_shape(FILE *f, DlGraph *g, const char *P) {
  fprintf(f,
          "\n__attribute__((visibility(\"default\"))) int32_t "
          "%s_output_shape(int32_t i, const int64_t *syms, int64_t *dims) {\n"
          "  (void)syms;\n"
          "  if (!dims) return DLCC_ERR_ARGUMENT;\n"
          "  switch (i) {\n",
          P);
  for (int o = 0; o < g->noutputs; o++) {
    const DlValue *v = g->values[g->outputs[o]];
    fprintf(f, "  case %d:\n", o);
    for (int d = 0; d < v->rank; d++) {
      if (!dl_dim_is_const(&v->dims[d], NULL))
        fputs("    if (!syms) return DLCC_ERR_ARGUMENT;\n", f);
      fprintf(f, "    dims[%d] = ", d);
      dlc_write_dim(f, &v->dims[d], "syms");
      fputs(";\n", f);
    }
    fputs("    return DLCC_OK;\n", f);
  }
  fputs("  default:\n    return DLCC_ERR_ARGUMENT;\n  }\n}\n", f);
}

static void write_run(FILE *f, KProgram *p, KPlan *plan, const DlcSyms *s,
                      const char *P, WeightsMode wm) {
  DlGraph *g = p->g;
  fprintf(f,
          "\n__attribute__((visibility(\"default\"))) int32_t %s_run(const "
          "dlcc_tensor *in, dlcc_tensor *out, void *workspace,\n"
          "    uint64_t workspace_bytes, const void *weights) {\n"
          "  int64_t sym[%d];\n"
          "  uint64_t off[%d];\n"
          "  int32_t st;\n"
          "  uint8_t *ws = (uint8_t *)workspace;\n"
          "  const uint8_t *w;\n"
          "  (void)ws;\n  (void)w;\n  (void)off;\n"
          "  if (!in || !out) return DLCC_ERR_ARGUMENT;\n"
          "  st = %s_bind(in, sym);\n"
          "  if (st) return st;\n",
          P, s->total ? s->total : 1, plan->nslots ? plan->nslots : 1, P);
  for (int i = 0; i < g->ninputs; i++)
    fprintf(f, "  if (!in[%d].data) return DLCC_ERR_ARGUMENT;\n", i);
  for (int o = 0; o < g->noutputs; o++)
    fprintf(f, "  if (!out[%d].data) return DLCC_ERR_ARGUMENT;\n", o);
  fprintf(f,
          "  {\n"
          "    uint64_t need = %s_slots(sym, off);\n"
          "    if (need && (!ws || workspace_bytes < need || "
          "((uintptr_t)ws & 63)))\n"
          "      return DLCC_ERR_WORKSPACE;\n"
          "  }\n",
          P);
  switch (wm) {
  case W_NONE:
    fputs("  w = (const uint8_t *)weights;\n", f);
    break;
  case W_ARRAY:
  case W_EXTERN:
    fprintf(f, "  w = weights ? (const uint8_t *)weights : %s_weights;\n", P);
    break;
  case W_SIDECAR:
    fputs("  if (!weights) return DLCC_ERR_WEIGHTS;\n"
          "  w = (const uint8_t *)weights;\n",
          f);
    break;
  }
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    fprintf(f, "  %s(", k->name);
    for (int b = 0; b < k->nbufs; b++) {
      const KBuf *kb = &k->bufs[b];
      const KStorage *st = &plan->storage[kb->value];
      const char *t = stype(kb->dtype);
      const char *cq = kb->written ? "" : "const ";
      switch (st->kind) {
      case KST_INPUT:
        fprintf(f, "(%s%s *)in[%d].data, ", cq, t, st->index);
        break;
      case KST_OUTPUT:
        fprintf(f, "(%s%s *)out[%d].data, ", cq, t, st->index);
        break;
      case KST_WEIGHT:
        fprintf(f, "(%s%s *)(w + %llu), ", cq, t,
                (unsigned long long)st->offset);
        break;
      case KST_WORK:
        fprintf(f, "(%s%s *)(ws + off[%d]), ", cq, t, st->index);
        break;
      default:
        fputs("NULL, ", f);
      }
    }
    fputs("sym);\n", f);
  }
  fputs("  return DLCC_OK;\n}\n", f);
}

static void write_desc(FILE *f, DlGraph *g, KPlan *plan, const DlcSyms *s,
                       const char *P, WeightsMode wm) {
  if (g->ninputs) {
    fprintf(f, "\nstatic const dlcc_io_desc %s_inputs[] = {\n", P);
    for (int i = 0; i < g->ninputs; i++)
      io_desc(f, s, g->values[g->inputs[i]]);
    fputs("};\n", f);
  }
  if (g->noutputs) {
    fprintf(f, "static const dlcc_io_desc %s_outputs[] = {\n", P);
    for (int i = 0; i < g->noutputs; i++)
      io_desc(f, s, g->values[g->outputs[i]]);
    fputs("};\n", f);
  }
  if (s->total) {
    fprintf(f, "static const char *const %s_sym_names[] = {", P);
    for (int i = 0; i < s->total; i++) {
      if (i)
        fputs(", ", f);
      dlc_write_cstr(f, s->names[i]);
    }
    fputs("};\n", f);
  }
  fprintf(f,
          "static const dlcc_module_desc %s_desc = {\n"
          "  DLCC_ABI_VERSION, \"%s\", %d, %d, %d,\n"
          "  %s%s, %s%s, %s%s,\n"
          "  UINT64_C(%llu),\n"
          "  %s_bind, %s_workspace_size, %s_output_shape, %s_run};\n",
          P, P, g->ninputs, g->noutputs, s->total, g->ninputs ? P : "NULL",
          g->ninputs ? "_inputs" : "", g->noutputs ? P : "NULL",
          g->noutputs ? "_outputs" : "", s->total ? P : "NULL",
          s->total ? "_sym_names" : "",
          (unsigned long long)(wm == W_SIDECAR ? plan->weights_bytes : 0), P, P,
          P, P);
  fprintf(f,
          "\n__attribute__((visibility(\"default\"))) const dlcc_module_desc "
          "*dlcc_module_v1(void) {\n"
          "  return &%s_desc;\n}\n",
          P);
}

static DlStatus write_module(FILE *f, KProgram *p, KPlan *plan, const char *P,
                             WeightsMode wm) {
  DlGraph *g = p->g;
  DlcSyms s;
  DL_TRY(dlc_collect_syms(p, &s));
  fprintf(f,
          "/* Generated by dlcc: module '%s'.  C99, needs libc and libm. */\n"
          "#include <math.h>\n#include <stdint.h>\n#include <stddef.h>\n"
          "#include <string.h>\n"
          "/* Vectorization hints; dlcc compiles with -DDLCC_OMP_SIMD\n"
          " * -fopenmp-simd.  Any other C99 compiler sees nothing. */\n"
          "#ifdef DLCC_OMP_SIMD\n#define DLCC_SIMD _Pragma(\"omp simd\")\n"
          "#else\n#define DLCC_SIMD\n#endif\n",
          P);
  dlc_write_abi(f);
  fputs(prelude, f);
  if (wm == W_ARRAY) {
    fprintf(f,
            "\nstatic const uint8_t %s_weights[%llu] "
            "__attribute__((aligned(64))) = {\n",
            P, (unsigned long long)plan->weights_bytes);
    write_hex_blob(f, plan->weights, plan->weights_bytes);
    fputs("};\n", f);
  } else if (wm == W_EXTERN) {
    fprintf(f,
            "\nextern const uint8_t %s_weights[] "
            "__attribute__((visibility(\"hidden\")));\n",
            P);
  }
  Emit e = {.f = f, .ctx = g->ctx};
  for (int k = 0; k < p->nkernels && e.st == DL_OK; k++)
    kernel(&e, plan, p->kernels[k]);
  if (e.st)
    return e.st;
  write_bind(f, p, plan, &s, P);
  write_slots(f, plan, P);
  write_output_shape(f, g, P);
  write_run(f, p, plan, &s, P, wm);
  write_desc(f, g, plan, &s, P, wm);
  if (ferror(f))
    return dl_error(g->ctx, DL_ERR_IO, "write error");
  return DL_OK;
}

/* ---- files ------------------------------------------------------------- */

/* Creates a temp file next to `path` ending in `suffix`; returns its name. */
static char *temp_next_to(DlCtx *ctx, const char *path, const char *suffix,
                          FILE **fp) {
  char *name = dl_arena_printf(&ctx->arena, "%s.tmpXXXXXX%s", path, suffix);
  int fd = mkstemps(name, (int)strlen(suffix));
  if (fd < 0) {
    dl_error(ctx, DL_ERR_IO, "cannot create a temporary file next to '%s': %s",
             path, strerror(errno));
    return NULL;
  }
  fchmod(fd, 0644); /* mkstemps makes 0600; outputs are ordinary files */
  *fp = fdopen(fd, "wb");
  if (!*fp) {
    close(fd);
    unlink(name);
    dl_error(ctx, DL_ERR_IO, "cannot open '%s': %s", name, strerror(errno));
    return NULL;
  }
  return name;
}

static DlStatus close_file(DlCtx *ctx, FILE *f, const char *name) {
  bool err = ferror(f) != 0;
  if (fclose(f) != 0)
    err = true;
  if (err)
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s'", name);
  return DL_OK;
}

static DlStatus commit(DlCtx *ctx, const char *tmp, const char *path) {
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s': %s", path, strerror(e));
  }
  return DL_OK;
}

/* Writes the sidecar weights file atomically. */
static DlStatus write_sidecar(DlCtx *ctx, KPlan *plan, const char *path) {
  if (!path)
    return dl_error(ctx, DL_ERR_INTERNAL, "sidecar weights without a path");
  FILE *f;
  char *tmp = temp_next_to(ctx, path, "", &f);
  if (!tmp)
    return DL_ERR_IO;
  fwrite(plan->weights, 1, (size_t)plan->weights_bytes, f);
  DlStatus st = close_file(ctx, f, path);
  if (st) {
    unlink(tmp);
    return st;
  }
  return commit(ctx, tmp, path);
}

static DlStatus emit_source(KProgram *p, KPlan *plan, const DlEmitRequest *rq) {
  DlCtx *ctx = p->g->ctx;
  WeightsMode wm = plan->weights_bytes == 0 ? W_NONE
                   : plan->weights_sidecar  ? W_SIDECAR
                                            : W_ARRAY;
  FILE *f;
  char *tmp = temp_next_to(ctx, rq->out_path, ".c", &f);
  if (!tmp)
    return DL_ERR_IO;
  DlStatus st = write_module(f, p, plan, rq->prefix, wm);
  DlStatus cst = close_file(ctx, f, rq->out_path);
  if (st == DL_OK)
    st = cst;
  if (st == DL_OK && wm == W_SIDECAR)
    st = write_sidecar(ctx, plan, rq->sidecar_path);
  if (st != DL_OK) {
    unlink(tmp);
    return st;
  }
  return commit(ctx, tmp, rq->out_path);
}

/* Runs argv; returns the exit status or -1. */
static int run_cmd(char *const *argv) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static DlStatus emit_shared(KProgram *p, KPlan *plan, const DlEmitRequest *rq) {
  DlCtx *ctx = p->g->ctx;
  DlArena *a = &ctx->arena;
  WeightsMode wm = plan->weights_bytes == 0 ? W_NONE
                   : plan->weights_sidecar  ? W_SIDECAR
                                            : W_EXTERN;
  char *cpath = NULL, *bpath = NULL, *spath = NULL, *opath = NULL;
  DlStatus st = DL_OK;
  FILE *f;

  cpath = temp_next_to(ctx, rq->out_path, ".c", &f);
  if (!cpath)
    return DL_ERR_IO;
  st = write_module(f, p, plan, rq->prefix, wm);
  DlStatus cst = close_file(ctx, f, cpath);
  if (st == DL_OK)
    st = cst;

  if (st == DL_OK && wm == W_EXTERN) {
    bpath = temp_next_to(ctx, rq->out_path, ".bin", &f);
    if (!bpath) {
      st = DL_ERR_IO;
    } else {
      fwrite(plan->weights, 1, (size_t)plan->weights_bytes, f);
      st = close_file(ctx, f, bpath);
    }
    if (st == DL_OK) {
      spath = temp_next_to(ctx, rq->out_path, ".S", &f);
      if (!spath) {
        st = DL_ERR_IO;
      } else {
        fprintf(f,
                "  .section .rodata\n  .balign 64\n  .globl %s_weights\n"
                "  .hidden %s_weights\n  .type %s_weights, @object\n"
                "%s_weights:\n  .incbin ",
                rq->prefix, rq->prefix, rq->prefix, rq->prefix);
        dlc_write_cstr(f, bpath);
        fprintf(f,
                "\n  .size %s_weights, %llu\n"
                "  .section .note.GNU-stack,\"\",@progbits\n",
                rq->prefix, (unsigned long long)plan->weights_bytes);
        st = close_file(ctx, f, spath);
      }
    }
  }
  if (st == DL_OK) {
    opath = temp_next_to(ctx, rq->out_path, ".so", &f);
    if (!opath)
      st = DL_ERR_IO;
    else
      fclose(f);
  }
  if (st == DL_OK) {
    const char *cc = getenv("CC");
    if (!cc || !*cc)
      cc = "cc";
    char *ccbuf = dl_arena_strdup(a, cc);
    char *argv[64];
    int n = 0;
    for (char *tok = strtok(ccbuf, " \t"); tok && n < 40;
         tok = strtok(NULL, " \t"))
      argv[n++] = tok;
    int ol = rq->opt_level < 0 ? 0 : rq->opt_level > 3 ? 3 : rq->opt_level;
    argv[n++] = dl_arena_printf(a, "-O%d", ol);
    /* Loops flagged KF_VECTOR carry `#pragma omp simd`; register-blocked
     * products rely on the straight-line (SLP) vectorizer of -O2. */
    argv[n++] = "-fopenmp-simd";
    argv[n++] = "-DDLCC_OMP_SIMD";
    bool host = !rq->target || !*rq->target || !strcmp(rq->target, "host");
    const char *nat = getenv("DLCC_C_NATIVE");
    if (host && rq->cpu && *rq->cpu)
      argv[n++] = dl_arena_printf(a, "-march=%s", rq->cpu);
    else if (host && !(nat && !strcmp(nat, "0")))
      argv[n++] = "-march=native";
    argv[n++] = "-shared";
    argv[n++] = "-fPIC";
    argv[n++] = "-fvisibility=hidden";
    /* fused multiply-adds: results differ from the interpreter's in the
     * last bits, well inside the tolerance the models are checked with */
    argv[n++] = ol >= 2 ? "-ffp-contract=fast" : "-ffp-contract=off";
    argv[n++] = "-o";
    argv[n++] = opath;
    argv[n++] = cpath;
    if (spath)
      argv[n++] = spath;
    argv[n++] = "-lm";
    argv[n] = NULL;
    fflush(NULL);
    int rc = run_cmd(argv);
    if (rc != 0)
      st = dl_error(ctx, DL_ERR_INTERNAL,
                    "C compiler '%s' failed (status %d) building '%s'", cc, rc,
                    rq->out_path);
  }
  if (st == DL_OK && wm == W_SIDECAR)
    st = write_sidecar(ctx, plan, rq->sidecar_path);
  if (st == DL_OK)
    st = commit(ctx, opath, rq->out_path);
  else if (opath)
    unlink(opath);
  if (cpath)
    unlink(cpath);
  if (bpath)
    unlink(bpath);
  if (spath)
    unlink(spath);
  return st;
}

static const DlBackend c_backend = {"c", emit_source, emit_shared};

const DlBackend *dl_backend_c(void) {
  return &c_backend;
}
