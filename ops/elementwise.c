/*
 * elementwise.c - unary math and activations, Cast, and the broadcasting
 * binary, variadic and ternary ops.
 *
 * Every op here is one row of a table: which dtypes its data inputs take,
 * what its output dtype is, and a builder that turns the loaded input
 * elements into the output element.  One generic inference (dtype checks,
 * numpy broadcasting, symbolic values for shape arithmetic) and one generic
 * lowering (a loop nest over the output, broadcast loads, one store) serve
 * all of them.
 */
#include "ops/ops.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* dtype classes */
enum { TF = 1, TS = 2, TU = 4, TB = 8 };
#define TINT (TS | TU)
#define TNUM (TF | TS | TU)
#define TALL (TNUM | TB)

/* flags */
enum {
  EW_SAME = 1u << 0,     /* every data input has input `tin`'s dtype */
  EW_BOOL_OUT = 1u << 1, /* output is bool */
  EW_SYMVAL = 1u << 2    /* computes symbolic values for shape arithmetic */
};

#define MAX_IN 32
#define SV_CAP 64

typedef struct EwIn {
  KExpr *x[MAX_IN]; /* loaded elements, NULL for omitted inputs */
  int nx;
  DlDType t; /* dtype of the data input */
  int opset;
} EwIn;

typedef KExpr *(*EwBuild)(KBuilder *kb, const DlNode *n, const EwIn *in);

typedef struct EwDesc {
  DlOp op;
  unsigned types; /* dtype classes accepted for the data input */
  int int_from;   /* ints accepted from this opset on (0: always) */
  unsigned flags;
  KBinOp bop; /* for the plain binary / fold ops */
  EwBuild build;
} EwDesc;

static int node_opset(const DlGraph *g, const DlNode *n) {
  return n->opset > 0 ? n->opset : (int)g->opset;
}

static unsigned dtype_class(DlDType t) {
  switch (t) {
  case DL_F32:
  case DL_F64:
    return TF;
  case DL_I8:
  case DL_I16:
  case DL_I32:
  case DL_I64:
    return TS;
  case DL_U8:
  case DL_U16:
  case DL_U32:
  case DL_U64:
    return TU;
  case DL_BOOL:
    return TB;
  default:
    return 0;
  }
}

/* ---- element builders --------------------------------------------------- */

static KExpr *C(KBuilder *kb, DlDType t, double v) {
  return ke_const(kb, t, v);
}

/* Keeps e in a scalar local so that it can be used more than once. */
static int local(KBuilder *kb, KExpr *e) {
  return kb_decl(kb, "x", e->dtype, e);
}

static KExpr *b_relu(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  return ke_bin(kb, KB_MAX, in->x[0], C(kb, in->t, 0));
}

static KExpr *b_leaky(KBuilder *kb, const DlNode *n, const EwIn *in) {
  DlDType t = in->t;
  int x = local(kb, in->x[0]);
  double alpha = dl_attr_float(n, "alpha", 0.01f);
  return ke_select(kb, ke_bin(kb, KB_LT, ke_var(kb, x), C(kb, t, 0)),
                   ke_mul(kb, C(kb, t, alpha), ke_var(kb, x)), ke_var(kb, x));
}

static KExpr *b_sigmoid(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  DlDType t = in->t;
  KExpr *e = ke_un(kb, KU_EXP, ke_un(kb, KU_NEG, in->x[0]));
  return ke_div(kb, C(kb, t, 1), ke_add(kb, C(kb, t, 1), e));
}

/* max(0, min(1, alpha * x + beta)) */
static KExpr *hard_sigmoid(KBuilder *kb, DlDType t, KExpr *x, double alpha,
                           double beta) {
  KExpr *y = ke_add(kb, ke_mul(kb, C(kb, t, alpha), x), C(kb, t, beta));
  return ke_bin(kb, KB_MAX, C(kb, t, 0), ke_bin(kb, KB_MIN, C(kb, t, 1), y));
}

static KExpr *b_hard_sigmoid(KBuilder *kb, const DlNode *n, const EwIn *in) {
  return hard_sigmoid(kb, in->t, in->x[0], dl_attr_float(n, "alpha", 0.2f),
                      dl_attr_float(n, "beta", 0.5f));
}

static KExpr *b_hard_swish(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  int x = local(kb, in->x[0]);
  return ke_mul(kb, ke_var(kb, x),
                hard_sigmoid(kb, in->t, ke_var(kb, x), 1.0 / 6.0, 0.5));
}

static KExpr *b_gelu(KBuilder *kb, const DlNode *n, const EwIn *in) {
  DlDType t = in->t;
  int x = local(kb, in->x[0]);
  const char *approx = dl_attr_string(n, "approximate", "none");
  KExpr *inner;
  if (strcmp(approx, "tanh") == 0) {
    /* tanh(sqrt(2/pi) * (x + 0.044715 x^3)) */
    KExpr *x3 =
        ke_mul(kb, ke_mul(kb, ke_var(kb, x), ke_var(kb, x)), ke_var(kb, x));
    KExpr *p = ke_add(kb, ke_var(kb, x), ke_mul(kb, C(kb, t, 0.044715), x3));
    inner = ke_un(kb, KU_TANH, ke_mul(kb, C(kb, t, 0.79788456080286535588), p));
  } else {
    inner = ke_un(kb, KU_ERF,
                  ke_mul(kb, ke_var(kb, x), C(kb, t, 0.70710678118654752440)));
  }
  return ke_mul(kb, ke_mul(kb, C(kb, t, 0.5), ke_var(kb, x)),
                ke_add(kb, C(kb, t, 1), inner));
}

static KExpr *unary(KBuilder *kb, KUnOp op, const EwIn *in) {
  if (dtype_class(in->t) == TF || op == KU_NEG || op == KU_NOT)
    return ke_un(kb, op, in->x[0]);
  /* Integer inputs (Erf before opset 13): compute in f64, truncate back. */
  return ke_cast(kb, in->t, ke_un(kb, op, ke_cast(kb, DL_F64, in->x[0])));
}

#define UNARY_BUILDER(fn, kop)                                                 \
  static KExpr *fn(KBuilder *kb, const DlNode *n, const EwIn *in) {            \
    (void)n;                                                                   \
    return unary(kb, kop, in);                                                 \
  }
UNARY_BUILDER(b_tanh, KU_TANH)
UNARY_BUILDER(b_erf, KU_ERF)
UNARY_BUILDER(b_exp, KU_EXP)
UNARY_BUILDER(b_log, KU_LOG)
UNARY_BUILDER(b_sqrt, KU_SQRT)
UNARY_BUILDER(b_floor, KU_FLOOR)
UNARY_BUILDER(b_ceil, KU_CEIL)
UNARY_BUILDER(b_neg, KU_NEG)
UNARY_BUILDER(b_not, KU_NOT)

static KExpr *b_abs(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  if (dtype_class(in->t) == TU)
    return in->x[0];
  return ke_un(kb, KU_ABS, in->x[0]);
}

static KExpr *b_reciprocal(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  return ke_div(kb, C(kb, in->t, 1), in->x[0]);
}

static KExpr *b_clip(KBuilder *kb, const DlNode *n, const EwIn *in) {
  KExpr *lo = NULL, *hi = NULL, *r = in->x[0];
  if (in->opset < 11) {
    if (dl_attr(n, "min"))
      lo = C(kb, in->t, dl_attr_float(n, "min", 0));
    if (dl_attr(n, "max"))
      hi = C(kb, in->t, dl_attr_float(n, "max", 0));
  } else {
    lo = in->nx > 1 ? in->x[1] : NULL;
    hi = in->nx > 2 ? in->x[2] : NULL;
  }
  /* numpy clip: min(max(x, lo), hi), so lo > hi gives hi. */
  if (lo)
    r = ke_bin(kb, KB_MAX, r, lo);
  if (hi)
    r = ke_bin(kb, KB_MIN, r, hi);
  return r;
}

static KExpr *b_cast(KBuilder *kb, const DlNode *n, const EwIn *in) {
  DlDType to = (DlDType)dl_attr_int(n, "to", 0);
  if (to == in->t)
    return in->x[0];
  if (to == DL_BOOL)
    return ke_bin(kb, KB_NE, in->x[0], C(kb, in->t, 0));
  return ke_cast(kb, to, in->x[0]);
}

static KExpr *b_pow(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  KExpr *a = in->x[0], *b = in->x[1];
  if (a->dtype == b->dtype && dtype_class(a->dtype) == TF)
    return ke_bin(kb, KB_POW, a, b);
  /* Mixed dtypes or an integer base: compute in f64, result in the base's
   * dtype (as numpy's power(a, b).astype(a.dtype)). */
  KExpr *r = ke_bin(kb, KB_POW, ke_cast(kb, DL_F64, a), ke_cast(kb, DL_F64, b));
  return a->dtype == DL_F64 ? r : ke_cast(kb, a->dtype, r);
}

static KExpr *b_where(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  return ke_select(kb, in->x[0], in->x[1], in->x[2]);
}

static KExpr *b_mean(KBuilder *kb, const DlNode *n, const EwIn *in) {
  (void)n;
  KExpr *r = in->x[0];
  for (int i = 1; i < in->nx; i++)
    r = ke_add(kb, r, in->x[i]);
  if (in->nx == 1)
    return r;
  return ke_div(kb, r, C(kb, in->t, in->nx));
}

/* ---- the table ---------------------------------------------------------- */

#define BIN(op, types, from, flags, kop)                                       \
  { DL_OP_##op, types, from, (flags) | EW_SAME, kop, NULL }
#define UN(op, types, from, fn)                                                \
  { DL_OP_##op, types, from, 0, KB_ADD, fn }

static const EwDesc ew_table[] = {
    UN(Relu, TF | TS, 14, b_relu),
    UN(LeakyRelu, TF, 0, b_leaky),
    UN(Sigmoid, TF, 0, b_sigmoid),
    UN(HardSigmoid, TF, 0, b_hard_sigmoid),
    UN(HardSwish, TF, 0, b_hard_swish),
    UN(Tanh, TF, 0, b_tanh),
    UN(Erf, TNUM, 0, b_erf), /* ints only before opset 13, checked below */
    UN(Gelu, TF, 0, b_gelu),
    UN(Exp, TF, 0, b_exp),
    UN(Log, TF, 0, b_log),
    UN(Sqrt, TF, 0, b_sqrt),
    UN(Reciprocal, TF, 0, b_reciprocal),
    {DL_OP_Neg, TF | TS, 6, EW_SYMVAL, KB_ADD, b_neg},
    UN(Abs, TNUM, 6, b_abs),
    UN(Floor, TF, 0, b_floor),
    UN(Ceil, TF, 0, b_ceil),
    UN(Not, TB, 0, b_not),
    {DL_OP_Clip, TNUM, 12, EW_SAME, KB_ADD, b_clip},
    {DL_OP_Cast, TALL, 0, EW_SYMVAL, KB_ADD, b_cast},
    BIN(Add, TNUM, 0, EW_SYMVAL, KB_ADD),
    BIN(Sub, TNUM, 0, EW_SYMVAL, KB_SUB),
    BIN(Mul, TNUM, 0, EW_SYMVAL, KB_MUL),
    BIN(Div, TNUM, 0, EW_SYMVAL, KB_DIV),
    {DL_OP_Pow, TF | TS, 12, 0, KB_POW, b_pow},
    BIN(Equal, TALL, 0, EW_BOOL_OUT | EW_SYMVAL, KB_EQ),
    BIN(Less, TNUM, 9, EW_BOOL_OUT, KB_LT),
    BIN(Greater, TNUM, 9, EW_BOOL_OUT, KB_GT),
    BIN(LessOrEqual, TNUM, 0, EW_BOOL_OUT, KB_LE),
    BIN(GreaterOrEqual, TNUM, 0, EW_BOOL_OUT, KB_GE),
    BIN(And, TB, 0, EW_BOOL_OUT, KB_AND),
    BIN(Or, TB, 0, EW_BOOL_OUT, KB_OR),
    BIN(Xor, TB, 0, EW_BOOL_OUT, KB_XOR),
    BIN(Min, TNUM, 12, EW_SYMVAL, KB_MIN),
    BIN(Max, TNUM, 12, EW_SYMVAL, KB_MAX),
    BIN(Sum, TF, 0, 0, KB_ADD),
    {DL_OP_Mean, TF, 0, EW_SAME, KB_ADD, b_mean},
    {DL_OP_Where, TALL, 0, EW_SAME | EW_SYMVAL, KB_ADD, b_where},
};

static const EwDesc *ew_desc(DlOp op) {
  for (size_t i = 0; i < DL_ARRAY_LEN(ew_table); i++)
    if (ew_table[i].op == op)
      return &ew_table[i];
  return NULL;
}

/* Index of the input whose dtype is the op's data dtype. */
static int data_input(const EwDesc *d) {
  return d->op == DL_OP_Where ? 1 : 0;
}

/* ---- symbolic values ---------------------------------------------------- */

/* Elements of a small 0-D/1-D integer or bool tensor known as dims. */
static bool known_elems(const DlValue *v, DlDim *out, int *count) {
  if (!v || v->rank < 0 || v->rank > 1)
    return false;
  int64_t numel = dl_value_numel_const(v);
  if (numel < 0 || numel > SV_CAP)
    return false;
  if (v->dtype == DL_BOOL) {
    if (v->symval) {
      memcpy(out, v->symval, (size_t)numel * sizeof *out);
    } else if (v->data) {
      for (int64_t k = 0; k < numel; k++)
        out[k] = dl_dim_const(((const uint8_t *)v->data)[k] != 0);
    } else {
      return false;
    }
    *count = (int)numel;
    return true;
  }
  if (!dl_dtype_is_int(v->dtype))
    return false;
  if (!dl_value_known_dims(v, out, SV_CAP, count))
    return false;
  return *count == numel;
}

static bool is_const(const DlDim *d, int64_t *v) {
  return dl_dim_is_const(d, v);
}

/* a vs b for Min (want_max false) or Max. */
static bool sv_minmax(const DlDim *a, const DlDim *b, bool want_max,
                      DlDim *out) {
  int64_t ca, cb;
  bool ka = is_const(a, &ca), kb = is_const(b, &cb);
  if (dl_dim_eq(a, b)) {
    *out = *a;
    return true;
  }
  if (ka && kb) {
    *out = dl_dim_const(want_max ? (ca > cb ? ca : cb) : (ca < cb ? ca : cb));
    return true;
  }
  /* A positive polynomial is >= 1. */
  if (ka && ca <= 1 && dl_dim_is_positive(b)) {
    *out = want_max ? *b : *a;
    return true;
  }
  if (kb && cb <= 1 && dl_dim_is_positive(a)) {
    *out = want_max ? *a : *b;
    return true;
  }
  return false;
}

/* 1 / 0 when a == b is decidable. */
static bool sv_equal(const DlDim *a, const DlDim *b, int64_t *res) {
  int64_t ca, cb;
  DlDim diff;
  if (dl_dim_eq(a, b)) {
    *res = 1;
    return true;
  }
  if (dl_dim_sub(a, b, &diff) && is_const(&diff, NULL)) {
    *res = 0; /* differ by a nonzero constant */
    return true;
  }
  if ((is_const(a, &ca) && ca <= 0 && dl_dim_is_positive(b)) ||
      (is_const(b, &cb) && cb <= 0 && dl_dim_is_positive(a))) {
    *res = 0;
    return true;
  }
  return false;
}

static bool sv_elem(const EwDesc *d, const DlNode *n, DlDType out_t,
                    const DlDim *const *x, int nx, DlDim *out) {
  int64_t ca, cb;
  switch (d->op) {
  case DL_OP_Add:
    return dl_dim_add(x[0], x[1], out);
  case DL_OP_Sub:
    return dl_dim_sub(x[0], x[1], out);
  case DL_OP_Mul:
    return dl_dim_mul(x[0], x[1], out);
  case DL_OP_Div:
    if (is_const(x[0], &ca) && is_const(x[1], &cb)) {
      if (cb == 0 || (cb == -1 && ca == INT64_MIN))
        return false;
      *out = dl_dim_const(ca / cb); /* C truncation, as ONNX integer Div */
      return true;
    }
    return dl_dim_div(x[0], x[1], out); /* exact only */
  case DL_OP_Neg: {
    DlDim zero = dl_dim_const(0);
    return dl_dim_sub(&zero, x[0], out);
  }
  case DL_OP_Equal: {
    int64_t r;
    if (!sv_equal(x[0], x[1], &r))
      return false;
    *out = dl_dim_const(r);
    return true;
  }
  case DL_OP_Where:
    if (is_const(x[0], &ca)) {
      *out = ca ? *x[1] : *x[2];
      return true;
    }
    if (dl_dim_eq(x[1], x[2])) {
      *out = *x[1];
      return true;
    }
    return false;
  case DL_OP_Cast:
    (void)n;
    if (out_t == DL_BOOL) {
      if (is_const(x[0], &ca)) {
        *out = dl_dim_const(ca != 0);
        return true;
      }
      if (dl_dim_is_positive(x[0])) {
        *out = dl_dim_const(1);
        return true;
      }
      return false;
    }
    *out = *x[0];
    return true;
  case DL_OP_Min:
  case DL_OP_Max: {
    DlDim acc = *x[0];
    for (int i = 1; i < nx; i++)
      if (!sv_minmax(&acc, x[i], d->op == DL_OP_Max, &acc))
        return false;
    *out = acc;
    return true;
  }
  default:
    return false;
  }
}

/* Sets out->symval when every input is a small tensor with known elements
 * and at least one of them is not a plain constant. */
static void infer_symval(DlGraph *g, const DlNode *n, const EwDesc *d,
                         DlValue *out) {
  if (!(d->flags & EW_SYMVAL))
    return;
  if (!(dl_dtype_is_int(out->dtype) || out->dtype == DL_BOOL))
    return;
  if (d->op == DL_OP_Cast && !dl_dtype_is_int(dl_in(g, n, 0)->dtype) &&
      dl_in(g, n, 0)->dtype != DL_BOOL)
    return;
  if (out->rank > 1)
    return;
  int64_t numel = dl_value_numel_const(out);
  if (numel < 0 || numel > SV_CAP)
    return;
  if (n->nin > MAX_IN)
    return;
  for (int i = 0; i < n->nin; i++) {
    const DlValue *v = dl_in(g, n, i);
    if (!v || v->rank < 0 || v->rank > 1 || (!v->data && !v->symval))
      return;
  }
  DlDim *elems[MAX_IN];
  int counts[MAX_IN];
  bool all_const = true;
  for (int i = 0; i < n->nin; i++) {
    const DlValue *v = dl_in(g, n, i);
    elems[i] = dl_arena_alloc(&g->ctx->arena, SV_CAP * sizeof(DlDim));
    if (!elems[i] || !known_elems(v, elems[i], &counts[i]))
      return;
    if (counts[i] != 1 && counts[i] != numel)
      return;
    if (!v->data)
      all_const = false;
  }
  if (all_const)
    return; /* folding computes the data */
  DlDim *sv = dl_arena_alloc(&g->ctx->arena,
                             (size_t)(numel ? numel : 1) * sizeof(DlDim));
  if (!sv)
    return;
  for (int64_t k = 0; k < numel; k++) {
    const DlDim *x[MAX_IN];
    for (int i = 0; i < n->nin; i++)
      x[i] = &elems[i][counts[i] == 1 ? 0 : k];
    if (!sv_elem(d, n, out->dtype, x, n->nin, &sv[k]))
      return;
  }
  out->symval = sv;
}

/* ---- generic inference -------------------------------------------------- */

static DlStatus check_dtype(DlGraph *g, const DlNode *n, const EwDesc *d,
                            DlDType t, int input) {
  unsigned c = dtype_class(t);
  int opset = node_opset(g, n);
  bool ok = (c & d->types) != 0;
  if (ok && (c & TINT) && d->int_from && opset < d->int_from)
    ok = false;
  if (ok && d->op == DL_OP_Erf && (c & TINT) && opset >= 13)
    ok = false;
  if (ok && d->op == DL_OP_Equal && c == TF && opset < 11)
    ok = false;
  if (!ok)
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "dtype %s of input %d is not supported (opset %d)",
                         dl_dtype_name(t), input, opset);
  return DL_OK;
}

static DlStatus ew_infer(DlGraph *g, DlNode *n, DlOp op) {
  const EwDesc *d = ew_desc(op);
  if (!d)
    return DL_UNREACHABLE(g->ctx);
  if (n->nin < 1 || n->nin > MAX_IN || n->nout < 1)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "wrong number of inputs or outputs");
  const DlValue *vals[MAX_IN];
  int nvals = 0;
  bool optional_tail = op == DL_OP_Clip;
  for (int i = 0; i < n->nin; i++) {
    DlValue *v = dl_in(g, n, i);
    if (!v && optional_tail && i > 0)
      continue;
    DL_TRY(dl_need_input(g, n, i, &v));
    vals[nvals++] = v;
  }
  int di = data_input(d);
  if (di >= n->nin || !dl_in(g, n, di))
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "input %d is missing", di);
  DlDType t = dl_in(g, n, di)->dtype;
  DL_TRY(check_dtype(g, n, d, t, di));

  /* Inputs other than the data input. */
  for (int i = 0; i < n->nin; i++) {
    const DlValue *v = dl_in(g, n, i);
    if (!v || i == di)
      continue;
    if (op == DL_OP_Where && i == 0) {
      if (v->dtype != DL_BOOL)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "condition must be bool, not %s",
                             dl_dtype_name(v->dtype));
    } else if (op == DL_OP_Pow) {
      if (!(dtype_class(v->dtype) & TNUM))
        return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                             "dtype %s of the exponent is not supported",
                             dl_dtype_name(v->dtype));
    } else if ((d->flags & EW_SAME) && v->dtype != t) {
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "input %d has dtype %s, input %d has %s", di,
                           dl_dtype_name(t), i, dl_dtype_name(v->dtype));
    }
  }
  if (op == DL_OP_Clip && node_opset(g, n) >= 11) {
    for (int i = 1; i < n->nin; i++) {
      const DlValue *v = dl_in(g, n, i);
      if (v && dl_value_numel_const(v) != 1)
        return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                             "input %d (min/max) must be a scalar", i);
    }
  }

  DlDType out_t = t;
  if (d->flags & EW_BOOL_OUT)
    out_t = DL_BOOL;
  if (op == DL_OP_Cast) {
    const DlAttr *a = dl_attr(n, "to");
    if (!a || a->kind != DL_ATTR_INT)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "missing integer attribute 'to'");
    out_t = (DlDType)a->i;
    if (!dtype_class(out_t))
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "cast to dtype %s (%lld) is not supported",
                           dl_dtype_name(out_t), (long long)a->i);
  }
  if (op == DL_OP_Gelu) {
    const char *s = dl_attr_string(n, "approximate", "none");
    if (strcmp(s, "none") != 0 && strcmp(s, "tanh") != 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "approximate must be \"none\" or \"tanh\", not "
                           "\"%s\"",
                           s);
  }

  int rank;
  DlDim dims[DL_MAX_RANK];
  DL_TRY(dl_broadcast(g, n, nvals, vals, &rank, dims));
  DlValue *out = dl_out(g, n, 0);
  if (!out)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output 0 is missing");
  out->dtype = out_t;
  dl_value_set_shape(out, rank, dims);
  infer_symval(g, n, d, out);
  return DL_OK;
}

/* ---- generic lowering --------------------------------------------------- */

KExpr *dl_elementwise_expr(KBuilder *kb, DlGraph *g, const DlNode *n,
                           KExpr *const *in) {
  const EwDesc *d = ew_desc(n->op);
  const DlValue *out = dl_out(g, n, 0);
  if (!d || !out || n->nin > MAX_IN)
    return NULL;
  const DlValue *dv = dl_in(g, n, data_input(d));
  if (!dv)
    return NULL;
  EwIn e;
  memset(&e, 0, sizeof e);
  e.nx = n->nin;
  e.opset = node_opset(g, n);
  e.t = dv->dtype;
  for (int i = 0; i < n->nin; i++)
    e.x[i] = dl_in(g, n, i) ? in[i] : NULL;
  KExpr *r;
  if (d->build) {
    r = d->build(kb, n, &e);
  } else {
    r = e.x[0];
    for (int i = 1; i < e.nx; i++)
      r = ke_bin(kb, d->bop, r, e.x[i]);
  }
  if (r && r->dtype != out->dtype)
    r = ke_cast(kb, out->dtype, r);
  return r;
}

bool dl_is_elementwise(DlOp op) {
  return ew_desc(op) != NULL;
}

/* Opens loops over the whole shape: outer ones parallel, the innermost a
 * vector candidate (kb_for_shape flags it).  Returns the number opened. */
static int open_loops(KBuilder *kb, int rank, const DlDim *dims, KExpr **idx) {
  kb_for_shape(kb, rank, dims, idx, KF_PARALLEL);
  return rank;
}

static DlStatus ew_lower(KBuilder *kb, DlGraph *g, DlNode *n, DlOp op) {
  const EwDesc *d = ew_desc(op);
  DlValue *out = dl_out(g, n, 0);
  if (!d || !out || out->rank < 0 || n->nin > MAX_IN)
    return DL_UNREACHABLE(g->ctx);
  int obuf = kb_buf(kb, out, true);
  int ibuf[MAX_IN];
  for (int i = 0; i < n->nin; i++) {
    const DlValue *v = dl_in(g, n, i);
    ibuf[i] = v ? kb_buf(kb, v, false) : -1;
  }
  KExpr *idx[DL_MAX_RANK];
  int nl = open_loops(kb, out->rank, out->dims, idx);
  KExpr *x[MAX_IN];
  for (int i = 0; i < n->nin; i++) {
    const DlValue *v = dl_in(g, n, i);
    x[i] =
        v ? ke_load(kb, ibuf[i], ke_bcast_index(kb, v, out->rank, idx)) : NULL;
  }
  KExpr *r = dl_elementwise_expr(kb, g, n, x);
  if (!r)
    return DL_UNREACHABLE(g->ctx);
  kb_store(kb, obuf, ke_flat_index(kb, out->rank, out->dims, idx), r);
  kb_end_n(kb, nl);
  /* An input of the output's shape is read at the element being written:
   * the plan may give the output its storage. */
  for (int i = 0; i < n->nin; i++)
    if (dl_same_layout(dl_in(g, n, i), out))
      kb_inplace(kb, ibuf[i], obuf);
  return DL_OK;
}

#define EW_DEFINE(name)                                                        \
  DlStatus dl_infer_##name(DlGraph *g, DlNode *n) {                            \
    return ew_infer(g, n, DL_OP_##name);                                       \
  }                                                                            \
  DlStatus dl_lower_##name(KBuilder *kb, DlGraph *g, DlNode *n) {              \
    return ew_lower(kb, g, n, DL_OP_##name);                                   \
  }

EW_DEFINE(Relu)
EW_DEFINE(LeakyRelu)
EW_DEFINE(Sigmoid)
EW_DEFINE(HardSigmoid)
EW_DEFINE(HardSwish)
EW_DEFINE(Tanh)
EW_DEFINE(Erf)
EW_DEFINE(Gelu)
EW_DEFINE(Exp)
EW_DEFINE(Log)
EW_DEFINE(Sqrt)
EW_DEFINE(Reciprocal)
EW_DEFINE(Neg)
EW_DEFINE(Abs)
EW_DEFINE(Floor)
EW_DEFINE(Ceil)
EW_DEFINE(Not)
EW_DEFINE(Clip)
EW_DEFINE(Cast)
EW_DEFINE(Add)
EW_DEFINE(Sub)
EW_DEFINE(Mul)
EW_DEFINE(Div)
EW_DEFINE(Pow)
EW_DEFINE(Equal)
EW_DEFINE(Less)
EW_DEFINE(Greater)
EW_DEFINE(LessOrEqual)
EW_DEFINE(GreaterOrEqual)
EW_DEFINE(And)
EW_DEFINE(Or)
EW_DEFINE(Xor)
EW_DEFINE(Min)
EW_DEFINE(Max)
EW_DEFINE(Sum)
EW_DEFINE(Mean)
EW_DEFINE(Where)
