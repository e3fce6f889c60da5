/*
 * layout.c - a blocked weight layout for the convolutions where it pays.
 *
 * The default Conv lowering (ops/nn.c) vectorizes over positions of the
 * last spatial dim: CONV_MR output channels x up to 16 positions, weights
 * broadcast.  On late, small feature maps (ResNet's 14x14 and 7x7 stages)
 * most vector lanes of those blocks are empty.  This pass repacks the
 * constant weights of such a Conv at compile time into
 *
 *   W'[g * ceil(M/16)][C/g][k...][16]     (M: output channels per group g)
 *
 * with zero padding past M, makes W' the node's input 1 and records the
 * layout on the node: "dlcc.layout" = "OIhw16o" and "dlcc.out_channels" =
 * the output channel count (W' no longer says it).  The Conv lowering then
 * computes blocks of a few output positions x 16 output channels with the
 * 16 channels as the vector dimension: per reduction step 16 contiguous
 * weights times one broadcast input value.  Activations stay NCHW, so no
 * other op changes.
 *
 * The rule ("where it pays", measured at -O3 on single convolutions of
 * ResNet-18's shapes and on ResNet-18, MobileNet-V2 and SqueezeNet 1.1;
 * docs/passes.md has the figures): the weights (and bias) are constant
 * f32/f64; at least LAYOUT_MIN_OUT output channels and LAYOUT_MIN_CIN input
 * channels per group (so depthwise convs and RGB stems keep the default
 * lowering); output rows of at most LAYOUT_MAX_ROW positions (a constant
 * size); and not a 1x1 stride-1 unpadded conv, which the default lowering
 * already runs as a matrix product over the whole plane and which was
 * slower blocked with the LLVM backend.
 */
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <string.h>

#define LAYOUT_ATTR "dlcc.layout"
#define LAYOUT_BLOCKED "OIhw16o"
#define LAYOUT_OUT_ATTR "dlcc.out_channels"
#define LAYOUT_BLOCK 16 /* output channels per block: the vector lanes */

/* The cost rule's constants (see the file comment). */
#define LAYOUT_MIN_OUT 16 /* output channels per group: one full block */
#define LAYOUT_MIN_CIN 8  /* input channels per group (depthwise: 1) */
#define LAYOUT_MAX_ROW 64 /* output row length (measured up to 56) */

/* A 1x1 convolution with stride 1 and no padding: the default lowering
 * runs it as one matrix product per image over the whole plane. */
static bool layout_pointwise(const DlNode *n, const DlValue *w) {
  for (int i = 2; i < w->rank; i++) {
    int64_t k;
    if (!dl_dim_is_const(&w->dims[i], &k) || k != 1)
      return false;
  }
  const int64_t *v = NULL;
  int cnt = dl_attr_ints(n, "strides", &v);
  for (int i = 0; i < cnt; i++)
    if (v[i] != 1)
      return false;
  cnt = dl_attr_ints(n, "pads", &v);
  for (int i = 0; i < cnt; i++)
    if (v[i] != 0)
      return false;
  const char *ap = dl_attr_string(n, "auto_pad", "NOTSET");
  return !strcmp(ap, "NOTSET") || !strcmp(ap, "") || !strcmp(ap, "VALID");
}

/* Whether the blocked layout pays for n (the rule of the file comment). */
static bool layout_pays(const DlGraph *g, const DlNode *n) {
  const DlValue *x = dl_in(g, n, 0), *w = dl_in(g, n, 1), *b = dl_in(g, n, 2);
  const DlValue *y = dl_out(g, n, 0);
  if (!x || !w || !y || dl_attr(n, LAYOUT_ATTR) || !w->data ||
      (b && !b->data) || x->rank < 3 || w->rank != x->rank ||
      y->rank != x->rank || x->rank >= DL_MAX_RANK ||
      (w->dtype != DL_F32 && w->dtype != DL_F64))
    return false;
  int64_t group = dl_attr_int(n, "group", 1), m, cw;
  if (group < 1 || !dl_dim_is_const(&w->dims[0], &m) ||
      !dl_dim_is_const(&w->dims[1], &cw) || m % group != 0)
    return false;
  if (m / group < LAYOUT_MIN_OUT || cw < LAYOUT_MIN_CIN)
    return false;
  int64_t row;
  return !layout_pointwise(n, w) &&
         dl_dim_is_const(&y->dims[y->rank - 1], &row) && row <= LAYOUT_MAX_ROW;
}

/* Repacked weights by the value id of the original (-1: none yet), so
 * Convs sharing a weight (and group) share the blocked copy too. */
typedef struct LayoutMemo {
  int *packed;
  int64_t *group;
  int n;
} LayoutMemo;

static DlValue *layout_pack(DlGraph *g, const DlValue *w, int64_t group);

/* Repacks n's weights into the blocked layout and records it on n. */
static DlStatus layout_apply(DlGraph *g, DlNode *n, LayoutMemo *memo) {
  DlCtx *ctx = g->ctx;
  const DlValue *w = dl_in(g, n, 1);
  int64_t group = dl_attr_int(n, "group", 1), m;
  dl_dim_is_const(&w->dims[0], &m);
  DlValue *pw = NULL;
  if (w->id < memo->n && memo->packed[w->id] >= 0 &&
      memo->group[w->id] == group)
    pw = g->values[memo->packed[w->id]];
  if (!pw) {
    pw = layout_pack(g, w, group);
    if (!pw)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    if (w->id < memo->n) {
      memo->packed[w->id] = pw->id;
      memo->group[w->id] = group;
    }
  }
  int *in = dl_arena_alloc(&ctx->arena, sizeof(int) * (size_t)n->nin);
  if (!in)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  memcpy(in, n->in, sizeof(int) * (size_t)n->nin);
  in[1] = pw->id;
  DlAttr a;
  memset(&a, 0, sizeof a);
  a.name = LAYOUT_ATTR;
  a.kind = DL_ATTR_STRING;
  a.s = LAYOUT_BLOCKED;
  a.s_len = strlen(LAYOUT_BLOCKED);
  if (!dl_node_set_inputs(g, n, in, n->nin) ||
      !dl_node_set_attr_int(g, n, LAYOUT_OUT_ATTR, m))
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  DL_TRY(fu_add_attr(g, n, &a));
  return dl_node_infer(g, n);
}

/* The blocked copy of weight w [M*g][C/g][k...] (NULL: out of memory). */
static DlValue *layout_pack(DlGraph *g, const DlValue *w, int64_t group) {
  DlCtx *ctx = g->ctx;
  int64_t m, cw;
  dl_dim_is_const(&w->dims[0], &m);
  dl_dim_is_const(&w->dims[1], &cw);
  int64_t kprod = 1;
  for (int i = 2; i < w->rank; i++) {
    int64_t k;
    dl_dim_is_const(&w->dims[i], &k);
    kprod *= k;
  }
  int64_t mg = m / group, nbg = (mg + LAYOUT_BLOCK - 1) / LAYOUT_BLOCK;
  int64_t nblk = group * nbg;
  size_t es = dl_dtype_size(w->dtype);
  int64_t numel = nblk * cw * kprod * LAYOUT_BLOCK;
  unsigned char *data = dl_arena_alloc(&ctx->arena, (size_t)numel * es);
  if (!data)
    return NULL;
  const unsigned char *src = w->data;
  for (int64_t ob = 0; ob < nblk; ob++) {
    int64_t gi = ob / nbg, lane0 = (ob % nbg) * LAYOUT_BLOCK;
    for (int64_t c = 0; c < cw; c++)
      for (int64_t t = 0; t < kprod; t++)
        for (int64_t l = 0; l < LAYOUT_BLOCK && lane0 + l < mg; l++) {
          int64_t from = ((gi * mg + lane0 + l) * cw + c) * kprod + t;
          int64_t to = ((ob * cw + c) * kprod + t) * LAYOUT_BLOCK + l;
          memcpy(data + (size_t)to * es, src + (size_t)from * es, es);
        }
  }
  int64_t dims[DL_MAX_RANK + 1];
  dims[0] = nblk;
  dims[1] = cw;
  for (int i = 2; i < w->rank; i++)
    dl_dim_is_const(&w->dims[i], &dims[i]);
  dims[w->rank] = LAYOUT_BLOCK;
  const char *name = dl_arena_printf(&ctx->arena, "%s_%s",
                                     w->name ? w->name : "w", LAYOUT_BLOCKED);
  return dl_const_new(g, name, w->dtype, w->rank + 1, dims, data);
}

DlStatus dl_pass_layout(DlGraph *g, bool *changed) {
  LayoutMemo memo;
  memo.n = g->nvalues;
  memo.packed =
      dl_arena_alloc(&g->ctx->arena, sizeof(int) * (size_t)(memo.n + 1));
  memo.group =
      dl_arena_alloc(&g->ctx->arena, sizeof(int64_t) * (size_t)(memo.n + 1));
  if (!memo.packed || !memo.group)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < memo.n; i++)
    memo.packed[i] = -1;
  for (int i = 0; i < g->nnodes; i++) {
    DlNode *n = g->nodes[i];
    if (n->dead || n->op != DL_OP_Conv || !layout_pays(g, n))
      continue;
    DL_TRY(layout_apply(g, n, &memo));
    *changed = true;
  }
  return DL_OK;
}
