/*
 * kir.c - the kernel IR builder.
 *
 * A KBuilder collects the buffers, locals and statements of one kernel.
 * Statements go into the innermost open block; kb_for/kb_if push a block,
 * kb_end pops it.  Everything lives in the context arena.
 *
 * Typing rules (checked here, relied on by the interpreter and backends):
 *  - comparisons (KB_LT..KB_NE) and logical ops (KB_AND/OR/XOR, KU_NOT)
 *    produce DL_BOOL;
 *  - other binary ops keep the operand dtype; both operands must have the
 *    same dtype.  As a convenience a literal (KE_INT / KE_FLOAT) operand is
 *    converted to the other operand's dtype; any other mismatch is a dlcc
 *    bug, recorded as an internal error (kb_finish then returns NULL);
 *  - transcendental unary ops (exp, log, sqrt, tanh, erf, sin, cos) need a
 *    float operand; floor/ceil/round of an integer is the integer;
 *  - kb_decl, kb_assign and kb_store convert the value to the dtype of the
 *    local or buffer (like C assignment), inserting a KE_CAST if needed;
 *  - load/store indices must be integers.
 * I64 arithmetic folds constants and identities (0+x, x*1, x*0, c op c).
 */
#include "codegen/kir.h"

#include <stdio.h>
#include <string.h>

#define KB_MAX_DEPTH 64

struct KBuilder {
  DlGraph *g;
  DlCtx *ctx;
  const DlNode *n;
  int nbufs, capbufs;
  KBuf *bufs;
  int nvars, capvars;
  KVar *vars;
  KStmt *root;
  int depth;                  /* number of entries in stack */
  KStmt *stack[KB_MAX_DEPTH]; /* open blocks; stack[0] = root */
  KStmt *owner[KB_MAX_DEPTH]; /* the for/if statement owning the block */
  bool failed;
  int copy_in, copy_out; /* kb_flat_copy */
  KExpr scratch; /* handed out when the arena is exhausted (then failed) */
};

static bool is_float_t(DlDType t) {
  return t == DL_F32 || t == DL_F64 || t == DL_F16 || t == DL_BF16;
}

static void kb_fail(KBuilder *kb, const char *fmt, const char *what) {
  if (kb->failed)
    return;
  kb->failed = true;
  if (kb->n)
    dl_error_node(kb->ctx, kb->n, DL_ERR_INTERNAL, fmt, what);
  else
    dl_error(kb->ctx, DL_ERR_INTERNAL, fmt, what);
}

static void *kb_alloc(KBuilder *kb, size_t bytes) {
  void *p = dl_arena_alloc(&kb->ctx->arena, bytes);
  if (!p)
    kb_fail(kb, "kernel builder: %s", "out of memory");
  return p;
}

/* Grows an arena array *items of *cap elements of size sz to hold need. */
static bool grow(KBuilder *kb, void **items, int *cap, int need, size_t sz) {
  if (need <= *cap)
    return true;
  int ncap = *cap ? *cap * 2 : 8;
  while (ncap < need)
    ncap *= 2;
  void *p = kb_alloc(kb, (size_t)ncap * sz);
  if (!p)
    return false;
  if (*items)
    memcpy(p, *items, (size_t)*cap * sz);
  *items = p;
  *cap = ncap;
  return true;
}

static KStmt *new_stmt(KBuilder *kb, KStmtKind kind) {
  KStmt *s = kb_alloc(kb, sizeof *s);
  if (s)
    s->kind = kind;
  return s;
}

static void append(KBuilder *kb, KStmt *s) {
  if (!s)
    return;
  KStmt *blk = kb->stack[kb->depth - 1];
  void *items = blk->items;
  if (!grow(kb, &items, &blk->cap, blk->n + 1, sizeof(KStmt *)))
    return;
  blk->items = items;
  blk->items[blk->n++] = s;
}

KBuilder *kb_new(DlGraph *g, const DlNode *n) {
  KBuilder *kb = dl_arena_alloc(&g->ctx->arena, sizeof *kb);
  if (!kb)
    return NULL;
  kb->g = g;
  kb->ctx = g->ctx;
  kb->n = n;
  kb->root = new_stmt(kb, KS_BLOCK);
  kb->stack[0] = kb->root;
  kb->depth = 1;
  return kb;
}

DlCtx *kb_ctx(KBuilder *kb) {
  return kb->ctx;
}

int kb_buf(KBuilder *kb, const DlValue *v, bool write) {
  if (!v || v->id < 0) {
    kb_fail(kb, "kernel builder: %s", "buffer for a missing value");
    return 0;
  }
  for (int i = 0; i < kb->nbufs; i++) {
    if (kb->bufs[i].value == v->id) {
      if (write)
        kb->bufs[i].written = true;
      return i;
    }
  }
  void *items = kb->bufs;
  if (!grow(kb, &items, &kb->capbufs, kb->nbufs + 1, sizeof(KBuf)))
    return 0;
  kb->bufs = items;
  KBuf *b = &kb->bufs[kb->nbufs];
  b->value = v->id;
  b->dtype = v->dtype;
  b->written = write;
  b->inplace = 0;
  return kb->nbufs++;
}

void kb_inplace(KBuilder *kb, int in, int out) {
  if (!kb || in < 0 || out < 0 || in >= kb->nbufs || out >= kb->nbufs ||
      in == out)
    return;
  kb->bufs[in].inplace = out + 1;
}

void kb_flat_copy(KBuilder *kb, int in, int out) {
  if (!kb || in < 0 || out < 0 || in >= kb->nbufs || out >= kb->nbufs ||
      in == out)
    return;
  kb->copy_in = in + 1;
  kb->copy_out = out + 1;
}

static int new_var(KBuilder *kb, const char *hint, DlDType t) {
  void *items = kb->vars;
  if (!grow(kb, &items, &kb->capvars, kb->nvars + 1, sizeof(KVar)))
    return 0;
  kb->vars = items;
  kb->vars[kb->nvars].name =
      dl_arena_strdup(&kb->ctx->arena, hint ? hint : "v");
  kb->vars[kb->nvars].dtype = t;
  return kb->nvars++;
}

/* ---- expressions ------------------------------------------------------ */

static KExpr *new_expr(KBuilder *kb, KExprKind kind, DlDType t) {
  KExpr *e = kb_alloc(kb, sizeof *e);
  if (!e) {
    /* Out of memory: keep callers crash-free; kb_finish returns NULL. */
    memset(&kb->scratch, 0, sizeof kb->scratch);
    e = &kb->scratch;
  }
  e->kind = kind;
  e->dtype = t;
  return e;
}

static bool is_lit(const KExpr *e) {
  return e->kind == KE_INT || e->kind == KE_FLOAT;
}

static bool is_i64_const(const KExpr *e, int64_t v) {
  return e->kind == KE_INT && e->dtype == DL_I64 && e->i == v;
}

KExpr *ke_int(KBuilder *kb, int64_t v) {
  KExpr *e = new_expr(kb, KE_INT, DL_I64);
  e->i = v;
  return e;
}

KExpr *ke_const(KBuilder *kb, DlDType t, double v) {
  if (is_float_t(t)) {
    KExpr *e = new_expr(kb, KE_FLOAT, t);
    e->f = t == DL_F64 ? v : (double)(float)v;
    return e;
  }
  KExpr *e = new_expr(kb, KE_INT, t);
  if (t == DL_BOOL)
    e->i = v != 0;
  else if (v != v)
    e->i = 0;
  else if (v >= 9223372036854775807.0)
    e->i = INT64_MAX;
  else if (v <= -9223372036854775808.0)
    e->i = INT64_MIN;
  else
    e->i = (int64_t)v;
  return e;
}

KExpr *ke_var(KBuilder *kb, int var) {
  DlDType t = DL_I64;
  if (var >= 0 && var < kb->nvars)
    t = kb->vars[var].dtype;
  else
    kb_fail(kb, "kernel builder: %s", "unknown variable");
  KExpr *e = new_expr(kb, KE_VAR, t);
  e->i = var;
  return e;
}

KExpr *ke_sym(KBuilder *kb, int sym) {
  KExpr *e = new_expr(kb, KE_SYM, DL_I64);
  e->i = sym;
  return e;
}

KExpr *ke_dim(KBuilder *kb, const DlDim *d) {
  KExpr *sum = ke_int(kb, 0);
  for (int t = 0; t < d->nterms; t++) {
    KExpr *term = ke_int(kb, d->t[t].coef);
    for (int s = 0; s < d->t[t].nsym; s++)
      term = ke_mul(kb, term, ke_sym(kb, d->t[t].sym[s]));
    sum = ke_add(kb, sum, term);
  }
  return sum;
}

KExpr *ke_load(KBuilder *kb, int buf, KExpr *index) {
  DlDType t = DL_F32;
  if (buf >= 0 && buf < kb->nbufs)
    t = kb->bufs[buf].dtype;
  else
    kb_fail(kb, "kernel builder: %s", "load from an unknown buffer");
  if (is_float_t(index->dtype))
    kb_fail(kb, "kernel builder: %s", "load index is not an integer");
  KExpr *e = new_expr(kb, KE_LOAD, t);
  e->i = buf;
  e->a = index;
  return e;
}

/* Wraps v to integer dtype t the way a C conversion does. */
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

KExpr *ke_un(KBuilder *kb, KUnOp op, KExpr *a) {
  DlDType t = a->dtype;
  bool fl = is_float_t(t);
  switch (op) {
  case KU_NOT:
    if (t != DL_BOOL)
      kb_fail(kb, "kernel builder: %s", "'not' of a non-bool");
    if (a->kind == KE_INT)
      return ke_const(kb, DL_BOOL, a->i == 0);
    break;
  case KU_NEG:
    if (!fl && a->kind == KE_INT && t == DL_I64)
      return ke_int(kb, (int64_t)(0 - (uint64_t)a->i));
    break;
  case KU_ABS:
    if (!fl && a->kind == KE_INT && t == DL_I64)
      return ke_int(kb, a->i < 0 ? (int64_t)(0 - (uint64_t)a->i) : a->i);
    break;
  case KU_FLOOR:
  case KU_CEIL:
  case KU_ROUND:
    if (!fl)
      return a;
    break;
  default:
    if (!fl)
      kb_fail(kb, "kernel builder: %s",
              "transcendental unary op on an integer operand");
    break;
  }
  KExpr *e = new_expr(kb, KE_UNARY, op == KU_NOT ? DL_BOOL : t);
  e->op = op;
  e->a = a;
  return e;
}

static bool is_cmp(KBinOp op) {
  return op >= KB_LT && op <= KB_NE;
}
static bool is_logic(KBinOp op) {
  return op == KB_AND || op == KB_OR || op == KB_XOR;
}

/* Folds c op c for I64 constants; returns false when it must not fold
 * (division by zero is left for run time to report). */
static bool fold_i64(KBinOp op, int64_t x, int64_t y, int64_t *r) {
  uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
  switch (op) {
  case KB_ADD:
    *r = (int64_t)(ux + uy);
    return true;
  case KB_SUB:
    *r = (int64_t)(ux - uy);
    return true;
  case KB_MUL:
    *r = (int64_t)(ux * uy);
    return true;
  case KB_DIV:
    if (y == 0)
      return false;
    *r = (y == -1) ? (int64_t)(0 - ux) : x / y;
    return true;
  case KB_MOD:
    if (y == 0)
      return false;
    *r = (y == -1) ? 0 : x % y;
    return true;
  case KB_MIN:
    *r = x < y ? x : y;
    return true;
  case KB_MAX:
    *r = x > y ? x : y;
    return true;
  case KB_LT:
    *r = x < y;
    return true;
  case KB_LE:
    *r = x <= y;
    return true;
  case KB_GT:
    *r = x > y;
    return true;
  case KB_GE:
    *r = x >= y;
    return true;
  case KB_EQ:
    *r = x == y;
    return true;
  case KB_NE:
    *r = x != y;
    return true;
  default:
    return false;
  }
}

KExpr *ke_bin(KBuilder *kb, KBinOp op, KExpr *a, KExpr *b) {
  if (a->dtype != b->dtype) {
    if (is_lit(b))
      b = ke_cast(kb, a->dtype, b);
    else if (is_lit(a))
      a = ke_cast(kb, b->dtype, a);
    else
      kb_fail(kb, "kernel builder: %s", "binary operands differ in dtype");
  }
  DlDType t = a->dtype;
  if (is_logic(op) && t != DL_BOOL)
    kb_fail(kb, "kernel builder: %s", "logical op on non-bool operands");
  DlDType rt = (is_cmp(op) || is_logic(op)) ? DL_BOOL : t;

  if (t == DL_I64) {
    if (a->kind == KE_INT && b->kind == KE_INT) {
      int64_t r;
      if (fold_i64(op, a->i, b->i, &r)) {
        KExpr *c = ke_int(kb, r);
        c->dtype = rt;
        return c;
      }
    }
    switch (op) {
    case KB_ADD:
      if (is_i64_const(a, 0))
        return b;
      if (is_i64_const(b, 0))
        return a;
      if (a->kind == KE_INT && b->kind != KE_INT) { /* c + x -> x + c */
        KExpr *tmp = a;
        a = b;
        b = tmp;
      }
      /* (x + c1) + c2 -> x + (c1 + c2) */
      if (b->kind == KE_INT && a->kind == KE_BINARY && a->op == KB_ADD &&
          a->b->kind == KE_INT)
        return ke_add(
            kb, a->a,
            ke_int(kb, (int64_t)((uint64_t)a->b->i + (uint64_t)b->i)));
      break;
    case KB_SUB:
      if (is_i64_const(b, 0))
        return a;
      break;
    case KB_MUL:
      if (is_i64_const(a, 1))
        return b;
      if (is_i64_const(b, 1))
        return a;
      if (is_i64_const(a, 0) || is_i64_const(b, 0))
        return ke_int(kb, 0);
      /* (x * c1) * c2 -> x * (c1 * c2) */
      if (b->kind == KE_INT && a->kind == KE_BINARY && a->op == KB_MUL &&
          a->b->kind == KE_INT)
        return ke_mul(
            kb, a->a,
            ke_int(kb, (int64_t)((uint64_t)a->b->i * (uint64_t)b->i)));
      /* keep constants on the right: c * x -> x * c */
      if (a->kind == KE_INT && b->kind != KE_INT) {
        KExpr *tmp = a;
        a = b;
        b = tmp;
      }
      break;
    case KB_DIV:
      if (is_i64_const(b, 1))
        return a;
      break;
    case KB_MOD:
      if (is_i64_const(b, 1))
        return ke_int(kb, 0);
      break;
    default:
      break;
    }
  } else if (t == DL_BOOL && a->kind == KE_INT && b->kind == KE_INT) {
    int64_t x = a->i != 0, y = b->i != 0, r;
    if (op == KB_AND)
      return ke_const(kb, DL_BOOL, x && y);
    if (op == KB_OR)
      return ke_const(kb, DL_BOOL, x || y);
    if (op == KB_XOR)
      return ke_const(kb, DL_BOOL, x != y);
    if (is_cmp(op) && fold_i64(op, x, y, &r))
      return ke_const(kb, DL_BOOL, r);
  }
  KExpr *e = new_expr(kb, KE_BINARY, rt);
  e->op = op;
  e->a = a;
  e->b = b;
  return e;
}

KExpr *ke_select(KBuilder *kb, KExpr *cond, KExpr *a, KExpr *b) {
  if (cond->dtype != DL_BOOL)
    kb_fail(kb, "kernel builder: %s", "select condition is not bool");
  if (a->dtype != b->dtype) {
    if (is_lit(b))
      b = ke_cast(kb, a->dtype, b);
    else if (is_lit(a))
      a = ke_cast(kb, b->dtype, a);
    else
      kb_fail(kb, "kernel builder: %s", "select operands differ in dtype");
  }
  if (cond->kind == KE_INT)
    return cond->i ? a : b;
  KExpr *e = new_expr(kb, KE_SELECT, a->dtype);
  e->a = cond;
  e->b = a;
  e->c = b;
  return e;
}

KExpr *ke_cast(KBuilder *kb, DlDType t, KExpr *a) {
  if (a->dtype == t)
    return a;
  if (a->kind == KE_INT) {
    if (is_float_t(t)) {
      double v = a->dtype == DL_U64 ? (double)(uint64_t)a->i : (double)a->i;
      return ke_const(kb, t, v);
    }
    KExpr *c = new_expr(kb, KE_INT, t);
    c->i = wrap_int(t, a->i);
    return c;
  }
  if (a->kind == KE_FLOAT) {
    if (is_float_t(t))
      return ke_const(kb, t, a->f);
    if (t == DL_BOOL)
      return ke_const(kb, t, a->f != 0);
    if (a->f > -9.2e18 && a->f < 9.2e18) {
      KExpr *c = new_expr(kb, KE_INT, t);
      c->i = wrap_int(t, (int64_t)a->f);
      return c;
    }
  }
  KExpr *e = new_expr(kb, KE_CAST, t);
  e->a = a;
  return e;
}

/* ---- statements ------------------------------------------------------- */

static bool push(KBuilder *kb, KStmt *blk, KStmt *owner) {
  if (kb->depth >= KB_MAX_DEPTH) {
    kb_fail(kb, "kernel builder: %s", "blocks nested too deeply");
    return false;
  }
  kb->stack[kb->depth] = blk;
  kb->owner[kb->depth] = owner;
  kb->depth++;
  return true;
}

int kb_for(KBuilder *kb, KExpr *extent, const char *hint, unsigned flags) {
  int var = new_var(kb, hint ? hint : "i", DL_I64);
  KStmt *s = new_stmt(kb, KS_FOR);
  KStmt *body = new_stmt(kb, KS_BLOCK);
  if (!s || !body)
    return var;
  if (is_float_t(extent->dtype))
    kb_fail(kb, "kernel builder: %s", "loop extent is not an integer");
  s->var = var;
  s->flags = flags;
  s->extent = ke_cast(kb, DL_I64, extent);
  s->body = body;
  append(kb, s);
  push(kb, body, s);
  return var;
}

void kb_if(KBuilder *kb, KExpr *cond) {
  KStmt *s = new_stmt(kb, KS_IF);
  KStmt *body = new_stmt(kb, KS_BLOCK);
  if (!s || !body)
    return;
  if (cond->dtype != DL_BOOL)
    kb_fail(kb, "kernel builder: %s", "if condition is not bool");
  s->cond = cond;
  s->body = body;
  append(kb, s);
  push(kb, body, s);
}

void kb_else(KBuilder *kb) {
  KStmt *owner = kb->depth > 1 ? kb->owner[kb->depth - 1] : NULL;
  if (!owner || owner->kind != KS_IF || owner->els ||
      kb->stack[kb->depth - 1] != owner->body) {
    kb_fail(kb, "kernel builder: %s", "else without an open if");
    return;
  }
  KStmt *els = new_stmt(kb, KS_BLOCK);
  if (!els)
    return;
  owner->els = els;
  kb->stack[kb->depth - 1] = els;
}

void kb_end(KBuilder *kb) {
  if (kb->depth <= 1) {
    kb_fail(kb, "kernel builder: %s", "end without an open block");
    return;
  }
  kb->depth--;
}

void kb_end_n(KBuilder *kb, int n) {
  for (int i = 0; i < n; i++)
    kb_end(kb);
}

int kb_decl(KBuilder *kb, const char *hint, DlDType t, KExpr *init) {
  int var = new_var(kb, hint, t);
  KStmt *s = new_stmt(kb, KS_DECL);
  if (!s)
    return var;
  s->var = var;
  s->value = ke_cast(kb, t, init ? init : ke_int(kb, 0));
  append(kb, s);
  return var;
}

void kb_assign(KBuilder *kb, int var, KExpr *value) {
  if (var < 0 || var >= kb->nvars) {
    kb_fail(kb, "kernel builder: %s", "assignment to an unknown variable");
    return;
  }
  KStmt *s = new_stmt(kb, KS_ASSIGN);
  if (!s)
    return;
  s->var = var;
  s->value = ke_cast(kb, kb->vars[var].dtype, value);
  append(kb, s);
}

void kb_store(KBuilder *kb, int buf, KExpr *index, KExpr *value) {
  if (buf < 0 || buf >= kb->nbufs) {
    kb_fail(kb, "kernel builder: %s", "store to an unknown buffer");
    return;
  }
  if (is_float_t(index->dtype))
    kb_fail(kb, "kernel builder: %s", "store index is not an integer");
  KStmt *s = new_stmt(kb, KS_STORE);
  if (!s)
    return;
  kb->bufs[buf].written = true;
  s->buf = buf;
  s->index = index;
  s->value = ke_cast(kb, kb->bufs[buf].dtype, value);
  append(kb, s);
}

/* ---- shapes ----------------------------------------------------------- */

void kb_for_shape(KBuilder *kb, int rank, const DlDim *dims, KExpr **idx,
                  unsigned flags) {
  for (int d = 0; d < rank; d++) {
    char hint[16];
    snprintf(hint, sizeof hint, "i%d", d);
    unsigned f = flags;
    if (d == rank - 1 && (flags & KF_PARALLEL))
      f |= KF_VECTOR;
    int v = kb_for(kb, ke_dim(kb, &dims[d]), hint, f);
    idx[d] = ke_var(kb, v);
  }
}

KExpr *ke_flat_index(KBuilder *kb, int rank, const DlDim *dims,
                     KExpr *const *idx) {
  KExpr *sum = ke_int(kb, 0);
  KExpr *stride = ke_int(kb, 1);
  for (int d = rank - 1; d >= 0; d--) {
    sum = ke_add(kb, ke_mul(kb, idx[d], stride), sum);
    if (d > 0)
      stride = ke_mul(kb, stride, ke_dim(kb, &dims[d]));
  }
  return sum;
}

KExpr *ke_bcast_index(KBuilder *kb, const DlValue *in, int out_rank,
                      KExpr *const *idx) {
  int r = in->rank;
  if (r < 0 || r > out_rank) {
    kb_fail(kb, "kernel builder: %s",
            "broadcast input has unknown or larger rank than the output");
    return ke_int(kb, 0);
  }
  int off = out_rank - r;
  KExpr *sum = ke_int(kb, 0);
  KExpr *stride = ke_int(kb, 1);
  for (int d = r - 1; d >= 0; d--) {
    int64_t c;
    bool one = dl_dim_is_const(&in->dims[d], &c) && c == 1;
    if (!one)
      sum = ke_add(kb, ke_mul(kb, idx[off + d], stride), sum);
    if (d > 0)
      stride = ke_mul(kb, stride, ke_dim(kb, &in->dims[d]));
  }
  return sum;
}

/* ---- finishing -------------------------------------------------------- */

static const char *kernel_name(KBuilder *kb) {
  if (!kb->n)
    return "kernel";
  const char *op = kb->n->op_type ? kb->n->op_type : "op";
  char *s = dl_arena_printf(&kb->ctx->arena, "k%d_%s", kb->n->id, op);
  if (!s)
    return "kernel";
  for (char *p = s; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_';
    if (!ok)
      *p = '_';
  }
  return s;
}

Kernel *kb_finish(KBuilder *kb) {
  if (!kb)
    return NULL;
  if (kb->depth != 1)
    kb_fail(kb, "kernel builder: %s", "unbalanced blocks at finish");
  if (kb->failed)
    return NULL;
  Kernel *k = kb_alloc(kb, sizeof *k);
  if (!k)
    return NULL;
  k->name = kernel_name(kb);
  k->node = kb->n ? kb->n->id : -1;
  k->nbufs = kb->nbufs;
  k->bufs = kb->bufs;
  k->nvars = kb->nvars;
  k->vars = kb->vars;
  k->body = kb->root;
  k->g = kb->g;
  k->copy_in = kb->copy_in;
  k->copy_out = kb->copy_out;
  return k;
}
