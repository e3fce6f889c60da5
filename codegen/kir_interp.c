/*
 * kir_interp.c - executes kernel IR on host memory.
 *
 * The interpreter is the reference semantics of KIR: constant folding runs
 * it, and backends are checked against it.  Values are a union of double
 * and int64; which member is live follows from the expression's dtype
 * (float dtypes use .f, integers and bool use .i).  To match what C
 * computes:
 *  - F32 results are rounded to float after every operation and use the
 *    float variants of the math functions (expf, ...);
 *  - F16/BF16 are computed like F32 and rounded to their format on store;
 *  - integer results wrap like the C dtype (unsigned 8..32-bit values are
 *    kept zero-extended, U64 as its bit pattern);
 *  - integer division or remainder by zero is an error, not a crash;
 *  - every load and store is checked against its buffer's element count.
 * Errors name the kernel's node.
 */
#include "codegen/kir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef union KVal {
  double f;
  int64_t i;
} KVal;

typedef struct IBuf {
  char *p;
  int64_t n;
  DlDType t;
} IBuf;

typedef struct St {
  DlCtx *ctx;
  const Kernel *k;
  IBuf *bufs;
  KVal *regs; /* registers; the kernel's locals are regs[0..nvars) */
  DlStatus err;
} St;

static bool is_float_t(DlDType t) {
  return t == DL_F32 || t == DL_F64 || t == DL_F16 || t == DL_BF16;
}

static void fail(St *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(St *st, const char *fmt, ...) {
  if (st->err != DL_OK)
    return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  st->err = DL_ERR_INVALID;
  const Kernel *k = st->k;
  const DlGraph *g = k->g;
  const DlNode *n = NULL;
  if (g && k->node >= 0) {
    if (k->node < g->nnodes && g->nodes[k->node]->id == k->node)
      n = g->nodes[k->node];
    for (int i = 0; !n && i < g->nnodes; i++)
      if (g->nodes[i]->id == k->node)
        n = g->nodes[i];
  }
  if (n)
    dl_error_node(st->ctx, n, DL_ERR_INVALID, "%s", msg);
  else
    dl_error(st->ctx, DL_ERR_INVALID, "kernel %s: %s", k->name ? k->name : "?",
             msg);
}

static const char *buf_name(St *st, int b) {
  const Kernel *k = st->k;
  if (k->g && b >= 0 && b < k->nbufs && k->bufs[b].value >= 0 &&
      k->bufs[b].value < k->g->nvalues) {
    const char *nm = k->g->values[k->bufs[b].value]->name;
    return nm ? nm : "?";
  }
  return "?";
}

/* ---- scalar conversions ----------------------------------------------- */

static int64_t wrap_int(DlDType t, int64_t v) {
  switch (t) {
  case DL_BOOL:
    return v != 0;
  case DL_I8:
    return (int8_t)v;
  case DL_U8:
    return (uint8_t)v;
  case DL_I16:
    return (int16_t)v;
  case DL_U16:
    return (uint16_t)v;
  case DL_I32:
    return (int32_t)v;
  case DL_U32:
    return (uint32_t)v;
  default:
    return v;
  }
}

static double round_float(DlDType t, double v) {
  return t == DL_F64 ? v : (double)(float)v;
}

/* Float to integer dtype t: truncation, saturating at the int64 range
 * (C leaves out-of-range conversions undefined), NaN -> 0. */
static int64_t f2i(DlDType t, double v) {
  if (t == DL_BOOL)
    return v != 0;
  if (v != v)
    return 0;
  if (t == DL_U64) {
    if (v <= 0)
      return wrap_int(t, (int64_t)(v > -9.2e18 ? v : 0));
    if (v >= 18446744073709551615.0)
      return -1;
    return (int64_t)(uint64_t)v;
  }
  if (v >= 9223372036854775807.0)
    return wrap_int(t, INT64_MAX);
  if (v <= -9223372036854775808.0)
    return wrap_int(t, INT64_MIN);
  return wrap_int(t, (int64_t)v);
}

static double i2f(DlDType from, int64_t v) {
  return from == DL_U64 ? (double)(uint64_t)v : (double)v;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = ldexpf((float)man, -24);
    return sign ? -f : f;
  }
  uint32_t bits;
  if (exp == 31)
    bits = sign | 0x7f800000u | (man << 13);
  else
    bits = sign | ((exp + 112) << 23) | (man << 13);
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) /* inf or nan */
    return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
  if (ax >= 0x477ff000u)
    return (uint16_t)(sign | 0x7c00); /* overflow */
  if (ax < 0x38800000u) { /* subnormal or zero: scale to units of 2^-24 */
    float a;
    memcpy(&a, &ax, 4);
    return (uint16_t)(sign | (uint16_t)nearbyintf(a * 16777216.0f));
  }
  uint32_t e = (ax >> 23) - 112, m = ax & 0x7fffff;
  uint32_t h = (e << 10) | (m >> 13);
  uint32_t rest = m & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    h++;
  return (uint16_t)(sign | h);
}

static float bf16_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

static KVal load(const IBuf *b, int64_t i) {
  KVal v;
  const char *p = b->p;
  switch (b->t) {
  case DL_F32:
    v.f = ((const float *)p)[i];
    break;
  case DL_F64:
    v.f = ((const double *)p)[i];
    break;
  case DL_F16:
    v.f = half_to_float(((const uint16_t *)p)[i]);
    break;
  case DL_BF16:
    v.f = bf16_to_float(((const uint16_t *)p)[i]);
    break;
  case DL_I8:
    v.i = ((const int8_t *)p)[i];
    break;
  case DL_U8:
    v.i = ((const uint8_t *)p)[i];
    break;
  case DL_I16:
    v.i = ((const int16_t *)p)[i];
    break;
  case DL_U16:
    v.i = ((const uint16_t *)p)[i];
    break;
  case DL_I32:
    v.i = ((const int32_t *)p)[i];
    break;
  case DL_U32:
    v.i = ((const uint32_t *)p)[i];
    break;
  case DL_I64:
  case DL_U64:
    v.i = ((const int64_t *)p)[i];
    break;
  case DL_BOOL:
    v.i = ((const uint8_t *)p)[i] != 0;
    break;
  default:
    v.i = 0;
    break;
  }
  return v;
}

static void store(const IBuf *b, int64_t i, KVal v) {
  char *p = b->p;
  switch (b->t) {
  case DL_F32:
    ((float *)p)[i] = (float)v.f;
    break;
  case DL_F64:
    ((double *)p)[i] = v.f;
    break;
  case DL_F16:
    ((uint16_t *)p)[i] = float_to_half((float)v.f);
    break;
  case DL_BF16:
    ((uint16_t *)p)[i] = float_to_bf16((float)v.f);
    break;
  case DL_I8:
    ((int8_t *)p)[i] = (int8_t)v.i;
    break;
  case DL_U8:
    ((uint8_t *)p)[i] = (uint8_t)v.i;
    break;
  case DL_I16:
    ((int16_t *)p)[i] = (int16_t)v.i;
    break;
  case DL_U16:
    ((uint16_t *)p)[i] = (uint16_t)v.i;
    break;
  case DL_I32:
    ((int32_t *)p)[i] = (int32_t)v.i;
    break;
  case DL_U32:
    ((uint32_t *)p)[i] = (uint32_t)v.i;
    break;
  case DL_I64:
  case DL_U64:
    ((int64_t *)p)[i] = v.i;
    break;
  case DL_BOOL:
    ((uint8_t *)p)[i] = v.i != 0;
    break;
  default:
    break;
  }
}

/* ---- expressions ------------------------------------------------------ */

static double un_float(KUnOp op, DlDType t, double x) {
  if (t == DL_F64) {
    switch (op) {
    case KU_NEG:
      return -x;
    case KU_ABS:
      return fabs(x);
    case KU_EXP:
      return exp(x);
    case KU_LOG:
      return log(x);
    case KU_SQRT:
      return sqrt(x);
    case KU_TANH:
      return tanh(x);
    case KU_ERF:
      return erf(x);
    case KU_FLOOR:
      return floor(x);
    case KU_CEIL:
      return ceil(x);
    case KU_ROUND:
      return nearbyint(x);
    case KU_SIN:
      return sin(x);
    case KU_COS:
      return cos(x);
    default:
      return x;
    }
  }
  float y = (float)x;
  switch (op) {
  case KU_NEG:
    return -y;
  case KU_ABS:
    return fabsf(y);
  case KU_EXP:
    return expf(y);
  case KU_LOG:
    return logf(y);
  case KU_SQRT:
    return sqrtf(y);
  case KU_TANH:
    return tanhf(y);
  case KU_ERF:
    return erff(y);
  case KU_FLOOR:
    return floorf(y);
  case KU_CEIL:
    return ceilf(y);
  case KU_ROUND:
    return nearbyintf(y);
  case KU_SIN:
    return sinf(y);
  case KU_COS:
    return cosf(y);
  default:
    return y;
  }
}

static double bin_float(KBinOp op, DlDType t, double x, double y) {
  bool f64 = t == DL_F64;
  switch (op) {
  case KB_ADD:
    return round_float(t, x + y);
  case KB_SUB:
    return round_float(t, x - y);
  case KB_MUL:
    return round_float(t, x * y);
  case KB_DIV:
    return round_float(t, x / y);
  case KB_MOD:
    return f64 ? fmod(x, y) : fmodf((float)x, (float)y);
  case KB_MIN:
    if (x != x || y != y)
      return x + y;
    return x < y ? x : y;
  case KB_MAX:
    if (x != x || y != y)
      return x + y;
    return x > y ? x : y;
  case KB_POW:
    return f64 ? pow(x, y) : powf((float)x, (float)y);
  default:
    return 0;
  }
}

static int64_t ipow(int64_t x, int64_t y) {
  if (y < 0)
    return x == 1 ? 1 : x == -1 ? (y & 1 ? -1 : 1) : 0;
  uint64_t r = 1, b = (uint64_t)x;
  while (y) {
    if (y & 1)
      r *= b;
    b *= b;
    y >>= 1;
  }
  return (int64_t)r;
}

static int64_t bin_int(St *st, KBinOp op, DlDType t, int64_t x, int64_t y) {
  uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
  bool u64 = t == DL_U64;
  switch (op) {
  case KB_ADD:
    return wrap_int(t, (int64_t)(ux + uy));
  case KB_SUB:
    return wrap_int(t, (int64_t)(ux - uy));
  case KB_MUL:
    return wrap_int(t, (int64_t)(ux * uy));
  case KB_DIV:
  case KB_MOD:
    if (y == 0) {
      fail(st, "integer %s by zero in kernel %s",
           op == KB_DIV ? "division" : "remainder", st->k->name);
      return 0;
    }
    if (u64)
      return (int64_t)(op == KB_DIV ? ux / uy : ux % uy);
    if (y == -1)
      return op == KB_DIV ? wrap_int(t, (int64_t)(0 - ux)) : 0;
    return wrap_int(t, op == KB_DIV ? x / y : x % y);
  case KB_MIN:
    return u64 ? (int64_t)(ux < uy ? ux : uy) : (x < y ? x : y);
  case KB_MAX:
    return u64 ? (int64_t)(ux > uy ? ux : uy) : (x > y ? x : y);
  case KB_POW:
    return wrap_int(t, ipow(x, y));
  case KB_LT:
    return u64 ? ux < uy : x < y;
  case KB_LE:
    return u64 ? ux <= uy : x <= y;
  case KB_GT:
    return u64 ? ux > uy : x > y;
  case KB_GE:
    return u64 ? ux >= uy : x >= y;
  case KB_EQ:
    return x == y;
  case KB_NE:
    return x != y;
  case KB_AND:
    return (x != 0) && (y != 0);
  case KB_OR:
    return (x != 0) || (y != 0);
  case KB_XOR:
    return (x != 0) != (y != 0);
  default:
    return 0;
  }
}

static int64_t cmp_float(KBinOp op, double x, double y) {
  switch (op) {
  case KB_LT:
    return x < y;
  case KB_LE:
    return x <= y;
  case KB_GT:
    return x > y;
  case KB_GE:
    return x >= y;
  case KB_EQ:
    return x == y;
  case KB_NE:
    return x != y;
  case KB_AND:
    return (x != 0) && (y != 0);
  case KB_OR:
    return (x != 0) || (y != 0);
  case KB_XOR:
    return (x != 0) != (y != 0);
  default:
    return 0;
  }
}

/* ---- compilation to register code ----------------------------------------
 *
 * Before running, every expression tree is compiled into straight-line
 * register code (three-address instructions; select becomes jumps so only
 * the chosen operand is evaluated).  Literals and symbols become
 * preloaded registers.  Pure operations that cannot fail and depend only on
 * outer loop variables are hoisted into the preheader of the innermost loop
 * that changes one of their inputs, so index arithmetic such as i0*C is
 * computed once per outer iteration.  Loads, integer division and anything
 * reading a local stay where they are.
 */

enum {
  I_LOAD,
  I_LOAD_F32,
  I_UN,
  I_BIN,
  I_ADD_I64,
  I_SUB_I64,
  I_MUL_I64,
  I_ADD_F32,
  I_SUB_F32,
  I_MUL_F32,
  I_CAST,
  I_MOV,
  I_JZ, /* if (!regs[a].i) goto d */
  I_JMP /* goto d */
};

typedef struct Ins {
  uint8_t op, kop;
  uint8_t t, rt; /* operand and result dtype */
  int32_t d, a, b;
} Ins;

typedef struct Code {
  Ins *ins;
  int n, cap;
} Code;

typedef struct CStmt CStmt;
struct CStmt {
  KStmtKind kind;
  int var, buf;
  Code pre;    /* KS_FOR: hoisted code, run before the loop starts */
  Code c1, c2; /* extent / cond / index / value; KS_STORE: c2 = value */
  int r1, r2;  /* registers holding the results of c1 / c2 */
  CStmt *body, *els;
  int n;
  CStmt **items;
};

#define LOOP_MAX 64

typedef struct Comp {
  DlArena arena; /* private: released after the run */
  const Kernel *k;
  const int64_t *syms;
  int nregs;
  int ninit, capinit;
  int *init_reg;
  KVal *init_val;
  int *vdepth;            /* loop depth of each loop variable, 0 = a local */
  CStmt *loops[LOOP_MAX]; /* loops[1..depth]: the open loops */
  bool oom;
  bool nosym;
} Comp;

static void *c_alloc(Comp *c, size_t bytes) {
  void *p = dl_arena_alloc(&c->arena, bytes);
  if (!p)
    c->oom = true;
  return p;
}

static int emit(Comp *c, Code *code, Ins in) {
  if (code->n == code->cap) {
    int ncap = code->cap ? code->cap * 2 : 8;
    Ins *p = c_alloc(c, sizeof(Ins) * (size_t)ncap);
    if (!p)
      return 0;
    if (code->n)
      memcpy(p, code->ins, sizeof(Ins) * (size_t)code->n);
    code->ins = p;
    code->cap = ncap;
  }
  code->ins[code->n] = in;
  return code->n++;
}

static int const_reg(Comp *c, KVal v) {
  if (c->ninit == c->capinit) {
    int ncap = c->capinit ? c->capinit * 2 : 16;
    int *r = c_alloc(c, sizeof(int) * (size_t)ncap);
    KVal *vals = c_alloc(c, sizeof(KVal) * (size_t)ncap);
    if (!r || !vals)
      return 0;
    if (c->ninit) {
      memcpy(r, c->init_reg, sizeof(int) * (size_t)c->ninit);
      memcpy(vals, c->init_val, sizeof(KVal) * (size_t)c->ninit);
    }
    c->init_reg = r;
    c->init_val = vals;
    c->capinit = ncap;
  }
  c->init_reg[c->ninit] = c->nregs;
  c->init_val[c->ninit++] = v;
  return c->nregs++;
}

/* Compiles e at loop depth `depth` into `cur` (or a loop preheader);
 * returns its register and sets *lvl to the depth of the innermost loop
 * variable it depends on (depth itself when it cannot move). */
static int comp_expr(Comp *c, const KExpr *e, int depth, Code *cur, int *lvl) {
  KVal v;
  int la = 0, lb = 0;
  Ins in = {0, 0, 0, 0, 0, 0, 0};
  switch (e->kind) {
  case KE_INT:
    *lvl = 0;
    v.i = e->i;
    return const_reg(c, v);
  case KE_FLOAT:
    *lvl = 0;
    v.f = e->f;
    return const_reg(c, v);
  case KE_SYM:
    *lvl = 0;
    if (!c->syms)
      c->nosym = true;
    v.i = c->syms ? c->syms[e->i] : 0;
    return const_reg(c, v);
  case KE_VAR: {
    int d = c->vdepth[e->i];
    *lvl = d > 0 && d <= depth ? d : depth;
    return (int)e->i;
  }
  case KE_LOAD:
    in.op = c->k->bufs[e->i].dtype == DL_F32 ? I_LOAD_F32 : I_LOAD;
    in.a = comp_expr(c, e->a, depth, cur, &la);
    in.b = (int32_t)e->i;
    in.d = c->nregs++;
    emit(c, cur, in);
    *lvl = depth;
    return in.d;
  case KE_SELECT: {
    int lc;
    int rc = comp_expr(c, e->a, depth, cur, &lc);
    int d = c->nregs++;
    Ins jz = {I_JZ, 0, 0, 0, 0, rc, 0};
    int at_jz = emit(c, cur, jz);
    Ins mv = {I_MOV, 0, 0, 0, d, 0, 0};
    mv.a = comp_expr(c, e->b, depth, cur, &la);
    emit(c, cur, mv);
    Ins jmp = {I_JMP, 0, 0, 0, 0, 0, 0};
    int at_jmp = emit(c, cur, jmp);
    if (cur->ins)
      cur->ins[at_jz].d = cur->n;
    mv.a = comp_expr(c, e->c, depth, cur, &lb);
    emit(c, cur, mv);
    if (cur->ins)
      cur->ins[at_jmp].d = cur->n;
    *lvl = depth;
    return d;
  }
  case KE_UNARY:
  case KE_BINARY:
  case KE_CAST:
    break;
  }
  in.a = comp_expr(c, e->a, depth, cur, &la);
  int l = la;
  in.t = (uint8_t)e->a->dtype;
  in.rt = (uint8_t)e->dtype;
  in.kop = (uint8_t)e->op;
  if (e->kind == KE_UNARY) {
    in.op = I_UN;
  } else if (e->kind == KE_CAST) {
    in.op = I_CAST;
  } else {
    in.b = comp_expr(c, e->b, depth, cur, &lb);
    if (lb > l)
      l = lb;
    in.op = I_BIN;
    if (e->dtype == DL_I64 && e->a->dtype == DL_I64) {
      if (e->op == KB_ADD)
        in.op = I_ADD_I64;
      if (e->op == KB_SUB)
        in.op = I_SUB_I64;
      if (e->op == KB_MUL)
        in.op = I_MUL_I64;
    } else if (e->dtype == DL_F32 && e->a->dtype == DL_F32) {
      if (e->op == KB_ADD)
        in.op = I_ADD_F32;
      if (e->op == KB_SUB)
        in.op = I_SUB_F32;
      if (e->op == KB_MUL)
        in.op = I_MUL_F32;
    }
    /* Integer division can fail: it must stay where it was written. */
    if ((e->op == KB_DIV || e->op == KB_MOD) && !is_float_t(e->a->dtype))
      l = depth;
  }
  in.d = c->nregs++;
  Code *target = cur;
  if (l < depth && l + 1 < LOOP_MAX && c->loops[l + 1])
    target = &c->loops[l + 1]->pre;
  else
    l = depth;
  emit(c, target, in);
  *lvl = l;
  return in.d;
}

static CStmt *comp_stmt(Comp *c, const KStmt *s, int depth) {
  CStmt *cs = c_alloc(c, sizeof *cs);
  if (!cs)
    return NULL;
  cs->kind = s->kind;
  cs->var = s->var;
  cs->buf = s->buf;
  int l;
  switch (s->kind) {
  case KS_BLOCK:
    cs->n = s->n;
    cs->items = c_alloc(c, sizeof(CStmt *) * (size_t)(s->n ? s->n : 1));
    if (!cs->items)
      return NULL;
    for (int i = 0; i < s->n; i++) {
      cs->items[i] = comp_stmt(c, s->items[i], depth);
      if (!cs->items[i])
        return NULL;
    }
    return cs;
  case KS_FOR:
    cs->r1 = comp_expr(c, s->extent, depth, &cs->c1, &l);
    if (depth + 1 >= LOOP_MAX) {
      c->oom = true; /* reported as too deep by the caller */
      return NULL;
    }
    c->vdepth[s->var] = depth + 1;
    c->loops[depth + 1] = cs;
    cs->body = comp_stmt(c, s->body, depth + 1);
    c->loops[depth + 1] = NULL;
    return cs->body ? cs : NULL;
  case KS_IF:
    cs->r1 = comp_expr(c, s->cond, depth, &cs->c1, &l);
    cs->body = comp_stmt(c, s->body, depth);
    if (!cs->body)
      return NULL;
    if (s->els) {
      cs->els = comp_stmt(c, s->els, depth);
      if (!cs->els)
        return NULL;
    }
    return cs;
  case KS_DECL:
  case KS_ASSIGN:
    cs->r1 = comp_expr(c, s->value, depth, &cs->c1, &l);
    return cs;
  case KS_STORE:
    cs->r1 = comp_expr(c, s->index, depth, &cs->c1, &l);
    cs->r2 = comp_expr(c, s->value, depth, &cs->c2, &l);
    return cs;
  }
  return NULL;
}

/* ---- execution -------------------------------------------------------- */

static void run(St *st, const Code *code) {
  KVal *r = st->regs;
  const Ins *ins = code->ins;
  for (int pc = 0; pc < code->n; pc++) {
    const Ins *in = &ins[pc];
    switch (in->op) {
    case I_LOAD:
    case I_LOAD_F32: {
      int64_t i = r[in->a].i;
      const IBuf *b = &st->bufs[in->b];
      if (i < 0 || i >= b->n) {
        fail(st, "kernel %s: load from '%s' at index %lld, outside [0, %lld)",
             st->k->name, buf_name(st, in->b), (long long)i, (long long)b->n);
        return;
      }
      if (in->op == I_LOAD_F32)
        r[in->d].f = ((const float *)b->p)[i];
      else
        r[in->d] = load(b, i);
      break;
    }
    case I_ADD_I64:
      r[in->d].i = (int64_t)((uint64_t)r[in->a].i + (uint64_t)r[in->b].i);
      break;
    case I_SUB_I64:
      r[in->d].i = (int64_t)((uint64_t)r[in->a].i - (uint64_t)r[in->b].i);
      break;
    case I_MUL_I64:
      r[in->d].i = (int64_t)((uint64_t)r[in->a].i * (uint64_t)r[in->b].i);
      break;
    case I_ADD_F32:
      r[in->d].f = (float)(r[in->a].f + r[in->b].f);
      break;
    case I_SUB_F32:
      r[in->d].f = (float)(r[in->a].f - r[in->b].f);
      break;
    case I_MUL_F32:
      r[in->d].f = (float)(r[in->a].f * r[in->b].f);
      break;
    case I_UN: {
      KVal x = r[in->a], y;
      DlDType t = (DlDType)in->t;
      if (is_float_t(t)) {
        y.f = un_float((KUnOp)in->kop, t, x.f);
      } else {
        switch (in->kop) {
        case KU_NOT:
          y.i = x.i == 0;
          break;
        case KU_NEG:
          y.i = wrap_int(t, (int64_t)(0 - (uint64_t)x.i));
          break;
        case KU_ABS:
          y.i = (t != DL_U64 && x.i < 0)
                    ? wrap_int(t, (int64_t)(0 - (uint64_t)x.i))
                    : x.i;
          break;
        default:
          y.i = x.i;
          break;
        }
      }
      r[in->d] = y;
      break;
    }
    case I_BIN: {
      KVal x = r[in->a], y = r[in->b], z;
      DlDType t = (DlDType)in->t;
      if (is_float_t(t)) {
        if (in->rt == DL_BOOL)
          z.i = cmp_float((KBinOp)in->kop, x.f, y.f);
        else
          z.f = bin_float((KBinOp)in->kop, t, x.f, y.f);
      } else {
        z.i = bin_int(st, (KBinOp)in->kop, t, x.i, y.i);
        if (st->err != DL_OK)
          return;
      }
      r[in->d] = z;
      break;
    }
    case I_CAST: {
      KVal x = r[in->a], y;
      DlDType from = (DlDType)in->t, to = (DlDType)in->rt;
      bool ff = is_float_t(from), tf = is_float_t(to);
      if (ff && tf)
        y.f = round_float(to, x.f);
      else if (ff)
        y.i = f2i(to, x.f);
      else if (tf)
        y.f = round_float(to, i2f(from, x.i));
      else
        y.i = wrap_int(to, x.i);
      r[in->d] = y;
      break;
    }
    case I_MOV:
      r[in->d] = r[in->a];
      break;
    case I_JZ:
      if (!r[in->a].i)
        pc = in->d - 1;
      break;
    case I_JMP:
      pc = in->d - 1;
      break;
    }
  }
}

/* bufs[index] = value for a compiled KS_STORE. */
static inline void exec_store(St *st, const CStmt *s) {
  KVal *r = st->regs;
  if (s->c1.n)
    run(st, &s->c1);
  if (s->c2.n)
    run(st, &s->c2);
  if (st->err != DL_OK)
    return;
  int64_t i = r[s->r1].i;
  const IBuf *b = &st->bufs[s->buf];
  if (i < 0 || i >= b->n) {
    fail(st, "kernel %s: store to '%s' at index %lld, outside [0, %lld)",
         st->k->name, buf_name(st, s->buf), (long long)i, (long long)b->n);
    return;
  }
  if (b->t == DL_F32)
    ((float *)b->p)[i] = (float)r[s->r2].f;
  else
    store(b, i, r[s->r2]);
}

static void exec(St *st, const CStmt *s) {
  KVal *r = st->regs;
  switch (s->kind) {
  case KS_BLOCK:
    for (int j = 0; j < s->n && st->err == DL_OK; j++)
      exec(st, s->items[j]);
    return;
  case KS_FOR: {
    run(st, &s->c1);
    int64_t n = r[s->r1].i;
    if (n <= 0 || st->err != DL_OK)
      return;
    run(st, &s->pre);
    KVal *v = &r[s->var];
    const CStmt *body = s->body;
    if (body->kind == KS_BLOCK && body->n == 1 &&
        body->items[0]->kind == KS_STORE) {
      /* The innermost loop of most kernels: no recursion per element. */
      const CStmt *only = body->items[0];
      for (int64_t j = 0; j < n && st->err == DL_OK; j++) {
        v->i = j;
        exec_store(st, only);
      }
      return;
    }
    for (int64_t j = 0; j < n && st->err == DL_OK; j++) {
      v->i = j;
      exec(st, body);
    }
    return;
  }
  case KS_IF:
    run(st, &s->c1);
    if (st->err != DL_OK)
      return;
    if (r[s->r1].i)
      exec(st, s->body);
    else if (s->els)
      exec(st, s->els);
    return;
  case KS_DECL:
  case KS_ASSIGN:
    run(st, &s->c1);
    r[s->var] = r[s->r1];
    return;
  case KS_STORE:
    exec_store(st, s);
    return;
  }
}

DlStatus kir_interpret_n(DlCtx *ctx, const Kernel *k, void *const *bufs,
                         const int64_t *buf_numel, const int64_t *syms) {
  if (!k || !k->body || (k->nbufs > 0 && (!bufs || !buf_numel)))
    return dl_error(ctx, DL_ERR_USAGE, "kir_interpret: missing arguments");
  Comp c;
  memset(&c, 0, sizeof c);
  dl_arena_init(&c.arena);
  c.k = k;
  c.syms = syms;
  c.nregs = k->nvars;
  c.vdepth = c_alloc(&c, sizeof(int) * (size_t)(k->nvars + 1));
  CStmt *prog = c.vdepth ? comp_stmt(&c, k->body, 0) : NULL;
  DlStatus s = DL_OK;
  if (!prog || c.oom)
    s = dl_error(ctx, c.oom ? DL_ERR_NOMEM : DL_ERR_INTERNAL,
                 "kir_interpret: kernel %s: cannot prepare (out of memory or "
                 "loops nested too deeply)",
                 k->name ? k->name : "?");
  else if (c.nosym)
    s = dl_error(ctx, DL_ERR_USAGE,
                 "kir_interpret: kernel %s uses symbols but no symbol values "
                 "were given",
                 k->name ? k->name : "?");
  St st = {ctx, k, NULL, NULL, DL_OK};
  if (s == DL_OK) {
    st.bufs = c_alloc(&c, sizeof(IBuf) * (size_t)(k->nbufs + 1));
    st.regs = c_alloc(&c, sizeof(KVal) * (size_t)(c.nregs + 1));
    if (!st.bufs || !st.regs)
      s = dl_error(ctx, DL_ERR_NOMEM, "kir_interpret: out of memory");
  }
  if (s == DL_OK) {
    for (int b = 0; b < k->nbufs; b++) {
      st.bufs[b].p = bufs[b];
      st.bufs[b].n = bufs[b] ? buf_numel[b] : 0;
      st.bufs[b].t = k->bufs[b].dtype;
    }
    for (int i = 0; i < c.ninit; i++)
      st.regs[c.init_reg[i]] = c.init_val[i];
    exec(&st, prog);
    s = st.err;
  }
  dl_arena_release(&c.arena);
  return s;
}

DlStatus kir_interpret(DlCtx *ctx, const Kernel *k, void *const *bufs,
                       const int64_t *syms) {
  if (!k || !k->g)
    return dl_error(ctx, DL_ERR_USAGE, "kir_interpret: kernel without graph");
  int64_t small[16];
  int64_t *numel =
      k->nbufs <= 16 ? small : malloc(sizeof(int64_t) * (size_t)k->nbufs);
  if (!numel)
    return dl_error(ctx, DL_ERR_NOMEM, "kir_interpret: out of memory");
  DlStatus s = DL_OK;
  for (int b = 0; b < k->nbufs && s == DL_OK; b++) {
    const DlValue *v = k->bufs[b].value >= 0 && k->bufs[b].value < k->g->nvalues
                           ? k->g->values[k->bufs[b].value]
                           : NULL;
    DlDim d;
    if (!v || v->rank < 0 || !dl_value_numel(v, &d))
      s = dl_error(ctx, DL_ERR_INTERNAL,
                   "kir_interpret: kernel %s: buffer %d has no known size",
                   k->name ? k->name : "?", b);
    else
      numel[b] = syms || dl_dim_is_const(&d, NULL) ? dl_dim_eval(&d, syms) : -1;
    if (s == DL_OK && numel[b] < 0)
      s = dl_error(ctx, DL_ERR_USAGE,
                   "kir_interpret: kernel %s: buffer %d has a symbolic size "
                   "and no symbol values were given",
                   k->name ? k->name : "?", b);
  }
  if (s == DL_OK)
    s = kir_interpret_n(ctx, k, bufs, numel, syms);
  if (numel != small)
    free(numel);
  return s;
}
