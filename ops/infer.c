/*
 * infer.c - shape and type inference plus constant folding over a graph.
 *
 *   1. every node dlcc cannot handle (unknown op, or a default-domain opset
 *      outside DL_OPSET_MIN..DL_OPSET_MAX) is reported, all at once;
 *   2. node by node in order: arity check, the op's infer, then constant
 *      folding: a node whose present inputs all have data is lowered to
 *      kernel IR and run by the interpreter; its outputs get the data.
 *
 * Folding is skipped when an output's size is not a known constant, and
 * for ops that expand their inputs (ConstantOfShape, Expand, Tile, Range)
 * when the outputs would exceed ctx->opt.fold_limit_bytes (0 means the
 * default, DL_FOLD_LIMIT_DEFAULT).  Graph outputs that become constants
 * stay outputs; the backend copies them.
 */
#include "ops/ops.h"

#include <string.h>

#define DL_OPSET_MIN 6
#define DL_OPSET_MAX 28
#define DL_FOLD_LIMIT_DEFAULT ((size_t)16 << 20)

static bool default_domain(const DlNode *n) {
  return !n->domain || !n->domain[0] || strcmp(n->domain, "ai.onnx") == 0;
}

static int node_opset(const DlGraph *g, const DlNode *n) {
  return n->opset > 0 ? n->opset : (int)g->opset;
}

static DlStatus check_supported(DlGraph *g) {
  DlStatus s = DL_OK;
  for (int i = 0; i < g->nnodes; i++) {
    DlNode *n = g->nodes[i];
    if (n->dead)
      continue;
    int opset = node_opset(g, n);
    bool bad_opset =
        default_domain(n) && (opset < DL_OPSET_MIN || opset > DL_OPSET_MAX);
    if (n->op != DL_OP_UNKNOWN && !bad_opset)
      continue;
    s = dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                      "unsupported op '%s' (domain '%s', opset %d)",
                      n->op_type ? n->op_type : dl_op_name(n->op),
                      n->domain ? n->domain : "", opset);
  }
  return s;
}

/* Number of slots up to the last present one. */
static int present_count(const int *ids, int n) {
  while (n > 0 && ids[n - 1] < 0)
    n--;
  return n;
}

/* Before opset 7, binary ops broadcast only when asked (`broadcast`), and
 * then along `axis`, which numpy broadcasting does not express. */
static DlStatus check_legacy_broadcast(DlGraph *g, DlNode *n) {
  if (node_opset(g, n) >= 7 || !dl_attr(n, "broadcast"))
    return DL_OK;
  if (dl_attr_int(n, "broadcast", 0) && dl_attr(n, "axis"))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "unsupported: legacy broadcast with an axis "
                         "(opset %d)",
                         node_opset(g, n));
  return DL_OK;
}

static DlStatus check_arity(DlGraph *g, DlNode *n, const DlOpInfo *info) {
  /* A fused epilogue's extra tensors follow the op's own inputs. */
  int own = n->nin;
  if (dl_has_epilogue(n) && dl_epilogue_base(n) < own)
    own = dl_epilogue_base(n);
  int nin = present_count(n->in, own);
  int nout = present_count(n->out, n->nout);
  if (nin < info->min_in || nin > info->max_in) {
    if (info->min_in == info->max_in)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "expects %d inputs, got %d", info->min_in, nin);
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "expects %d to %d inputs, got %d", info->min_in,
                         info->max_in, nin);
  }
  for (int i = 0; i < info->min_in; i++)
    if (n->in[i] < 0)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "required input %d is missing", i);
  if (nout < info->min_out || nout > info->max_out)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "expects %d to %d outputs, got %d", info->min_out,
                         info->max_out, nout);
  for (int i = 0; i < n->nin; i++)
    if (n->in[i] >= g->nvalues)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "input %d refers to no value", i);
  for (int i = 0; i < n->nout; i++)
    if (n->out[i] >= g->nvalues)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "output %d refers to no value", i);
  return DL_OK;
}

static bool is_expander(DlOp op) {
  return op == DL_OP_ConstantOfShape || op == DL_OP_Expand ||
         op == DL_OP_Tile || op == DL_OP_Range;
}

static bool is_output_of(const DlNode *n, int value) {
  for (int i = 0; i < n->nout; i++)
    if (n->out[i] == value)
      return true;
  return false;
}

/* Decides whether n can be folded now. */
static bool foldable(DlGraph *g, DlNode *n, const DlOpInfo *info) {
  if (!info->lower)
    return false;
  for (int i = 0; i < n->nin; i++) {
    DlValue *v = dl_in(g, n, i);
    if (v && !v->data)
      return false;
  }
  size_t bytes = 0;
  bool any_missing = false;
  for (int i = 0; i < n->nout; i++) {
    DlValue *v = dl_out(g, n, i);
    if (!v)
      continue;
    if (!v->data)
      any_missing = true;
    int64_t numel = dl_value_numel_const(v);
    size_t esz = dl_dtype_size(v->dtype);
    if (numel < 0 || esz == 0)
      return false;
    bytes += (size_t)numel * esz;
  }
  if (!any_missing)
    return false; /* infer already produced the data */
  if (is_expander(n->op)) {
    size_t limit = g->ctx->opt.fold_limit_bytes;
    if (limit == 0)
      limit = DL_FOLD_LIMIT_DEFAULT;
    if (bytes > limit)
      return false;
  }
  return true;
}

static DlStatus fold_node(DlGraph *g, DlNode *n, const DlOpInfo *info) {
  DlCtx *ctx = g->ctx;
  KBuilder *kb = kb_new(g, n);
  if (!kb)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  DL_TRY(info->lower(kb, g, n));
  Kernel *k = kb_finish(kb);
  if (!k)
    return DL_ERR_INTERNAL; /* kb_finish recorded the message */

  int nb = k->nbufs > 0 ? k->nbufs : 1;
  void **bufs = dl_arena_alloc(&ctx->arena, sizeof(void *) * (size_t)nb);
  int64_t *numel = dl_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)nb);
  int ns = g->nsyms > 0 ? g->nsyms : 1;
  int64_t *syms = dl_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)ns);
  if (!bufs || !numel || !syms)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int b = 0; b < k->nbufs; b++) {
    DlValue *v = g->values[k->bufs[b].value];
    numel[b] = dl_value_numel_const(v);
    if (numel[b] < 0)
      return DL_OK; /* not foldable after all */
    if (is_output_of(n, v->id)) {
      size_t bytes = (size_t)numel[b] * dl_dtype_size(v->dtype);
      bufs[b] = dl_arena_alloc(&ctx->arena, bytes ? bytes : 1);
      if (!bufs[b])
        return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    } else {
      if (!v->data)
        return DL_OK; /* reads a value that is not constant */
      bufs[b] = v->data;
    }
  }
  DL_TRY(kir_interpret_n(ctx, k, bufs, numel, syms));
  for (int b = 0; b < k->nbufs; b++) {
    DlValue *v = g->values[k->bufs[b].value];
    if (is_output_of(n, v->id) && k->bufs[b].written && !v->data)
      v->data = bufs[b];
  }
  return DL_OK;
}

DlStatus dl_infer_graph(DlGraph *g) {
  DL_TRY(check_supported(g));
  for (int i = 0; i < g->nnodes; i++) {
    DlNode *n = g->nodes[i];
    if (n->dead)
      continue;
    const DlOpInfo *info = dl_op_info(n->op);
    if (!info)
      return DL_UNREACHABLE(g->ctx);
    DL_TRY(check_arity(g, n, info));
    DL_TRY(check_legacy_broadcast(g, n));
    DL_TRY(info->infer(g, n));
    if (foldable(g, n, info))
      DL_TRY(fold_node(g, n, info));
  }
  return DL_OK;
}
