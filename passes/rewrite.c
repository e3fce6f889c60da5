/*
 * rewrite.c - the rewrite engine (dl_rewrite) and the graph-editing helpers
 * rule writers use (pass.h).
 *
 * Rules are indexed by the op they are rooted at; the engine walks the live
 * nodes in order and offers each node to its rules (and to the rules rooted
 * at any op), again and again until a whole sweep fires nothing.  Both the
 * number of sweeps and the total number of rewrites are bounded, so a pair
 * of rules undoing each other cannot loop forever.
 */
#include "passes/pass.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#define DL_REWRITE_MAX_SWEEPS 64
#define DL_REWRITE_MAX_FIRES 1000000

DlStatus dl_rewrite(DlGraph *g, const DlRule *rules, int nrules,
                    bool *changed) {
  DlCtx *ctx = g->ctx;
  /* rules by root op: first[op] .. a linked list through next[] */
  int *first = dl_arena_alloc(&ctx->arena, sizeof(int) * (DL_OP_COUNT + 1));
  int *next = dl_arena_alloc(&ctx->arena,
                             sizeof(int) * (size_t)(nrules > 0 ? nrules : 1));
  if (!first || !next)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int op = 0; op <= DL_OP_COUNT; op++)
    first[op] = -1;
  for (int r = nrules - 1; r >= 0; r--) {
    int op = rules[r].root;
    if (op < 0 || op >= DL_OP_COUNT)
      return dl_error(ctx, DL_ERR_INTERNAL, "rule '%s': bad root op",
                      rules[r].name);
    if (op == DL_OP_UNKNOWN)
      op = DL_OP_COUNT; /* any op */
    next[r] = first[op];
    first[op] = r;
  }
  long fires = 0;
  for (int sweep = 0; sweep < DL_REWRITE_MAX_SWEEPS; sweep++) {
    bool fired = false;
    for (int ni = 0; ni < g->nnodes; ni++) {
      DlNode *n = g->nodes[ni];
      for (int pass = 0; pass < 2 && !n->dead; pass++) {
        int head = pass == 0 ? first[n->op] : first[DL_OP_COUNT];
        for (int r = head; r >= 0 && !n->dead; r = next[r]) {
          if (pass == 0 && n->op != rules[r].root)
            break; /* the node changed op: offer it again next sweep */
          DlStatus st = DL_OK;
          if (rules[r].rewrite(g, n, &st)) {
            fired = true;
            if (changed)
              *changed = true;
            if (++fires >= DL_REWRITE_MAX_FIRES)
              return DL_OK;
          }
          if (st != DL_OK)
            return st;
          /* a rule may have inserted nodes before n */
          if (g->nodes[ni] != n)
            break;
        }
      }
    }
    if (!fired)
      break;
  }
  return DL_OK;
}

/* ---- values ------------------------------------------------------------ */

static bool is_graph_output(const DlGraph *g, int id) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i] == id)
      return true;
  return false;
}

static bool is_graph_input(const DlGraph *g, int id) {
  for (int i = 0; i < g->ninputs; i++)
    if (g->inputs[i] == id)
      return true;
  return false;
}

bool dl_value_same_type(const DlValue *a, const DlValue *b) {
  if (a->dtype != b->dtype || a->rank != b->rank || a->rank < 0)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (!dl_dim_eq(&a->dims[i], &b->dims[i]))
      return false;
  return true;
}

DlNode *dl_producer(const DlGraph *g, const DlValue *v) {
  if (!v || v->producer < 0 || v->producer >= g->nnodes)
    return NULL;
  DlNode *n = g->nodes[v->producer];
  if (n->dead)
    return NULL;
  for (int i = 0; i < n->nout; i++)
    if (n->out[i] == v->id)
      return n;
  return NULL;
}

int dl_value_nuses(const DlGraph *g, const DlValue *v) {
  int uses = 0;
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] == v->id)
        uses++;
  }
  return uses;
}

bool dl_value_used_only_by(const DlGraph *g, const DlValue *v,
                           const DlNode *user) {
  if (is_graph_output(g, v->id))
    return false;
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead || n == user)
      continue;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] == v->id)
        return false;
  }
  return true;
}

double dl_value_elem(const DlValue *v, int64_t k) {
  const void *d = v->data;
  switch (v->dtype) {
  case DL_F32:
    return ((const float *)d)[k];
  case DL_F64:
    return ((const double *)d)[k];
  case DL_I8:
    return ((const int8_t *)d)[k];
  case DL_U8:
    return ((const uint8_t *)d)[k];
  case DL_I16:
    return ((const int16_t *)d)[k];
  case DL_U16:
    return ((const uint16_t *)d)[k];
  case DL_I32:
    return ((const int32_t *)d)[k];
  case DL_U32:
    return ((const uint32_t *)d)[k];
  case DL_I64:
    return (double)((const int64_t *)d)[k];
  case DL_U64:
    return (double)((const uint64_t *)d)[k];
  case DL_BOOL:
    return ((const uint8_t *)d)[k] ? 1.0 : 0.0;
  default:
    return NAN;
  }
}

bool dl_value_is_const_scalar(const DlValue *v, double x) {
  if (!v || !v->data)
    return false;
  switch (v->dtype) {
  case DL_F32:
  case DL_F64:
  case DL_I8:
  case DL_U8:
  case DL_I16:
  case DL_U16:
  case DL_I32:
  case DL_U32:
  case DL_I64:
  case DL_U64:
    break;
  default:
    return false;
  }
  int64_t n = dl_value_numel_const(v);
  if (n <= 0)
    return false;
  for (int64_t k = 0; k < n; k++)
    if (dl_value_elem(v, k) != x)
      return false;
  return true;
}

bool dl_can_replace_uses(const DlGraph *g, const DlValue *from,
                         const DlValue *to) {
  if (!from || !to || from == to || !dl_value_same_type(from, to))
    return false;
  if (!is_graph_output(g, from->id))
    return true;
  /* `from` keeps its identity: `to` must be a plain node result */
  return dl_producer(g, to) && !is_graph_output(g, to->id) &&
         !is_graph_input(g, to->id) && !to->data;
}

bool dl_replace_uses(DlGraph *g, DlValue *from, DlValue *to) {
  if (!dl_can_replace_uses(g, from, to))
    return false;
  int f = from->id, t = to->id;
  if (!is_graph_output(g, f)) {
    for (int k = 0; k < g->nnodes; k++) {
      DlNode *n = g->nodes[k];
      if (n->dead)
        continue;
      for (int i = 0; i < n->nin; i++)
        if (n->in[i] == f)
          n->in[i] = t;
    }
    return true;
  }
  /* from is a graph output: the producer of `to` writes `from` instead */
  DlNode *old = dl_producer(g, from);
  if (old)
    for (int i = 0; i < old->nout; i++)
      if (old->out[i] == f)
        old->out[i] = -1;
  DlNode *p = dl_producer(g, to);
  for (int i = 0; i < p->nout; i++)
    if (p->out[i] == t)
      p->out[i] = f;
  from->producer = p->id;
  if (!from->symval)
    from->symval = to->symval;
  to->producer = -1;
  for (int k = 0; k < g->nnodes; k++) {
    DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] == t)
        n->in[i] = f;
  }
  return true;
}

void dl_node_kill(DlGraph *g, DlNode *n) {
  (void)g;
  n->dead = true;
}

/* ---- nodes -------------------------------------------------------------- */

DlNode *dl_node_insert_before(DlGraph *g, const DlNode *before, DlOp op,
                              const char *name, int nin, int nout) {
  int pos = before ? before->id : g->nnodes;
  DlNode *n = dl_node_new(g, op, dl_op_name(op), name, nin, nout);
  if (!n)
    return NULL;
  if (before)
    n->opset = before->opset;
  int last = g->nnodes - 1; /* n is here */
  /* shift [pos, last) one up, highest first so producers stay exact */
  for (int k = last - 1; k >= pos; k--) {
    DlNode *m = g->nodes[k];
    for (int i = 0; i < m->nout; i++) {
      int v = m->out[i];
      if (v >= 0 && v < g->nvalues && g->values[v]->producer == k)
        g->values[v]->producer = k + 1;
    }
    m->id = k + 1;
    g->nodes[k + 1] = m;
  }
  g->nodes[pos] = n;
  n->id = pos;
  return n;
}

DlValue *dl_node_new_output(DlGraph *g, DlNode *n, int slot, const char *name) {
  if (slot < 0 || slot >= n->nout)
    return NULL;
  DlValue *v = dl_value_new(g, name, DL_UNDEFINED);
  if (!v)
    return NULL;
  v->producer = n->id;
  n->out[slot] = v->id;
  return v;
}

DlStatus dl_node_infer(DlGraph *g, DlNode *n) {
  const DlOpInfo *info = dl_op_info(n->op);
  if (!info || !info->infer)
    return DL_UNREACHABLE(g->ctx);
  return info->infer(g, n);
}

static DlAttr *attr_slot(DlGraph *g, DlNode *n, const char *name) {
  for (int i = 0; i < n->nattr; i++)
    if (strcmp(n->attrs[i].name, name) == 0) {
      memset(&n->attrs[i], 0, sizeof n->attrs[i]);
      n->attrs[i].name = name;
      return &n->attrs[i];
    }
  DlAttr *a =
      dl_arena_alloc(&g->ctx->arena, sizeof(DlAttr) * (size_t)(n->nattr + 1));
  if (!a)
    return NULL;
  if (n->nattr)
    memcpy(a, n->attrs, sizeof(DlAttr) * (size_t)n->nattr);
  n->attrs = a;
  a[n->nattr].name = dl_arena_strdup(&g->ctx->arena, name);
  return a[n->nattr].name ? &a[n->nattr++] : NULL;
}

bool dl_node_set_attr_int(DlGraph *g, DlNode *n, const char *name, int64_t v) {
  DlAttr *a = attr_slot(g, n, name);
  if (!a)
    return false;
  a->kind = DL_ATTR_INT;
  a->i = v;
  return true;
}

bool dl_node_set_attr_float(DlGraph *g, DlNode *n, const char *name, float v) {
  DlAttr *a = attr_slot(g, n, name);
  if (!a)
    return false;
  a->kind = DL_ATTR_FLOAT;
  a->f = v;
  return true;
}

bool dl_node_set_attr_ints(DlGraph *g, DlNode *n, const char *name,
                           const int64_t *v, int count) {
  int64_t *copy = dl_arena_alloc(&g->ctx->arena,
                                 sizeof(int64_t) * (size_t)(count ? count : 1));
  if (!copy)
    return false;
  if (count)
    memcpy(copy, v, sizeof(int64_t) * (size_t)count);
  DlAttr *a = attr_slot(g, n, name);
  if (!a)
    return false;
  a->kind = DL_ATTR_INTS;
  a->n = count;
  a->ints = copy;
  return true;
}

bool dl_node_set_inputs(DlGraph *g, DlNode *n, const int *in, int nin) {
  int *copy =
      dl_arena_alloc(&g->ctx->arena, sizeof(int) * (size_t)(nin ? nin : 1));
  if (!copy)
    return false;
  if (nin)
    memcpy(copy, in, sizeof(int) * (size_t)nin);
  n->in = copy;
  n->nin = nin;
  return true;
}

DlValue *dl_const_new(DlGraph *g, const char *name, DlDType dtype, int rank,
                      const int64_t *dims, const void *data) {
  DlValue *v = dl_value_new(g, name, dtype);
  if (!v || rank < 0 || rank > DL_MAX_RANK)
    return NULL;
  DlDim d[DL_MAX_RANK];
  size_t numel = 1;
  for (int i = 0; i < rank; i++) {
    d[i] = dl_dim_const(dims[i]);
    numel *= (size_t)dims[i];
  }
  dl_value_set_shape(v, rank, d);
  size_t bytes = numel * dl_dtype_size(dtype);
  v->data = dl_arena_alloc(&g->ctx->arena, bytes ? bytes : 1);
  if (!v->data)
    return NULL;
  if (bytes)
    memcpy(v->data, data, bytes);
  return v;
}
