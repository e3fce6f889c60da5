/*
 * cse.c - common subexpression elimination.
 *
 * Constants first: two constants with the same dtype, shape and bytes
 * become one (readers of the later one read the earlier).  Then nodes, in
 * topological order: a node with the same op, domain, inputs and
 * attributes as an earlier live node is removed and its results replaced
 * by the earlier node's.  Because readers come after their inputs, one
 * sweep finds whole chains of duplicates.  Nodes carrying subgraphs or
 * tensor attributes are never merged.  A graph output keeps its value:
 * when a duplicate's result is an output, the earlier node writes it.
 */
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static size_t const_bytes(const DlValue *v) {
  int64_t n = dl_value_numel_const(v);
  size_t es = dl_dtype_size(v->dtype);
  return n < 0 || !es ? 0 : (size_t)n * es;
}

static bool is_const(const DlGraph *g, const DlValue *v) {
  return v->data && !v->is_input && !dl_producer(g, v) && const_bytes(v) > 0;
}

static uint64_t const_hash(const DlValue *v) {
  uint64_t h = mix((uint64_t)v->dtype, (uint64_t)v->rank);
  return hash_bytes(h, v->data, const_bytes(v));
}

static bool const_equal(const DlValue *a, const DlValue *b) {
  return dl_value_same_type(a, b) &&
         memcmp(a->data, b->data, const_bytes(a)) == 0;
}

static bool attrs_mergeable(const DlNode *n) {
  for (int i = 0; i < n->nattr; i++) {
    DlAttrKind k = n->attrs[i].kind;
    if (k == DL_ATTR_GRAPH || k == DL_ATTR_GRAPHS || k == DL_ATTR_TENSOR ||
        k == DL_ATTR_TENSORS)
      return false;
  }
  return n->nout > 0;
}

static uint64_t str_hash(uint64_t h, const char *s) {
  return s ? hash_bytes(h, s, strlen(s)) : h;
}

static uint64_t node_hash(const DlNode *n) {
  uint64_t h = mix((uint64_t)n->op, (uint64_t)n->nin);
  h = str_hash(h, n->op_type);
  h = str_hash(h, n->domain);
  for (int i = 0; i < n->nin; i++)
    h = mix(h, (uint64_t)(int64_t)n->in[i]);
  h = mix(h, (uint64_t)n->nattr);
  return h;
}

static bool str_eq(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool node_equal(const DlNode *a, const DlNode *b) {
  if (a->op != b->op || a->nin != b->nin || a->nout != b->nout ||
      a->nattr != b->nattr || !str_eq(a->op_type, b->op_type) ||
      !str_eq(a->domain, b->domain) || a->opset != b->opset)
    return false;
  for (int i = 0; i < a->nin; i++)
    if (a->in[i] != b->in[i])
      return false;
  for (int i = 0; i < a->nout; i++)
    if ((a->out[i] < 0) != (b->out[i] < 0))
      return false;
  return dl_attrs_equal(a, b);
}

/* Open-addressing table of ids keyed by hash. */
typedef struct Table {
  uint64_t *h;
  int *id;
  size_t cap;
} Table;

static bool table_init(DlCtx *ctx, Table *t, int n) {
  t->cap = 16;
  while (t->cap < (size_t)n * 2 + 1)
    t->cap *= 2;
  t->h = dl_arena_alloc(&ctx->arena, sizeof(uint64_t) * t->cap);
  t->id = dl_arena_alloc(&ctx->arena, sizeof(int) * t->cap);
  if (!t->h || !t->id)
    return false;
  for (size_t i = 0; i < t->cap; i++)
    t->id[i] = -1;
  return true;
}

static DlStatus cse_constants(DlGraph *g, bool *changed) {
  Table t;
  if (!table_init(g->ctx, &t, g->nvalues))
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  int *repl =
      dl_arena_alloc(&g->ctx->arena, sizeof(int) * (size_t)(g->nvalues + 1));
  if (!repl)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  bool any = false;
  for (int v = 0; v < g->nvalues; v++) {
    repl[v] = v;
    const DlValue *val = g->values[v];
    if (!is_const(g, val))
      continue;
    uint64_t h = const_hash(val);
    size_t i = (size_t)h & (t.cap - 1);
    for (; t.id[i] >= 0; i = (i + 1) & (t.cap - 1))
      if (t.h[i] == h && const_equal(g->values[t.id[i]], val)) {
        repl[v] = t.id[i];
        any = true;
        break;
      }
    if (t.id[i] < 0) {
      t.h[i] = h;
      t.id[i] = v;
    }
  }
  if (!any)
    return DL_OK;
  for (int k = 0; k < g->nnodes; k++) {
    DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] >= 0 && repl[n->in[i]] != n->in[i]) {
        n->in[i] = repl[n->in[i]];
        *changed = true;
      }
  }
  return DL_OK;
}

static DlStatus cse_nodes(DlGraph *g, bool *changed) {
  Table t;
  if (!table_init(g->ctx, &t, g->nnodes))
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int k = 0; k < g->nnodes; k++) {
    DlNode *n = g->nodes[k];
    if (n->dead || !attrs_mergeable(n))
      continue;
    uint64_t h = node_hash(n);
    size_t i = (size_t)h & (t.cap - 1);
    DlNode *twin = NULL;
    for (; t.id[i] >= 0; i = (i + 1) & (t.cap - 1)) {
      DlNode *m = g->nodes[t.id[i]];
      if (t.h[i] == h && !m->dead && node_equal(m, n)) {
        twin = m;
        break;
      }
    }
    if (!twin) {
      t.h[i] = h;
      t.id[i] = n->id;
      continue;
    }
    /* every result must be replaceable before touching anything */
    bool ok = true;
    int moved = 0;
    for (int o = 0; o < n->nout && ok; o++) {
      if (n->out[o] < 0)
        continue;
      DlValue *from = g->values[n->out[o]];
      DlValue *to = g->values[twin->out[o]];
      ok = dl_can_replace_uses(g, from, to);
      if (dl_producer(g, to) != twin)
        ok = false;
      for (int j = 0; j < g->noutputs; j++)
        if (g->outputs[j] == from->id)
          moved++;
    }
    if (!ok || moved > 1)
      continue;
    for (int o = 0; o < n->nout; o++)
      if (n->out[o] >= 0)
        dl_replace_uses(g, g->values[n->out[o]], g->values[twin->out[o]]);
    dl_node_kill(g, n);
    *changed = true;
  }
  return DL_OK;
}

DlStatus dl_pass_cse_fn(DlGraph *g, bool *changed) {
  DL_TRY(cse_constants(g, changed));
  return cse_nodes(g, changed);
}
