/*
 * simplify.c - algebraic simplification: a table of rewrite rules.
 *
 *   x+0, 0+x, x-0, x*1, 1*x, x/1, Identity, Dropout (inference),
 *   Cast to the same type                    -> x
 *   Transpose(Transpose(x, p1), p2)          -> Transpose(x, p1∘p2), or x
 *   reshape-like chains (Reshape, Flatten, Squeeze, Unsqueeze) that end
 *   in the shape they started from, or any of them to its own input shape
 *                                            -> x
 *   Reshape(<reshape-like>(x), s)            -> Reshape(x, s), or
 *                                               Reshape(x, c) c constant
 *   Reshape/Expand(x, s), s computed at run time but known symbolically
 *                                            -> the same with s constant
 *   ... or, with no constant form, s rebuilt from Shape slices of graph
 *   inputs (also ConstantOfShape)            -> Concat(Shape(in){start,end})
 *   Transpose moving only size-1 dims        -> Reshape(x, c)
 *   Div(x, c), c a float constant            -> Mul(x, 1/c)   (see below)
 *   Gemm(Transpose(a), b)                    -> Gemm(a, b, transA=1) (and B)
 *   MatMul(Transpose(a), b), 2-D             -> Gemm(a, b, transA=1) (and B)
 *   Add(MatMul(a, b), c), 2-D, c rank <= 2   -> Gemm(a, b, c)
 *
 * Div by a constant becomes Mul by its reciprocal always when every element
 * is a power of two (the result is then bit-exact), and at -O3 also for
 * other finite non-zero constants (at most one rounding more: a relative
 * error of about 1e-7 in f32, far inside the 1e-3 conformance tolerance).
 *
 * Every rule checks its whole pattern before changing anything and
 * declines otherwise (the shape rules re-infer the node and undo the
 * rewrite unless the dims come out the same).  A rule never changes a graph
 * output's value: where a result is replaced, dl_replace_uses keeps outputs
 * (pass.h).
 */
#include "passes/pass.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Replaces n's result `from` by `to` and removes n; declines when the
 * replacement is not possible. */
static bool forward(DlGraph *g, DlNode *n, DlValue *from, DlValue *to) {
  if (!from || !to || !dl_replace_uses(g, from, to))
    return false;
  dl_node_kill(g, n);
  return true;
}

/* ---- identities ---------------------------------------------------------- */

static bool binary_identity(DlGraph *g, DlNode *n, int const_side,
                            double unit) {
  DlValue *c = dl_in(g, n, const_side), *x = dl_in(g, n, 1 - const_side);
  DlValue *y = dl_out(g, n, 0);
  if (!c || !x || !y || n->nattr > 0 || !dl_value_is_const_scalar(c, unit))
    return false;
  return forward(g, n, y, x); /* same shape and dtype is checked there */
}

static bool rule_add_zero(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  return binary_identity(g, n, 1, 0.0) || binary_identity(g, n, 0, 0.0);
}

static bool rule_sub_zero(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  return binary_identity(g, n, 1, 0.0);
}

static bool rule_mul_one(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  return binary_identity(g, n, 1, 1.0) || binary_identity(g, n, 0, 1.0);
}

static bool rule_div_one(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  return binary_identity(g, n, 1, 1.0);
}

static bool rule_identity(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  return forward(g, n, dl_out(g, n, 0), dl_in(g, n, 0));
}

/* Dropout at inference is the identity when its mask is not used and
 * training_mode is absent or a constant false. */
static bool rule_dropout(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  DlValue *mask = dl_out(g, n, 1);
  if (mask && !dl_value_used_only_by(g, mask, n))
    return false;
  DlValue *train = dl_in(g, n, 2);
  if (train && !dl_value_is_const_scalar(train, 0.0) &&
      !(train->data && train->dtype == DL_BOOL &&
        dl_value_numel_const(train) == 1 && dl_value_elem(train, 0) == 0.0))
    return false;
  return forward(g, n, dl_out(g, n, 0), dl_in(g, n, 0));
}

static bool rule_cast_same(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)st;
  DlValue *x = dl_in(g, n, 0);
  if (!x || dl_attr_int(n, "to", -1) != (int64_t)x->dtype)
    return false;
  return forward(g, n, dl_out(g, n, 0), x);
}

/* ---- transposes ------------------------------------------------------- */

/* The permutation of a Transpose (default: reversed axes). */
static bool get_perm(const DlGraph *g, const DlNode *t, int64_t *perm,
                     int *rank) {
  const DlValue *x = dl_in(g, t, 0);
  if (!x || x->rank < 0)
    return false;
  const int64_t *p;
  int np = dl_attr_ints(t, "perm", &p);
  if (np < 0) {
    for (int i = 0; i < x->rank; i++)
      perm[i] = x->rank - 1 - i;
  } else {
    if (np != x->rank)
      return false;
    for (int i = 0; i < np; i++)
      perm[i] = p[i];
  }
  *rank = x->rank;
  return true;
}

static bool is_identity_perm(const int64_t *perm, int rank) {
  for (int i = 0; i < rank; i++)
    if (perm[i] != i)
      return false;
  return true;
}

static bool rule_transpose(DlGraph *g, DlNode *n, DlStatus *st) {
  int64_t p2[DL_MAX_RANK], p1[DL_MAX_RANK], q[DL_MAX_RANK];
  int r2, r1;
  if (!get_perm(g, n, p2, &r2))
    return false;
  if (is_identity_perm(p2, r2))
    return forward(g, n, dl_out(g, n, 0), dl_in(g, n, 0));
  DlNode *inner = dl_producer(g, dl_in(g, n, 0));
  if (!inner || inner->op != DL_OP_Transpose || !get_perm(g, inner, p1, &r1) ||
      r1 != r2)
    return false;
  for (int i = 0; i < r2; i++) {
    if (p2[i] < 0 || p2[i] >= r1)
      return false;
    q[i] = p1[p2[i]];
  }
  if (is_identity_perm(q, r2))
    return forward(g, n, dl_out(g, n, 0), dl_in(g, inner, 0));
  int in0 = inner->in[0];
  if (!dl_node_set_attr_ints(g, n, "perm", q, r2)) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return false;
  }
  n->in[0] = in0;
  *st = dl_node_infer(g, n);
  return true;
}

/* A 2-D Transpose swapping the two axes. */
static bool is_transpose_2d(const DlGraph *g, const DlNode *t) {
  int64_t p[DL_MAX_RANK];
  int r;
  return t && t->op == DL_OP_Transpose && get_perm(g, t, p, &r) && r == 2 &&
         p[0] == 1 && p[1] == 0;
}

static bool rule_gemm_transpose(DlGraph *g, DlNode *n, DlStatus *st) {
  for (int s = 0; s < 2; s++) {
    DlNode *t = dl_producer(g, dl_in(g, n, s));
    if (!is_transpose_2d(g, t))
      continue;
    const char *attr = s == 0 ? "transA" : "transB";
    int64_t tr = dl_attr_int(n, attr, 0);
    int in = t->in[0];
    if (!dl_node_set_attr_int(g, n, attr, tr ? 0 : 1)) {
      *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
      return false;
    }
    n->in[s] = in;
    *st = dl_node_infer(g, n);
    return true;
  }
  return false;
}

static bool rule_matmul_transpose(DlGraph *g, DlNode *n, DlStatus *st) {
  DlValue *a = dl_in(g, n, 0), *b = dl_in(g, n, 1);
  if (!a || !b || a->rank != 2 || b->rank != 2 || a->dtype != DL_F32 ||
      n->opset < 11 || n->nin != 2 || n->nattr > 0)
    return false;
  DlNode *ta = dl_producer(g, a), *tb = dl_producer(g, b);
  bool fa = is_transpose_2d(g, ta), fb = is_transpose_2d(g, tb);
  if (!fa && !fb)
    return false;
  n->op = DL_OP_Gemm;
  n->op_type = "Gemm";
  if ((fa && !dl_node_set_attr_int(g, n, "transA", 1)) ||
      (fb && !dl_node_set_attr_int(g, n, "transB", 1))) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return true;
  }
  if (fa)
    n->in[0] = ta->in[0];
  if (fb)
    n->in[1] = tb->in[0];
  *st = dl_node_infer(g, n);
  return true;
}

static bool has_graph_attr(const DlNode *n) {
  for (int i = 0; i < n->nattr; i++)
    if (n->attrs[i].kind == DL_ATTR_GRAPH || n->attrs[i].kind == DL_ATTR_GRAPHS)
      return true;
  return false;
}

/* Add(MatMul(a, b), c) with 2-D a, b and c of rank <= 2 -> Gemm(a, b, c);
 * likewise Add(Gemm(a, b), c) for a Gemm without C (beta becomes 1). */
static bool rule_matmul_bias(DlGraph *g, DlNode *n, DlStatus *st) {
  DlValue *y = dl_out(g, n, 0);
  if (!y || n->nattr > 0 || y->dtype != DL_F32)
    return false;
  for (int s = 0; s < 2; s++) {
    DlValue *m = dl_in(g, n, s), *c = dl_in(g, n, 1 - s);
    DlNode *mm = dl_producer(g, m);
    bool gemm =
        mm && mm->op == DL_OP_Gemm && !dl_in(g, mm, 2) && !has_graph_attr(mm);
    if (!mm || (mm->op != DL_OP_MatMul && !gemm) || has_graph_attr(mm) ||
        (mm->op == DL_OP_MatMul && mm->nin != 2) || !c || c->rank < 0 ||
        c->rank > 2 || c->dtype != DL_F32 || !dl_value_same_type(m, y) ||
        !dl_value_used_only_by(g, m, n))
      continue;
    DlValue *a = dl_in(g, mm, 0), *b = dl_in(g, mm, 1);
    if (!a || !b || a->rank != 2 || b->rank != 2)
      continue;
    int in[3] = {a->id, b->id, c->id};
    if (!dl_node_set_inputs(g, n, in, 3)) {
      *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
      return false;
    }
    if (gemm) {
      n->attrs = mm->attrs;
      n->nattr = mm->nattr;
      if (dl_attr(n, "beta") && !dl_node_set_attr_float(g, n, "beta", 1.0f)) {
        *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
        return false;
      }
    }
    n->op = DL_OP_Gemm;
    n->op_type = "Gemm";
    n->name = mm->name;
    dl_node_kill(g, mm);
    *st = dl_node_infer(g, n);
    return true;
  }
  return false;
}

/* ---- reshapes ---------------------------------------------------------- */

static bool is_reshape_like(const DlNode *n) {
  return n && (n->op == DL_OP_Reshape || n->op == DL_OP_Flatten ||
               n->op == DL_OP_Squeeze || n->op == DL_OP_Unsqueeze);
}

static bool to_reshape(DlGraph *g, DlNode *n, DlValue *x, DlStatus *st);

static bool rule_reshape_chain(DlGraph *g, DlNode *n, DlStatus *st) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  if (!x || !y)
    return false;
  /* to its own shape */
  if (dl_value_same_type(x, y))
    return forward(g, n, y, x);
  DlNode *inner = dl_producer(g, x);
  if (!is_reshape_like(inner))
    return false;
  /* back to where the chain started */
  DlValue *x0 = dl_in(g, inner, 0);
  if (x0 && dl_value_same_type(x0, y) && dl_can_replace_uses(g, y, x0))
    return forward(g, n, y, x0);
  /* Reshape of a reshape: reshape the original input directly, unless the
   * target shape copies dims from its input (a 0 without allowzero) */
  if (!x0)
    return false;
  DlDim s[DL_MAX_RANK];
  int ns = 0;
  bool direct = n->op == DL_OP_Reshape && n->nin >= 2 &&
                dl_value_known_dims(dl_in(g, n, 1), s, DL_MAX_RANK, &ns);
  if (direct && !dl_attr_int(n, "allowzero", 0))
    for (int i = 0; i < ns; i++) {
      int64_t c;
      if (dl_dim_is_const(&s[i], &c) && c == 0)
        direct = false;
    }
  if (direct) {
    n->in[0] = x0->id;
    return true;
  }
  /* otherwise one Reshape of the original input, with a constant target
   * written for it (Unsqueeze(Unsqueeze(x)) included) */
  return to_reshape(g, n, x0, st);
}

/* ---- shapes known at compile time ---------------------------------------
 *
 * A Reshape or Expand whose shape operand is computed at run time (Shape ->
 * Gather -> Unsqueeze -> Concat) but whose result shape inference already
 * knows, symbolically, gets a constant shape operand with the same meaning;
 * dce then removes the shape computation nobody reads any more.  Symbolic
 * dims are written the ways ONNX allows without naming them: 0 (copy the
 * input dim at the same position) and at most one -1 for Reshape, 1 (keep
 * the input dim) for Expand.  Every rewrite is re-inferred and kept only
 * when it gives exactly the dims (symbolic ones included) the node had. */

/* The state of a node and its outputs, to undo a trial rewrite. */
typedef struct Trial {
  DlOp op;
  const char *op_type;
  int nin, nattr, nout;
  int *in;
  DlAttr *attrs;
  int ndiags;
  DlValue out[4];
} Trial;

static bool trial_begin(DlGraph *g, DlNode *n, Trial *t) {
  if (n->nout > (int)DL_ARRAY_LEN(t->out))
    return false;
  t->op = n->op;
  t->op_type = n->op_type;
  t->nin = n->nin;
  t->in = n->in;
  t->nattr = n->nattr;
  t->attrs = n->attrs;
  t->nout = n->nout;
  t->ndiags = g->ctx->ndiags;
  for (int i = 0; i < n->nout; i++) {
    DlValue *v = dl_out(g, n, i);
    if (v)
      t->out[i] = *v;
  }
  return true;
}

/* Re-infers n: keeps the rewrite (true) when output 0 has the dtype and dims
 * it had before and no other output changed shape; otherwise restores n,
 * its outputs and the diagnostics (false).  *st is set on a memory error. */
static bool trial_end(DlGraph *g, DlNode *n, Trial *t, DlStatus *st) {
  DlStatus s = dl_node_infer(g, n);
  bool same = s == DL_OK;
  for (int i = 0; same && i < n->nout; i++) {
    DlValue *v = dl_out(g, n, i);
    if (v && !dl_value_same_type(v, &t->out[i]))
      same = false;
  }
  if (same)
    return true;
  if (s == DL_ERR_NOMEM) {
    *st = s;
    return false;
  }
  dl_diags_truncate(g->ctx, t->ndiags);
  n->op = t->op;
  n->op_type = t->op_type;
  n->nin = t->nin;
  n->in = t->in;
  n->nattr = t->nattr;
  n->attrs = t->attrs;
  for (int i = 0; i < n->nout; i++) {
    DlValue *v = dl_out(g, n, i);
    if (v)
      *v = t->out[i];
  }
  return false;
}

/* A new i64[count] constant named after n. */
static DlValue *shape_const(DlGraph *g, const DlNode *n, const int64_t *s,
                            int count, DlStatus *st) {
  int64_t len = count;
  const char *nm = dl_arena_printf(&g->ctx->arena, "%s_shape",
                                   n->name && *n->name ? n->name : "n");
  DlValue *c =
      nm ? dl_const_new(g, nm, DL_I64, 1, &len, count ? s : (int64_t[1]){0})
         : NULL;
  if (!c)
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  return c;
}

/* The constant Reshape target taking x to y's dims: constant dims as they
 * are, 0 where y copies x's dim at the same position (not with allowzero),
 * one -1 for what is left; false when that is not enough. */
static bool reshape_target(const DlValue *x, const DlValue *y, bool allowzero,
                           int64_t *s) {
  if (x->rank < 0 || y->rank < 0 || y->rank > DL_MAX_RANK)
    return false;
  int minus = -1;
  bool zero = false;
  for (int i = 0; i < y->rank; i++) {
    int64_t c;
    bool copy =
        !allowzero && i < x->rank && dl_dim_eq(&x->dims[i], &y->dims[i]);
    if (dl_dim_is_const(&y->dims[i], &c)) {
      if (c < 0)
        return false;
      zero |= c == 0;
      if (c == 0 && !allowzero && !copy)
        return false; /* 0 would copy a dim, not mean 0 */
      s[i] = c;
    } else if (copy) {
      s[i] = 0;
    } else if (minus < 0) {
      minus = i;
      s[i] = -1;
    } else {
      return false;
    }
  }
  return !(zero && minus >= 0); /* -1 next to a 0 dim is ambiguous */
}

/* Reshape(x, s), s computed at run time, y fully inferred ->
 * Reshape(x, constant). */
static bool rule_reshape_shape(DlGraph *g, DlNode *n, DlStatus *st) {
  DlValue *x = dl_in(g, n, 0), *s = dl_in(g, n, 1), *y = dl_out(g, n, 0);
  int64_t t[DL_MAX_RANK];
  Trial tr;
  if (!x || !s || !y || s->data || n->nout != 1 ||
      !reshape_target(x, y, dl_attr_int(n, "allowzero", 0) != 0, t) ||
      !trial_begin(g, n, &tr))
    return false;
  DlValue *c = shape_const(g, n, t, y->rank, st);
  if (!c)
    return false;
  int in[2] = {x->id, c->id};
  if (!dl_node_set_inputs(g, n, in, 2)) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return false;
  }
  return trial_end(g, n, &tr, st);
}

/* Expand(x, s), s computed at run time, y fully inferred ->
 * Expand(x, constant): y's constant dims, and 1 where y keeps x's dim. */
static bool rule_expand_shape(DlGraph *g, DlNode *n, DlStatus *st) {
  DlValue *x = dl_in(g, n, 0), *s = dl_in(g, n, 1), *y = dl_out(g, n, 0);
  if (!x || !s || !y || s->data || x->rank < 0 || y->rank < x->rank ||
      y->rank > DL_MAX_RANK || n->nout != 1)
    return false;
  int64_t t[DL_MAX_RANK];
  for (int i = 0; i < y->rank; i++) {
    int j = i - (y->rank - x->rank);
    int64_t c;
    if (dl_dim_is_const(&y->dims[i], &c))
      t[i] = c;
    else if (j >= 0 && dl_dim_eq(&x->dims[j], &y->dims[i]))
      t[i] = 1;
    else
      return false;
  }
  Trial tr;
  if (!trial_begin(g, n, &tr))
    return false;
  DlValue *c = shape_const(g, n, t, y->rank, st);
  if (!c)
    return false;
  int in[2] = {x->id, c->id};
  if (!dl_node_set_inputs(g, n, in, 2)) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return false;
  }
  return trial_end(g, n, &tr, st);
}

/* Turns n (any op with data input 0 and one output that is that input's
 * elements in order) into Reshape(x, constant); false when no constant
 * target exists or re-inference disagrees. */
static bool to_reshape(DlGraph *g, DlNode *n, DlValue *x, DlStatus *st) {
  DlValue *y = dl_out(g, n, 0);
  int64_t t[DL_MAX_RANK];
  Trial tr;
  if (!x || !y || n->nout != 1 || n->opset < 5 || (n->domain && *n->domain) ||
      !reshape_target(x, y, false, t) || !trial_begin(g, n, &tr))
    return false;
  DlValue *c = shape_const(g, n, t, y->rank, st);
  if (!c)
    return false;
  int in[2] = {x->id, c->id};
  if (!dl_node_set_inputs(g, n, in, 2)) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return false;
  }
  n->op = DL_OP_Reshape;
  n->op_type = "Reshape";
  n->nattr = 0;
  n->attrs = NULL;
  return trial_end(g, n, &tr, st);
}

/* A Transpose that only moves size-1 dims keeps the elements in order:
 * Reshape (which the storage plan turns into an alias). */
static bool rule_transpose_unit(DlGraph *g, DlNode *n, DlStatus *st) {
  int64_t p[DL_MAX_RANK];
  int r, last = -1;
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  if (!x || !y || !get_perm(g, n, p, &r) || has_graph_attr(n) || y->rank != r)
    return false;
  for (int i = 0; i < r; i++) {
    int64_t c;
    if (p[i] < 0 || p[i] >= r)
      return false;
    if (dl_dim_is_const(&x->dims[p[i]], &c) && c == 1)
      continue;
    if (p[i] < last)
      return false;
    last = (int)p[i];
  }
  return to_reshape(g, n, x, st);
}

/* A shape operand that stays a run-time value (ConstantOfShape [seq, seq],
 * a Reshape with two symbolic dims out of place) but whose elements are
 * all constants or dims of graph inputs is rebuilt from those inputs
 * directly: Shape(input, start, end) slices and constants joined by one
 * Concat.  That replaces Shape -> Gather -> Unsqueeze -> Concat chains
 * rooted at intermediate values, and cse then merges the copies (the
 * same slice of the same input) across the model. */

static bool is_input_shape(const DlGraph *g, const DlValue *v) {
  DlNode *p = dl_producer(g, v);
  DlValue *u = p && p->op == DL_OP_Shape ? dl_in(g, p, 0) : NULL;
  return u && u->is_input;
}

/* s already has that form (or is a constant). */
static bool shape_rebuilt(const DlGraph *g, const DlValue *s) {
  if (s->data || is_input_shape(g, s))
    return true;
  DlNode *p = dl_producer(g, s);
  if (!p || p->op != DL_OP_Concat)
    return false;
  for (int i = 0; i < p->nin; i++) {
    DlValue *v = dl_in(g, p, i);
    if (!v || !(v->data || is_input_shape(g, v)))
      return false;
  }
  return true;
}

/* Graph input and axis holding dim d. */
static bool find_input_dim(const DlGraph *g, const DlDim *d, int *u, int *j) {
  for (int i = 0; i < g->ninputs; i++) {
    const DlValue *v = g->values[g->inputs[i]];
    for (int a = 0; a < v->rank; a++)
      if (dl_dim_eq(&v->dims[a], d)) {
        *u = v->id;
        *j = a;
        return true;
      }
  }
  return false;
}

typedef struct ShapePart {
  int u; /* graph input, or -1 for constants */
  int start, end;
  int64_t c[DL_MAX_RANK];
} ShapePart;

static bool rule_shape_from_inputs(DlGraph *g, DlNode *n, DlStatus *st) {
  int slot = n->op == DL_OP_ConstantOfShape ? 0 : 1;
  DlValue *s = dl_in(g, n, slot);
  DlDim el[DL_MAX_RANK];
  int cnt = 0;
  if (!s || s->dtype != DL_I64 || s->rank != 1 || !s->symval || n->opset < 15 ||
      (n->domain && *n->domain) || shape_rebuilt(g, s) ||
      !dl_value_known_dims(s, el, DL_MAX_RANK, &cnt) || cnt < 1)
    return false;
  ShapePart parts[DL_MAX_RANK];
  int np = 0;
  for (int i = 0; i < cnt; i++) {
    int64_t c;
    int u = -1, j = 0;
    if (dl_dim_is_const(&el[i], &c)) {
      if (np == 0 || parts[np - 1].u >= 0)
        parts[np++] = (ShapePart){.u = -1, .start = 0, .end = 0};
      parts[np - 1].c[parts[np - 1].end++] = c;
    } else if (find_input_dim(g, &el[i], &u, &j)) {
      ShapePart *p = np ? &parts[np - 1] : NULL;
      if (p && p->u == u && p->end == j)
        p->end++;
      else
        parts[np++] = (ShapePart){.u = u, .start = j, .end = j + 1};
    } else {
      return false;
    }
  }
  int ids[DL_MAX_RANK];
  DlNode *made[DL_MAX_RANK + 1];
  int nmade = 0;
  const char *base = n->name && *n->name ? n->name : "n";
  DlArena *a = &g->ctx->arena;
  for (int k = 0; k < np; k++) {
    ShapePart *p = &parts[k];
    DlValue *v = NULL;
    if (p->u < 0) {
      int64_t len = p->end;
      const char *nm = dl_arena_printf(a, "%s_dims%d", base, k);
      v = nm ? dl_const_new(g, nm, DL_I64, 1, &len, p->c) : NULL;
    } else {
      DlNode *sh = dl_node_insert_before(
          g, n, DL_OP_Shape, dl_arena_printf(a, "%s_shape%d", base, k), 1, 1);
      if (sh) {
        made[nmade++] = sh;
        sh->in[0] = p->u;
        v = dl_node_new_output(g, sh, 0, NULL);
        if (v && (!dl_node_set_attr_int(g, sh, "start", p->start) ||
                  !dl_node_set_attr_int(g, sh, "end", p->end)))
          v = NULL;
        if (v && (*st = dl_node_infer(g, sh)) != DL_OK)
          return true;
      }
    }
    if (!v) {
      *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
      return true;
    }
    ids[k] = v->id;
  }
  DlValue *r = g->values[ids[0]];
  if (np > 1) {
    DlNode *cat = dl_node_insert_before(
        g, n, DL_OP_Concat, dl_arena_printf(a, "%s_dims", base), np, 1);
    r = cat ? dl_node_new_output(g, cat, 0, NULL) : NULL;
    if (!r || !dl_node_set_attr_int(g, cat, "axis", 0)) {
      *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
      return true;
    }
    made[nmade++] = cat;
    for (int k = 0; k < np; k++)
      cat->in[k] = ids[k];
    if ((*st = dl_node_infer(g, cat)) != DL_OK)
      return true;
  }
  /* the rebuilt operand must hold exactly the same elements */
  bool same = r->symval && r->rank == 1 && dl_value_same_type(r, s);
  for (int i = 0; same && i < cnt; i++)
    same = dl_dim_eq(&r->symval[i], &el[i]);
  if (!same) {
    for (int k = 0; k < nmade; k++)
      dl_node_kill(g, made[k]);
    return false;
  }
  n->in[slot] = r->id;
  *st = dl_node_infer(g, n);
  return true;
}

/* ---- Div by a constant --------------------------------------------------- */

static bool power_of_two(double v) {
  int e;
  double m = frexp(fabs(v), &e);
  return m == 0.5;
}

static bool rule_div_const(DlGraph *g, DlNode *n, DlStatus *st) {
  DlValue *x = dl_in(g, n, 0), *c = dl_in(g, n, 1), *y = dl_out(g, n, 0);
  if (!x || !c || !y || !c->data || n->nattr > 0 ||
      (c->dtype != DL_F32 && c->dtype != DL_F64) || c->dtype != x->dtype)
    return false;
  int64_t numel = dl_value_numel_const(c);
  if (numel <= 0 || numel > 65536)
    return false;
  bool o3 = g->ctx->opt.opt_level >= 3;
  for (int64_t k = 0; k < numel; k++) {
    double v = dl_value_elem(c, k);
    if (!isfinite(v) || v == 0.0)
      return false;
    double r = 1.0 / v;
    if (c->dtype == DL_F32 && !(isnormal((float)r) && isnormal((float)v)))
      return false;
    if (!isnormal(r) || (!power_of_two(v) && !o3))
      return false;
  }
  int64_t dims[DL_MAX_RANK];
  for (int i = 0; i < c->rank; i++)
    if (!dl_dim_is_const(&c->dims[i], &dims[i]))
      return false;
  size_t es = dl_dtype_size(c->dtype);
  void *data = dl_arena_alloc(&g->ctx->arena, (size_t)numel * es);
  if (!data) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return false;
  }
  for (int64_t k = 0; k < numel; k++) {
    if (c->dtype == DL_F32)
      ((float *)data)[k] = 1.0f / ((const float *)c->data)[k];
    else
      ((double *)data)[k] = 1.0 / ((const double *)c->data)[k];
  }
  const char *nm =
      dl_arena_printf(&g->ctx->arena, "%s_recip", c->name ? c->name : "c");
  DlValue *r = dl_const_new(g, nm, c->dtype, c->rank, dims, data);
  if (!r) {
    *st = dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    return false;
  }
  n->op = DL_OP_Mul;
  n->op_type = "Mul";
  n->in[1] = r->id;
  *st = dl_node_infer(g, n);
  return true;
}

static const DlRule RULES[] = {
    {"add_zero", DL_OP_Add, rule_add_zero},
    {"matmul_bias", DL_OP_Add, rule_matmul_bias},
    {"sub_zero", DL_OP_Sub, rule_sub_zero},
    {"mul_one", DL_OP_Mul, rule_mul_one},
    {"div_one", DL_OP_Div, rule_div_one},
    {"div_const", DL_OP_Div, rule_div_const},
    {"identity", DL_OP_Identity, rule_identity},
    {"dropout", DL_OP_Dropout, rule_dropout},
    {"cast_same", DL_OP_Cast, rule_cast_same},
    {"transpose", DL_OP_Transpose, rule_transpose},
    {"gemm_transpose", DL_OP_Gemm, rule_gemm_transpose},
    {"matmul_transpose", DL_OP_MatMul, rule_matmul_transpose},
    {"reshape_chain", DL_OP_Reshape, rule_reshape_chain},
    {"reshape_shape", DL_OP_Reshape, rule_reshape_shape},
    {"expand_shape", DL_OP_Expand, rule_expand_shape},
    {"transpose_unit", DL_OP_Transpose, rule_transpose_unit},
    {"reshape_shape_inputs", DL_OP_Reshape, rule_shape_from_inputs},
    {"expand_shape_inputs", DL_OP_Expand, rule_shape_from_inputs},
    {"constantofshape_inputs", DL_OP_ConstantOfShape, rule_shape_from_inputs},
    {"flatten_chain", DL_OP_Flatten, rule_reshape_chain},
    {"squeeze_chain", DL_OP_Squeeze, rule_reshape_chain},
    {"unsqueeze_chain", DL_OP_Unsqueeze, rule_reshape_chain},
};

DlStatus dl_pass_simplify_fn(DlGraph *g, bool *changed) {
  return dl_rewrite(g, RULES, (int)DL_ARRAY_LEN(RULES), changed);
}
