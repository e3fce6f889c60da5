/*
 * horizontal.c - products that read the same input with constant weights
 * become one product on concatenated weights and a Split.
 *
 *   Y1 = X @ W1 (+ b1)       Ycat = X @ [W1 | W2 | W3] (+ [b1 | b2 | b3])
 *   Y2 = X @ W2 (+ b2)  -->  Y1, Y2, Y3 = Split(Ycat, [N1, N2, N3], axis=-1)
 *   Y3 = X @ W3 (+ b3)
 *
 * Branches are MatMuls, Gemms or 1x1 Convs:
 *  - MatMul: constant 2-D weights [K, N].  A bias Add right after it (a
 *    constant [N] read by nothing else) is concatenated too (zeros for a
 *    branch without), so that epilogue fusion later puts one bias Add into
 *    the merged product.  The Q, K and V projections of attention have this
 *    form.
 *  - Gemm: the branches agree in transA, transB, alpha and beta and carry a
 *    constant [N] bias C or none.
 *  - Conv: a constant [M, C, 1, ..] weight, group 1, dilations 1, pads 0,
 *    the same strides and auto_pad; the weights concatenate on axis 0, the
 *    biases too (zeros for a branch without), and the Split is on axis 1.
 *    The 1x1 reductions at the head of an Inception block are the example.
 *
 * Direct form: when the product is a MatMul and every branch width is a
 * multiple of the register block (MM_NR, ops/gemm_block.h), there is no
 * Split: the merged MatMul has one output per branch and the attribute
 * "dlcc.split" = [N1, N2, N3], and each register block of columns stores
 * straight into its branch's output (ops/matmul.c).  The merged bias Add
 * and the carried activation become its epilogue here (fuse_epilogue
 * leaves products with several outputs alone); the epilogue sees the
 * merged column, so the concatenated bias applies unchanged:
 *
 *   Y1, Y2, Y3 = MatMul(X, [W1 | W2 | W3], [b1 | b2 | b3])
 *                  {dlcc.split = [N1, N2, N3], dlcc.epilogue = Add(+Relu)}
 *
 * Activations are carried along: when every branch's result is read only
 * by the same unary activation (same op, attributes and constant operands,
 * one of those fuse_epilogue can fuse), one activation is applied to the
 * merged result before the Split and the branch activations die, so the
 * merged product still gets the activation as its epilogue.  Branches only
 * merge with branches carrying the same activation (or none); the others
 * form groups of their own when the pass reaches them.
 *
 * A group merges only where the cost model (hz_pays) says it pays.
 */
#include "ops/gemm_block.h"
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <string.h>

#define HZ_MAX 16

/* ---- cost model --------------------------------------------------------
 *
 * Counted in bytes of memory traffic for one run (symbolic dims count as
 * HZ_SYM_DIM):
 *
 *   saved = (k - 1) * X              the shared input is streamed once, not
 *                                    k times
 *         + (blocks_apart - blocks_merged) * X
 *                                    the products read X once per register
 *                                    block of HZ_MM_BLOCK columns (MatMul,
 *                                    Gemm) or HZ_CONV_BLOCK output channels
 *                                    (Conv); narrow branches waste a partly
 *                                    filled block each, the merged product
 *                                    at most one
 *         + (k - 2) * HZ_KERNEL_BYTES  k kernels become two (product, Split)
 *   cost  = 2 * Y                    the Split reads and writes every output
 *                                    element once; 0 in the direct form
 *                                    (no Split), so a direct group always
 *                                    merges
 *
 * where X is the shared input and Y the merged output.  The group merges
 * when saved > HZ_MARGIN * cost.  Merging never changes the arithmetic, so
 * this only weighs traffic and kernel count, and only a clear margin is
 * worth rearranging kernels for.  Measured at -O3 (one thread, merged
 * against apart): 1x1 Conv groups of Inception with saved/cost 1.2 to 2.0
 * (13x13 and smaller maps) ran 10 to 45% faster merged; at 1.1 and below
 * (the 27x27 and 28x28 blocks) merged was no faster and up to 30% slower;
 * MatMul groups like BERT's Q/K/V (saved/cost 0.35 to 0.42) ran 4 to 11%
 * slower merged with the Split; they now take the direct form.  The
 * figures are in docs/passes.md (horizontal).
 */

/* Stand-in size of a symbolic dim (a batch or sequence length). */
#define HZ_SYM_DIM 64
/* Fixed cost of one kernel (loop set-up, weights and caches turning over)
 * expressed as bytes of traffic. */
#define HZ_KERNEL_BYTES (16 * 1024)
/* Columns of a MatMul/Gemm register block (ops/gemm_block.h). */
#define HZ_MM_BLOCK MM_NR
/* Output channels of a Conv register block (CONV_MR in ops/nn.c). */
#define HZ_CONV_BLOCK 4
/* How much the saving must exceed the cost. */
#define HZ_MARGIN 1.15

typedef struct HzBranch {
  DlNode *mm;  /* the MatMul, Gemm or Conv */
  DlNode *add; /* absorbed bias Add (MatMul), or NULL */
  DlNode *act; /* carried activation, or NULL */
  const DlValue *bias;
  int64_t n; /* columns (MatMul, Gemm) or output channels (Conv) */
} HzBranch;

static bool hz_float(DlDType t) {
  return t == DL_F32 || t == DL_F64;
}

static bool hz_const_value(const DlValue *v) {
  return v && v->data && !v->is_input && v->producer < 0;
}

/* Elements of v with symbolic dims counted as HZ_SYM_DIM; -1 if unknown. */
static double hz_numel(const DlValue *v) {
  if (!v || v->rank < 0)
    return -1;
  double e = 1;
  for (int i = 0; i < v->rank; i++) {
    int64_t d;
    e *= dl_dim_is_const(&v->dims[i], &d) ? (double)d : HZ_SYM_DIM;
  }
  return e;
}

static int64_t hz_ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/* The merged product writes the branches' outputs itself (no Split): a
 * MatMul whose branch widths are all multiples of the register block. */
static bool hz_direct(const HzBranch *br, int nb) {
  if (br[0].mm->op != DL_OP_MatMul || nb > MM_MAX_SPLIT)
    return false;
  for (int i = 0; i < nb; i++)
    if (br[i].n % MM_NR != 0)
      return false;
  return true;
}

/* True when merging the nb branches pays (see the comment above). */
static bool hz_pays(const DlGraph *g, const HzBranch *br, int nb) {
  const DlNode *m0 = br[0].mm;
  const DlValue *x = dl_in(g, m0, 0), *y0 = dl_out(g, m0, 0);
  double xe = hz_numel(x), ye0 = hz_numel(y0);
  if (xe < 0 || ye0 < 0 || br[0].n <= 0)
    return false;
  int64_t blk = m0->op == DL_OP_Conv ? HZ_CONV_BLOCK : HZ_MM_BLOCK;
  int64_t total = 0, apart = 0;
  for (int i = 0; i < nb; i++) {
    total += br[i].n;
    apart += hz_ceil_div(br[i].n, blk);
  }
  double es = (double)dl_dtype_size(x->dtype);
  double xb = xe * es, yb = ye0 / (double)br[0].n * (double)total * es;
  double saved = (double)(nb - 1) * xb +
                 (double)(apart - hz_ceil_div(total, blk)) * xb +
                 (double)(nb - 2) * HZ_KERNEL_BYTES;
  double cost = hz_direct(br, nb) ? 0 : 2 * yb;
  return saved > HZ_MARGIN * cost;
}

/* ---- candidates ---------------------------------------------------------- */

/* Columns of a MatMul/Gemm with constant 2-D weights, or -1; *k: rows of
 * the weights (the reduction). */
static int64_t hz_cols(const DlGraph *g, const DlNode *n, int64_t *k) {
  const DlValue *a = dl_in(g, n, 0), *w = dl_in(g, n, 1);
  if (n->nout != 1 || !a || !w || !w->data || w->rank != 2 || a->rank < 2 ||
      !hz_float(a->dtype) || w->dtype != a->dtype)
    return -1;
  int64_t r0, r1;
  if (!dl_dim_is_const(&w->dims[0], &r0) || !dl_dim_is_const(&w->dims[1], &r1))
    return -1;
  bool tb = n->op == DL_OP_Gemm && dl_attr_int(n, "transB", 0) != 0;
  *k = tb ? r1 : r0;
  int64_t cols = tb ? r0 : r1;
  if (n->op == DL_OP_Gemm) {
    const DlValue *c = dl_in(g, n, 2);
    if (a->rank != 2)
      return -1;
    if (c && !(c->data && c->rank == 1 && c->dtype == a->dtype &&
               dl_value_numel_const(c) == cols))
      return -1;
  }
  return cols;
}

/* An INTS attribute whose entries (if present) all equal v. */
static bool hz_ints_all(const DlNode *n, const char *name, int64_t v) {
  const int64_t *p;
  int c = dl_attr_ints(n, name, &p);
  for (int i = 0; i < c; i++)
    if (p[i] != v)
      return false;
  return true;
}

/* Output channels of a 1x1 Conv with constant weights (group 1, dilations
 * 1, pads 0), or -1; *k: its input channels. */
static int64_t hz_conv_chans(const DlGraph *g, const DlNode *n, int64_t *k) {
  const DlValue *x = dl_in(g, n, 0), *w = dl_in(g, n, 1), *b = dl_in(g, n, 2);
  const DlValue *y = dl_out(g, n, 0);
  if (n->nout != 1 || n->nin > 3 || !x || !w || !y || !w->data || x->rank < 3 ||
      w->rank != x->rank || y->rank != x->rank || !hz_float(x->dtype) ||
      w->dtype != x->dtype)
    return -1;
  if (dl_attr_int(n, "group", 1) != 1 || !hz_ints_all(n, "dilations", 1) ||
      !hz_ints_all(n, "pads", 0) || !hz_ints_all(n, "kernel_shape", 1))
    return -1;
  int64_t m, c;
  if (!dl_dim_is_const(&w->dims[0], &m) || !dl_dim_is_const(&w->dims[1], &c))
    return -1;
  for (int i = 2; i < w->rank; i++) {
    int64_t d;
    if (!dl_dim_is_const(&w->dims[i], &d) || d != 1)
      return -1;
  }
  int64_t xc;
  if (!dl_dim_is_const(&x->dims[1], &xc) || xc != c)
    return -1;
  if (b && !(b->data && b->rank == 1 && b->dtype == x->dtype &&
             dl_value_numel_const(b) == m))
    return -1;
  *k = c;
  return m;
}

/* Width of a candidate branch (columns or output channels), or -1. */
static int64_t hz_width(const DlGraph *g, const DlNode *n, int64_t *k) {
  if (n->dead || dl_has_epilogue(n))
    return -1;
  switch (n->op) {
  case DL_OP_MatMul:
  case DL_OP_Gemm:
    return hz_cols(g, n, k);
  case DL_OP_Conv:
    return hz_conv_chans(g, n, k);
  default:
    return -1;
  }
}

static bool hz_str_eq(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

/* An INTS attribute with default v for absent entries. */
static bool hz_ints_eq(const DlNode *a, const DlNode *b, const char *name,
                       int64_t v, int rank) {
  const int64_t *pa, *pb;
  int ca = dl_attr_ints(a, name, &pa), cb = dl_attr_ints(b, name, &pb);
  for (int i = 0; i < rank; i++)
    if ((i < ca ? pa[i] : v) != (i < cb ? pb[i] : v))
      return false;
  return true;
}

/* c can join the group of n (same op and reduction already checked). */
static bool hz_compatible(const DlGraph *g, const DlNode *n, const DlNode *c) {
  const DlValue *wn = dl_in(g, n, 1), *wc = dl_in(g, c, 1);
  if (wn->dtype != wc->dtype)
    return false;
  if (n->op == DL_OP_Gemm)
    return dl_attr_int(n, "transA", 0) == dl_attr_int(c, "transA", 0) &&
           dl_attr_int(n, "transB", 0) == dl_attr_int(c, "transB", 0) &&
           dl_attr_float(n, "alpha", 1.0f) == dl_attr_float(c, "alpha", 1.0f) &&
           dl_attr_float(n, "beta", 1.0f) == dl_attr_float(c, "beta", 1.0f) &&
           (dl_in(g, c, 2) != NULL) == (dl_in(g, n, 2) != NULL);
  if (n->op == DL_OP_Conv) {
    const DlValue *yn = dl_out(g, n, 0), *yc = dl_out(g, c, 0);
    if (wn->rank != wc->rank || yn->rank != yc->rank)
      return false;
    for (int i = 2; i < yn->rank; i++)
      if (!dl_dim_eq(&yn->dims[i], &yc->dims[i]))
        return false;
    return hz_ints_eq(n, c, "strides", 1, wn->rank - 2) &&
           hz_str_eq(dl_attr_string(n, "auto_pad", "NOTSET"),
                     dl_attr_string(c, "auto_pad", "NOTSET"));
  }
  return true;
}

/* The single live reader of value id v at or after position from, or NULL
 * (the caller checked that v has exactly one use). */
static DlNode *hz_reader(const DlGraph *g, int v, int from) {
  for (int k = from; k < g->nnodes; k++) {
    DlNode *c = g->nodes[k];
    if (c->dead)
      continue;
    for (int i = 0; i < c->nin; i++)
      if (c->in[i] == v)
        return c;
  }
  return NULL;
}

/* A bias Add reading only y and a constant [n]: returns its constant. */
static const DlValue *hz_bias_add(const DlGraph *g, const int *uses,
                                  const bool *isout, const DlValue *y,
                                  int64_t n, DlNode **add) {
  if (uses[y->id] != 1 || isout[y->id])
    return NULL;
  DlNode *c = hz_reader(g, y->id, y->producer + 1);
  if (!c || c->op != DL_OP_Add || c->nin != 2 || c->nout != 1)
    return NULL;
  int i = c->in[0] == y->id ? 0 : 1;
  const DlValue *b = dl_in(g, c, 1 - i), *o = dl_out(g, c, 0);
  if (!b || !o || !b->data || b->rank != 1 || b->dtype != y->dtype ||
      dl_value_numel_const(b) != n || o->rank != y->rank)
    return NULL;
  *add = c;
  return b;
}

/* Activations fuse_epilogue can fuse into a product. */
static bool hz_act_op(DlOp op) {
  switch (op) {
  case DL_OP_Relu:
  case DL_OP_LeakyRelu:
  case DL_OP_Clip:
  case DL_OP_Sigmoid:
  case DL_OP_HardSigmoid:
  case DL_OP_HardSwish:
  case DL_OP_Tanh:
  case DL_OP_Gelu:
    return true;
  default:
    return false;
  }
}

/* The activation that alone reads y (input 0; further inputs constant),
 * or NULL. */
static DlNode *hz_act(const DlGraph *g, const int *uses, const bool *isout,
                      const DlValue *y) {
  if (uses[y->id] != 1 || isout[y->id])
    return NULL;
  DlNode *c = hz_reader(g, y->id, y->producer + 1);
  if (!c || !hz_act_op(c->op) || c->nout != 1 || c->nin < 1 ||
      c->in[0] != y->id)
    return NULL;
  const DlValue *o = dl_out(g, c, 0);
  if (!o || !dl_value_same_type(o, y))
    return NULL;
  for (int i = 1; i < c->nin; i++) {
    const DlValue *v = dl_in(g, c, i);
    if (v &&
        (v->id == y->id || !hz_const_value(v) || dl_value_numel_const(v) < 0))
      return NULL;
  }
  return c;
}

static bool hz_same_const(const DlValue *a, const DlValue *b) {
  if (a == b)
    return true;
  if (!a || !b || !dl_value_same_type(a, b))
    return false;
  int64_t n = dl_value_numel_const(a);
  return n >= 0 &&
         memcmp(a->data, b->data, (size_t)n * dl_dtype_size(a->dtype)) == 0;
}

/* Both NULL, or the same activation. */
static bool hz_same_act(const DlGraph *g, const DlNode *a, const DlNode *b) {
  if (!a || !b)
    return a == b;
  if (a->op != b->op || a->nin != b->nin || !dl_attrs_equal(a, b) ||
      !hz_str_eq(a->domain, b->domain))
    return false;
  for (int i = 1; i < a->nin; i++)
    if (!hz_same_const(dl_in(g, a, i), dl_in(g, b, i)))
      return false;
  return true;
}

/* ---- the rewrite --------------------------------------------------------- */

static DlValue *hz_const(DlGraph *g, DlDType t, int rank, const DlDim *dims,
                         size_t bytes) {
  DlValue *v = dl_value_new(g, NULL, t);
  if (!v)
    return NULL;
  dl_value_set_shape(v, rank, dims);
  v->data = dl_arena_alloc(&g->ctx->arena, bytes ? bytes : 1);
  return v->data ? v : NULL;
}

static DlStatus hz_infer(DlGraph *g, DlNode *n) {
  const DlOpInfo *info = dl_op_info(n->op);
  if (!info || !info->infer)
    return DL_UNREACHABLE(g->ctx);
  return info->infer(g, n);
}

/* A new node like `like` (op, domain, opset, attributes) with fresh output
 * value; input slots are set by the caller. */
static DlNode *hz_node_like(DlGraph *g, const DlNode *like, const char *name,
                            int nin, DlValue **out) {
  DlNode *n = dl_node_new(g, like->op, like->op_type, name, nin, 1);
  DlValue *v = dl_value_new(g, NULL, dl_out(g, like, 0)->dtype);
  if (!n || !v)
    return NULL;
  n->domain = like->domain;
  n->opset = like->opset;
  n->nattr = like->nattr;
  n->attrs = like->attrs;
  n->out[0] = v->id;
  v->producer = n->id;
  *out = v;
  return n;
}

/* The concatenated weights: [K, total] (MatMul, Gemm), [total, K] (Gemm
 * with transB) or [total, C, 1, ..] (Conv). */
static DlValue *hz_weights(DlGraph *g, const HzBranch *br, int nb,
                           int64_t total) {
  const DlNode *m0 = br[0].mm;
  const DlValue *w0 = dl_in(g, m0, 1);
  DlDType t = w0->dtype;
  size_t es = dl_dtype_size(t);
  bool rows = m0->op == DL_OP_Conv ||
              (m0->op == DL_OP_Gemm && dl_attr_int(m0, "transB", 0) != 0);
  int64_t k = 0;
  /* elements per output column/channel */
  if (m0->op == DL_OP_Conv)
    k = dl_value_numel_const(w0) / br[0].n;
  else
    dl_dim_is_const(&w0->dims[rows ? 1 : 0], &k);
  DlDim wd[DL_MAX_RANK];
  for (int i = 0; i < w0->rank; i++)
    wd[i] = w0->dims[i];
  wd[rows ? 0 : 1] = dl_dim_const(total);
  DlValue *wc = hz_const(g, t, w0->rank, wd, (size_t)(k * total) * es);
  if (!wc)
    return NULL;
  int64_t off = 0;
  char *dst = wc->data;
  for (int i = 0; i < nb; i++) {
    const char *src = dl_in(g, br[i].mm, 1)->data;
    if (rows) {
      memcpy(dst + (size_t)(off * k) * es, src, (size_t)(br[i].n * k) * es);
    } else {
      for (int64_t r = 0; r < k; r++)
        memcpy(dst + (size_t)(r * total + off) * es,
               src + (size_t)(r * br[i].n) * es, (size_t)br[i].n * es);
    }
    off += br[i].n;
  }
  return wc;
}

/* The direct form: mm (one output ycat, read by the chain extra[0..] of
 * merged bias Add and activation) gets one output per branch, outs[i],
 * and the attribute "dlcc.split" with the branch widths; the chain becomes
 * its epilogue (it sees the merged column, so the concatenated bias
 * applies unchanged) and dies. */
static DlStatus hz_direct_form(DlGraph *g, DlNode *mm, DlValue *ycat,
                               DlNode **extra, int nextra, const int *outs,
                               const HzBranch *br, int nb) {
  DlCtx *ctx = g->ctx;
  DlArena *ar = &ctx->arena;
  int64_t *widths = dl_arena_alloc(ar, sizeof(int64_t) * (size_t)nb);
  int *out = dl_arena_alloc(ar, sizeof(int) * (size_t)nb);
  if (!widths || !out)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < nb; i++) {
    widths[i] = br[i].n;
    out[i] = outs[i];
  }
  if (nextra > 0) {
    DL_TRY(fu_attach_epilogue(g, mm, extra, nextra, ycat->id,
                              extra[nextra - 1]->out[0]));
    for (int j = 0; j < nextra; j++)
      g->values[extra[j]->out[0]]->producer = -1;
  }
  DlAttr sa;
  memset(&sa, 0, sizeof sa);
  sa.name = "dlcc.split";
  sa.kind = DL_ATTR_INTS;
  sa.n = nb;
  sa.ints = widths;
  DL_TRY(fu_add_attr(g, mm, &sa));
  ycat->producer = -1;
  mm->out = out;
  mm->nout = nb;
  for (int i = 0; i < nb; i++)
    g->values[out[i]]->producer = mm->id;
  return hz_infer(g, mm);
}

static DlStatus hz_merge(DlGraph *g, HzBranch *br, int nb) {
  DlCtx *ctx = g->ctx;
  DlNode *m0 = br[0].mm;
  const DlValue *x = dl_in(g, m0, 0);
  DlDType t = x->dtype;
  size_t es = dl_dtype_size(t);
  /* Gemm and Conv take the bias as an input; MatMul gets an Add */
  bool bias_in = m0->op == DL_OP_Gemm || m0->op == DL_OP_Conv;
  int64_t total = 0;
  bool any_bias = false;
  for (int i = 0; i < nb; i++) {
    total += br[i].n;
    any_bias |= br[i].bias != NULL;
  }
  DlValue *wc = hz_weights(g, br, nb, total);
  if (!wc)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  DlValue *bc = NULL;
  if (any_bias) {
    DlDim bd = dl_dim_const(total);
    bc = hz_const(g, t, 1, &bd, (size_t)total * es);
    if (!bc)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    int64_t off = 0;
    for (int i = 0; i < nb; i++) {
      if (br[i].bias)
        memcpy((char *)bc->data + (size_t)off * es, br[i].bias->data,
               (size_t)br[i].n * es);
      off += br[i].n;
    }
  }

  /* the split sizes (the Split form only) */
  bool direct = hz_direct(br, nb);
  DlValue *sp = NULL;
  if (!direct) {
    DlDim sd = dl_dim_const(nb);
    sp = hz_const(g, DL_I64, 1, &sd, sizeof(int64_t) * (size_t)nb);
    if (!sp)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nb; i++)
      ((int64_t *)sp->data)[i] = br[i].n;
  }

  /* the merged product (attributes of the first branch) */
  DlValue *ycat;
  DlNode *mm =
      hz_node_like(g, m0, m0->name, bias_in ? (any_bias ? 3 : 2) : 2, &ycat);
  if (!mm)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  mm->in[0] = x->id;
  mm->in[1] = wc->id;
  if (bias_in && bc)
    mm->in[2] = bc->id;
  DL_TRY(hz_infer(g, mm));
  DlValue *ysplit = ycat;
  DlNode *extra[2];
  int nextra = 0;
  if (bc && !bias_in) {
    DlNode *add = dl_node_new(
        g, DL_OP_Add, "Add",
        dl_arena_printf(&ctx->arena, "%s/merged_bias", m0->name), 2, 1);
    DlValue *v = dl_value_new(g, NULL, t);
    if (!add || !v)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    add->in[0] = ysplit->id;
    add->in[1] = bc->id;
    add->out[0] = v->id;
    v->producer = add->id;
    DL_TRY(hz_infer(g, add));
    ysplit = v;
    extra[nextra++] = add;
  }
  if (br[0].act) {
    const DlNode *a0 = br[0].act;
    DlValue *v;
    DlNode *act = hz_node_like(
        g, a0, dl_arena_printf(&ctx->arena, "%s/merged_act", m0->name), a0->nin,
        &v);
    if (!act)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    act->in[0] = ysplit->id;
    for (int i = 1; i < a0->nin; i++)
      act->in[i] = a0->in[i];
    DL_TRY(hz_infer(g, act));
    ysplit = v;
    extra[nextra++] = act;
  }
  /* the branches' last nodes hand their results to the Split (or the
   * merged product); every branch node dies */
  int first = br[0].mm->id;
  int outs[HZ_MAX];
  for (int i = 0; i < nb; i++) {
    DlNode *chain[3] = {br[i].mm, bias_in ? NULL : br[i].add, br[i].act};
    DlNode *last = NULL;
    for (int j = 0; j < 3; j++) {
      if (!chain[j])
        continue;
      if (last)
        g->values[last->out[0]]->producer = -1;
      last = chain[j];
      last->dead = true;
    }
    outs[i] = last->out[0];
    if (br[i].mm->id < first)
      first = br[i].mm->id;
  }
  if (direct) {
    DL_TRY(hz_direct_form(g, mm, ycat, extra, nextra, outs, br, nb));
    fu_move_node(g, mm->id, first);
    return DL_OK;
  }
  DlNode *split = dl_node_new(
      g, DL_OP_Split, "Split",
      dl_arena_printf(&ctx->arena, "%s/merged_split", m0->name), 2, nb);
  if (!split)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  if (split->opset < 13)
    split->opset = 13;
  DlAttr ax;
  memset(&ax, 0, sizeof ax);
  ax.name = "axis";
  ax.kind = DL_ATTR_INT;
  ax.i = m0->op == DL_OP_Conv ? 1 : ycat->rank - 1;
  DL_TRY(fu_add_attr(g, split, &ax));
  split->in[0] = ysplit->id;
  split->in[1] = sp->id;
  for (int i = 0; i < nb; i++) {
    split->out[i] = outs[i];
    g->values[outs[i]]->producer = split->id;
  }
  DL_TRY(hz_infer(g, split));
  /* move the new nodes to where the first branch was */
  fu_move_node(g, mm->id, first);
  for (int j = 0; j < nextra; j++)
    fu_move_node(g, extra[j]->id, first + 1 + j);
  fu_move_node(g, split->id, first + 1 + nextra);
  return DL_OK;
}

/* Fills b for the candidate c (width nc): absorbed bias and activation. */
static void hz_branch(const DlGraph *g, const FuUses *fu, DlNode *c, int64_t nc,
                      HzBranch *b) {
  memset(b, 0, sizeof *b);
  b->mm = c;
  b->n = nc;
  const DlValue *y = dl_out(g, c, 0);
  if (c->op == DL_OP_MatMul) {
    b->bias = hz_bias_add(g, fu->uses, fu->isout, y, nc, &b->add);
    if (b->add)
      y = dl_out(g, b->add, 0);
  } else {
    b->bias = dl_in(g, c, 2);
  }
  b->act = hz_act(g, fu->uses, fu->isout, y);
}

static DlStatus hz_try(DlGraph *g, DlNode *n, FuUses *fu, bool *done) {
  *done = false;
  int64_t k0;
  int64_t n0 = hz_width(g, n, &k0);
  if (n0 < 0)
    return DL_OK;
  DL_TRY(fu_uses(g, fu));
  if (fu->uses[n->in[0]] < 2)
    return DL_OK; /* nothing else reads the input */
  HzBranch br[HZ_MAX];
  int nb = 0;
  hz_branch(g, fu, n, n0, &br[nb++]);
  for (int pos = n->id + 1; pos < g->nnodes && nb < HZ_MAX; pos++) {
    DlNode *c = g->nodes[pos];
    if (c->dead || c->op != n->op || c->nin < 1 || c->in[0] != n->in[0])
      continue;
    int64_t kc, nc = hz_width(g, c, &kc);
    if (nc < 0 || kc != k0 || !hz_compatible(g, n, c))
      continue;
    HzBranch *b = &br[nb];
    hz_branch(g, fu, c, nc, b);
    if (!hz_same_act(g, br[0].act, b->act))
      continue;
    nb++;
  }
  if (nb < 2 || !hz_pays(g, br, nb))
    return DL_OK;
  DL_TRY(hz_merge(g, br, nb));
  *done = true;
  return DL_OK;
}

DlStatus dl_pass_horizontal(DlGraph *g, bool *changed) {
  FuUses fu = {0};
  for (int pos = 0; pos < g->nnodes; pos++) {
    DlNode *n = g->nodes[pos];
    if (n->dead ||
        (n->op != DL_OP_MatMul && n->op != DL_OP_Gemm && n->op != DL_OP_Conv))
      continue;
    bool done;
    DL_TRY(hz_try(g, n, &fu, &done));
    if (done)
      fu.valid = false;
    if (done && changed)
      *changed = true;
  }
  return DL_OK;
}
