/*
 * onnx_import.c - ONNX model -> DlGraph.
 *
 * Two passes over each graph.  analyze() works on the protobuf alone: it
 * collects every name the graph defines, checks that each use is defined
 * (locally or in an enclosing graph), records the names a subgraph takes
 * from outside (so the node holding it depends on them) and sorts the nodes
 * topologically.  build() then creates values and nodes in that order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/onnx_import.h"
#include "frontend/onnx_internal.h"

/* Protobuf messages nested deeper than this are refused before decoding
 * (the decoder recurses once per level). */
#define MAX_MSG_DEPTH 100
/* Counts in one graph (nodes, inputs of one node, ...). */
#define MAX_COUNT (INT_MAX / 8)
/* Symbolic dims in one graph (real models use a handful). */
#define MAX_SYMS 256

/* ---- name map --------------------------------------------------------- */

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

bool dl_namemap_init(DlNameMap *m, DlArena *arena, size_t hint) {
  uint32_t cap = 16;
  while (cap < hint * 2 && cap < (1u << 30))
    cap <<= 1;
  m->arena = arena;
  m->cap = cap;
  m->count = 0;
  m->keys = dl_arena_alloc(arena, cap * sizeof *m->keys);
  m->vals = dl_arena_alloc(arena, cap * sizeof *m->vals);
  return m->keys && m->vals;
}

static uint32_t slot_of(const DlNameMap *m, const char *key) {
  uint32_t i = hash_str(key) & (m->cap - 1);
  while (m->keys[i] && strcmp(m->keys[i], key))
    i = (i + 1) & (m->cap - 1);
  return i;
}

bool dl_namemap_get(const DlNameMap *m, const char *key, int *val) {
  if (!m->cap)
    return false;
  uint32_t i = slot_of(m, key);
  if (!m->keys[i])
    return false;
  if (val)
    *val = m->vals[i];
  return true;
}

bool dl_namemap_put(DlNameMap *m, const char *key, int val) {
  if ((m->count + 1) * 2 > m->cap) {
    DlNameMap n;
    if (m->cap >= (1u << 30) || !dl_namemap_init(&n, m->arena, m->cap))
      return false;
    for (uint32_t i = 0; i < m->cap; i++)
      if (m->keys[i]) {
        uint32_t j = slot_of(&n, m->keys[i]);
        n.keys[j] = m->keys[i];
        n.vals[j] = m->vals[i];
        n.count++;
      }
    *m = n;
  }
  uint32_t i = slot_of(m, key);
  if (!m->keys[i]) {
    m->keys[i] = key;
    m->count++;
  }
  m->vals[i] = val;
  return true;
}

/* ---- importer state ---------------------------------------------------- */

typedef struct Imp {
  DlCtx *ctx;
  const char *base_dir;
  DlNameMap opsets;  /* normalized domain -> version */
  int default_opset; /* 0 when the model imports none */
} Imp;

struct GInfo;

typedef struct NodeInfo {
  int ndeps;
  int *deps; /* indices of nodes this node needs (repeats allowed) */
  int nsub;
  struct GInfo **sub; /* analyzed subgraphs, in attribute order */
} NodeInfo;

typedef struct GInfo {
  const Onnx__GraphProto *gp;
  DlNameMap defs; /* name -> node index, or DEF_INIT / DEF_INPUT */
  NodeInfo *nodes;
  int *order;
  DlNameMap freeset; /* names taken from enclosing graphs */
  int nfree, capfree;
  const char **free;
} GInfo;

#define DEF_INIT (-1)
#define DEF_INPUT (-2)

typedef struct AScope {
  const DlNameMap *defs;
  const struct AScope *parent;
} AScope;

static const char *norm_domain(const char *d) {
  d = dl_pb_str(d);
  return strcmp(d, "ai.onnx") ? d : "";
}

/* A node built just for a message, before the real node exists. */
static DlNode msg_node(Imp *im, const Onnx__NodeProto *np, int index) {
  DlNode n;
  memset(&n, 0, sizeof n);
  n.id = -1;
  n.op_type = dl_pb_str(np->op_type);
  n.domain = norm_domain(np->domain);
  n.name = dl_pb_str(np->name);
  if (!*n.name) {
    n.name = dl_arena_printf(&im->ctx->arena, "%s_%d", n.op_type, index);
    if (!n.name)
      n.name = "";
  }
  return n;
}

static bool count_ok(size_t n) {
  return n <= MAX_COUNT;
}

static DlStatus too_many(Imp *im, const char *what, size_t n) {
  return dl_error(im->ctx, DL_ERR_UNSUPPORTED, "%s: %zu is too many", what, n);
}

/* Kind of an attribute; old models leave `type` unset, then the field that
 * is present decides.  0 when nothing is set. */
static int attr_kind(const Onnx__AttributeProto *a) {
  if (a->has_type &&
      a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
    return (int)a->type;
  if (a->has_f)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  if (a->has_i)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  if (a->has_s)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
  if (a->t)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  if (a->g)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
  if (a->sparse_tensor)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR;
  if (a->tp)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO;
  if (a->n_floats)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
  if (a->n_ints)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  if (a->n_strings)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
  if (a->n_tensors)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS;
  if (a->n_graphs)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS;
  if (a->n_sparse_tensors)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS;
  if (a->n_type_protos)
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS;
  return 0;
}

/* ---- pass 1: names, uses, order ---------------------------------------- */

static DlStatus analyze(Imp *im, const Onnx__GraphProto *gp,
                        const AScope *outer, GInfo **out);

static bool defined_outside(const AScope *s, const char *name) {
  for (; s; s = s->parent)
    if (dl_namemap_get(s->defs, name, NULL))
      return true;
  return false;
}

static DlStatus add_free(Imp *im, GInfo *gi, const char *name) {
  if (dl_namemap_get(&gi->freeset, name, NULL))
    return DL_OK;
  if (!dl_namemap_put(&gi->freeset, name, 0))
    return DL_ERR_NOMEM;
  if (gi->nfree == gi->capfree) {
    int cap = gi->capfree ? gi->capfree * 2 : 8;
    const char **f = dl_arena_alloc(&im->ctx->arena, (size_t)cap * sizeof *f);
    if (!f)
      return DL_ERR_NOMEM;
    if (gi->nfree)
      memcpy(f, gi->free, (size_t)gi->nfree * sizeof *f);
    gi->free = f;
    gi->capfree = cap;
  }
  gi->free[gi->nfree++] = name;
  return DL_OK;
}

/* Records a use of `name` by a node: a dependency on the local node that
 * defines it, or a name taken from an enclosing graph.  Sets *missing when
 * the name is defined nowhere. */
static DlStatus use_name(Imp *im, GInfo *gi, const AScope *outer,
                         const char *name, int *ndeps, int *deps,
                         bool *missing) {
  int def;
  *missing = false;
  if (dl_namemap_get(&gi->defs, name, &def)) {
    if (def >= 0)
      deps[(*ndeps)++] = def;
    return DL_OK;
  }
  if (!defined_outside(outer, name)) {
    *missing = true;
    return DL_OK;
  }
  return add_free(im, gi, name);
}

static DlStatus topo_sort(Imp *im, GInfo *gi) {
  const Onnx__GraphProto *gp = gi->gp;
  int n = (int)gp->n_node;
  gi->order = dl_arena_alloc(&im->ctx->arena, ((size_t)n + 1) * sizeof(int));
  if (!gi->order)
    return DL_ERR_NOMEM;
  bool sorted = true;
  for (int i = 0; i < n && sorted; i++)
    for (int k = 0; k < gi->nodes[i].ndeps; k++)
      if (gi->nodes[i].deps[k] >= i)
        sorted = false;
  if (sorted) {
    for (int i = 0; i < n; i++)
      gi->order[i] = i;
    return DL_OK;
  }
  /* Kahn's algorithm with consumer lists in CSR form. */
  DlArena *a = &im->ctx->arena;
  int *indeg = dl_arena_alloc(a, ((size_t)n + 1) * sizeof(int));
  int *start = dl_arena_alloc(a, ((size_t)n + 2) * sizeof(int));
  size_t nedges = 0;
  for (int i = 0; i < n; i++)
    nedges += (size_t)gi->nodes[i].ndeps;
  int *cons = dl_arena_alloc(a, (nedges + 1) * sizeof(int));
  int *fill = dl_arena_alloc(a, ((size_t)n + 1) * sizeof(int));
  if (!indeg || !start || !cons || !fill)
    return DL_ERR_NOMEM;
  for (int i = 0; i < n; i++) {
    indeg[i] = gi->nodes[i].ndeps;
    for (int k = 0; k < gi->nodes[i].ndeps; k++)
      start[gi->nodes[i].deps[k] + 1]++;
  }
  for (int i = 0; i < n; i++)
    start[i + 1] += start[i];
  for (int i = 0; i < n; i++)
    for (int k = 0; k < gi->nodes[i].ndeps; k++) {
      int p = gi->nodes[i].deps[k];
      cons[start[p] + fill[p]++] = i;
    }
  int head = 0, tail = 0;
  for (int i = 0; i < n; i++)
    if (indeg[i] == 0)
      gi->order[tail++] = i;
  while (head < tail) {
    int p = gi->order[head++];
    for (int k = start[p]; k < start[p + 1]; k++)
      if (--indeg[cons[k]] == 0)
        gi->order[tail++] = cons[k];
  }
  if (tail < n) {
    for (int i = 0; i < n; i++)
      if (indeg[i] > 0) {
        DlNode mn = msg_node(im, gp->node[i], i);
        return dl_error_node(im->ctx, &mn, DL_ERR_INVALID,
                             "nodes form a cycle (this node is on it or "
                             "depends on it)");
      }
  }
  return DL_OK;
}

static DlStatus analyze(Imp *im, const Onnx__GraphProto *gp,
                        const AScope *outer, GInfo **out) {
  DlCtx *ctx = im->ctx;
  DlArena *a = &ctx->arena;
  if (!count_ok(gp->n_node))
    return too_many(im, "nodes in a graph", gp->n_node);
  if (!count_ok(gp->n_input))
    return too_many(im, "graph inputs", gp->n_input);
  if (!count_ok(gp->n_output))
    return too_many(im, "graph outputs", gp->n_output);
  if (!count_ok(gp->n_initializer) || !count_ok(gp->n_sparse_initializer))
    return too_many(im, "initializers", gp->n_initializer);
  GInfo *gi = dl_arena_alloc(a, sizeof *gi);
  if (!gi)
    return DL_ERR_NOMEM;
  gi->gp = gp;
  size_t hint = gp->n_input + gp->n_initializer + gp->n_sparse_initializer;
  for (size_t i = 0; i < gp->n_node; i++) {
    if (!count_ok(gp->node[i]->n_output) || !count_ok(gp->node[i]->n_input) ||
        !count_ok(gp->node[i]->n_attribute)) {
      DlNode mn = msg_node(im, gp->node[i], (int)i);
      return dl_error_node(ctx, &mn, DL_ERR_UNSUPPORTED,
                           "too many inputs, outputs or attributes");
    }
    hint += gp->node[i]->n_output;
    if (hint > MAX_COUNT)
      return too_many(im, "values in a graph", hint);
  }
  if (!dl_namemap_init(&gi->defs, a, hint) ||
      !dl_namemap_init(&gi->freeset, a, 8))
    return DL_ERR_NOMEM;
  gi->nodes = dl_arena_alloc(a, (gp->n_node + 1) * sizeof *gi->nodes);
  if (!gi->nodes)
    return DL_ERR_NOMEM;

  /* definitions */
  for (size_t i = 0; i < gp->n_initializer + gp->n_sparse_initializer; i++) {
    const char *name;
    if (i < gp->n_initializer) {
      name = dl_pb_str(gp->initializer[i]->name);
    } else {
      const Onnx__SparseTensorProto *st =
          gp->sparse_initializer[i - gp->n_initializer];
      name = st->values ? dl_pb_str(st->values->name) : "";
    }
    if (!*name)
      return dl_error(ctx, DL_ERR_INVALID, "initializer #%zu has no name", i);
    if (dl_namemap_get(&gi->defs, name, NULL))
      return dl_error(ctx, DL_ERR_INVALID, "initializer '%s' is defined twice",
                      name);
    if (!dl_namemap_put(&gi->defs, name, DEF_INIT))
      return DL_ERR_NOMEM;
  }
  for (size_t i = 0; i < gp->n_input; i++) {
    const char *name = dl_pb_str(gp->input[i]->name);
    int def;
    if (!*name)
      return dl_error(ctx, DL_ERR_INVALID, "graph input #%zu has no name", i);
    if (dl_namemap_get(&gi->defs, name, &def)) {
      if (def == DEF_INIT)
        continue; /* initializer listed as input */
      return dl_error(ctx, DL_ERR_INVALID, "graph input '%s' is listed twice",
                      name);
    }
    if (!dl_namemap_put(&gi->defs, name, DEF_INPUT))
      return DL_ERR_NOMEM;
  }
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    if (!*dl_pb_str(np->op_type)) {
      DlNode mn = msg_node(im, np, (int)i);
      return dl_error_node(ctx, &mn, DL_ERR_INVALID, "node has no op_type");
    }
    for (size_t k = 0; k < np->n_output; k++) {
      const char *name = dl_pb_str(np->output[k]);
      if (!*name)
        continue; /* omitted optional output */
      if (dl_namemap_get(&gi->defs, name, NULL)) {
        DlNode mn = msg_node(im, np, (int)i);
        return dl_error_node(ctx, &mn, DL_ERR_INVALID,
                             "output '%s' is already defined elsewhere in the "
                             "graph",
                             name);
      }
      if (!dl_namemap_put(&gi->defs, name, (int)i))
        return DL_ERR_NOMEM;
    }
  }

  /* uses, subgraphs first (their outside names are uses of the node) */
  AScope me = {&gi->defs, outer};
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    NodeInfo *ni = &gi->nodes[i];
    size_t nsub = 0;
    for (size_t k = 0; k < np->n_attribute; k++) {
      const Onnx__AttributeProto *at = np->attribute[k];
      int kind = attr_kind(at);
      if (kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH && at->g)
        nsub++;
      else if (kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS)
        nsub += at->n_graphs;
    }
    if (!count_ok(nsub))
      return too_many(im, "subgraphs of a node", nsub);
    ni->sub = dl_arena_alloc(a, (nsub + 1) * sizeof *ni->sub);
    if (!ni->sub)
      return DL_ERR_NOMEM;
    size_t nuses = np->n_input;
    for (size_t k = 0; k < np->n_attribute; k++) {
      const Onnx__AttributeProto *at = np->attribute[k];
      int kind = attr_kind(at);
      size_t cnt = 0;
      Onnx__GraphProto *const *gs = NULL;
      if (kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH && at->g) {
        cnt = 1;
        gs = &at->g;
      } else if (kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS) {
        cnt = at->n_graphs;
        gs = at->graphs;
      }
      for (size_t j = 0; j < cnt; j++) {
        GInfo *sub;
        DL_TRY(analyze(im, gs[j], &me, &sub));
        ni->sub[ni->nsub++] = sub;
        nuses += (size_t)sub->nfree;
      }
    }
    if (!count_ok(nuses))
      return too_many(im, "inputs of a node", nuses);
    ni->deps = dl_arena_alloc(a, (nuses + 1) * sizeof(int));
    if (!ni->deps)
      return DL_ERR_NOMEM;
    for (size_t k = 0; k < np->n_input; k++) {
      const char *name = dl_pb_str(np->input[k]);
      bool missing;
      if (!*name)
        continue; /* omitted optional input */
      DL_TRY(use_name(im, gi, outer, name, &ni->ndeps, ni->deps, &missing));
      if (missing) {
        DlNode mn = msg_node(im, np, (int)i);
        return dl_error_node(ctx, &mn, DL_ERR_INVALID,
                             "input '%s' is never defined", name);
      }
    }
    for (int s = 0; s < ni->nsub; s++)
      for (int f = 0; f < ni->sub[s]->nfree; f++) {
        bool missing;
        DL_TRY(use_name(im, gi, outer, ni->sub[s]->free[f], &ni->ndeps,
                        ni->deps, &missing));
        if (missing)
          return DL_UNREACHABLE(ctx);
      }
  }
  for (size_t i = 0; i < gp->n_output; i++) {
    const char *name = dl_pb_str(gp->output[i]->name);
    if (dl_namemap_get(&gi->defs, name, NULL))
      continue;
    if (*name && defined_outside(outer, name)) {
      DL_TRY(add_free(im, gi, name));
      continue;
    }
    return dl_error(ctx, DL_ERR_INVALID,
                    "%sgraph '%s': output '%s' is never "
                    "defined",
                    outer ? "sub" : "", dl_pb_str(gp->name), name);
  }
  DL_TRY(topo_sort(im, gi));
  *out = gi;
  return DL_OK;
}

/* ---- pass 2: values and nodes ----------------------------------------- */

typedef struct IScope {
  DlGraph *g;
  DlNameMap vals; /* name -> value id in g */
  struct IScope *parent;
} IScope;

static const char *arena_str(Imp *im, const char *s) {
  return dl_arena_strdup(&im->ctx->arena, dl_pb_str(s));
}

/* Value id for name in scope s; names from enclosing graphs get a captured
 * value in each graph on the way.  -1 when undefined. */
static int resolve(Imp *im, IScope *s, const char *name) {
  int id;
  if (dl_namemap_get(&s->vals, name, &id))
    return id;
  if (!s->parent)
    return -1;
  int pid = resolve(im, s->parent, name);
  if (pid < 0)
    return -1;
  const DlValue *pv = s->parent->g->values[pid];
  DlValue *v = dl_value_new(s->g, name, pv->dtype);
  if (!v)
    return -1;
  v->producer = -1;
  v->rank = -1;
  bool all_const = pv->rank >= 0;
  for (int d = 0; d < pv->rank && all_const; d++)
    all_const = dl_dim_is_const(&pv->dims[d], NULL);
  if (all_const) {
    v->rank = pv->rank;
    for (int d = 0; d < pv->rank; d++)
      v->dims[d] = pv->dims[d];
    v->data = pv->data;
  }
  const char *key = v->name ? v->name : arena_str(im, name);
  if (!key || !dl_namemap_put(&s->vals, key, v->id))
    return -1;
  return v->id;
}

/* Type and shape of a graph input.  strict (the main graph): a tensor with
 * a supported element type and a shape is required. */
static DlStatus input_type(Imp *im, DlGraph *g, const Onnx__ValueInfoProto *vi,
                           DlValue *v, bool strict) {
  DlCtx *ctx = im->ctx;
  const char *name = dl_pb_str(vi->name);
  const Onnx__TypeProto *tp = vi->type;
  v->rank = -1;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
      !tp->tensor_type) {
    if (!strict)
      return DL_OK;
    const char *kind =
        !tp                                                       ? NULL
        : tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "a sequence"
        : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE      ? "a map"
        : tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE
            ? "an optional"
        : tp->value_case == ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE
            ? "a sparse tensor"
            : "not a tensor";
    if (!kind)
      return dl_error(ctx, DL_ERR_UNSUPPORTED, "input '%s' has no type", name);
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "input '%s' is %s; only tensor inputs are supported", name,
                    kind);
  }
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  int32_t et = tt->has_elem_type ? tt->elem_type : 0;
  DlDType dt = dl_onnx_dtype(et);
  if (dt == DL_UNDEFINED && strict)
    return dl_error(ctx, et == 0 ? DL_ERR_INVALID : DL_ERR_UNSUPPORTED,
                    "input '%s': element type %s (%d) is not supported", name,
                    dl_onnx_dtype_name(et), (int)et);
  v->dtype = dt;
  const Onnx__TensorShapeProto *sh = tt->shape;
  if (!sh) {
    if (!strict)
      return DL_OK;
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "input '%s' has no shape (inputs need a declared rank)",
                    name);
  }
  if (sh->n_dim > DL_MAX_RANK) {
    if (!strict)
      return DL_OK;
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "input '%s': rank %zu is more than the supported %d", name,
                    sh->n_dim, DL_MAX_RANK);
  }
  DlDim dims[DL_MAX_RANK];
  for (size_t d = 0; d < sh->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dm = sh->dim[d];
    if (dm->value_case ==
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (dm->dim_value < 0)
        return dl_error(ctx, DL_ERR_INVALID, "input '%s': negative dim %lld",
                        name, (long long)dm->dim_value);
      dims[d] = dl_dim_const(dm->dim_value);
    } else {
      const char *p =
          dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
              ? dl_pb_str(dm->dim_param)
              : "";
      if (g->nsyms >= MAX_SYMS)
        return dl_error(ctx, DL_ERR_UNSUPPORTED,
                        "input '%s': more than %d symbolic dims in one graph",
                        name, MAX_SYMS);
      int sym = *p ? dl_graph_sym(g, p) : dl_graph_fresh_sym(g, "unk");
      if (sym < 0)
        return DL_ERR_NOMEM;
      dims[d] = dl_dim_sym(sym);
    }
  }
  v->rank = (int)sh->n_dim;
  for (size_t d = 0; d < sh->n_dim; d++)
    v->dims[d] = dims[d];
  return DL_OK;
}

static DlStatus build(Imp *im, GInfo *gi, IScope *outer, DlGraph **out);

static DlValue *detached_value(Imp *im, const char *name) {
  DlValue *v = dl_arena_alloc(&im->ctx->arena, sizeof *v);
  if (!v)
    return NULL;
  v->id = -1;
  v->producer = -1;
  v->rank = -1;
  v->name = arena_str(im, name);
  return v->name ? v : NULL;
}

/* Copies one attribute.  Sets *skip for attributes dlcc has no form for
 * (type protos) on ops it does not know anyway. */
static DlStatus convert_attr(Imp *im, DlNode *n, const Onnx__AttributeProto *at,
                             NodeInfo *ni, int *next_sub, IScope *scope,
                             DlAttr *out, bool *skip) {
  DlCtx *ctx = im->ctx;
  DlArena *a = &ctx->arena;
  const char *aname = dl_pb_str(at->name);
  int kind = attr_kind(at);
  *skip = false;
  out->name = arena_str(im, aname);
  if (!out->name)
    return DL_ERR_NOMEM;
  const char *what = NULL;
  switch (kind) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
    what = dl_arena_printf(a, "node '%s' (%s): attribute '%s'", n->name,
                           n->op_type, aname);
    if (!what)
      return DL_ERR_NOMEM;
    break;
  default:
    break;
  }
  switch (kind) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
    out->kind = DL_ATTR_FLOAT;
    out->f = at->f;
    return DL_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
    out->kind = DL_ATTR_INT;
    out->i = at->i;
    return DL_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
    out->kind = DL_ATTR_STRING;
    char *s = dl_arena_alloc(a, at->s.len + 1);
    if (!s)
      return DL_ERR_NOMEM;
    if (at->s.len)
      memcpy(s, at->s.data, at->s.len);
    out->s = s;
    out->s_len = at->s.len;
    return DL_OK;
  }
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: {
    size_t cnt =
        kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS ? at->n_floats
        : kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ? at->n_ints
                                                              : at->n_strings;
    if (!count_ok(cnt))
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "attribute '%s' has too many elements", aname);
    out->n = (int)cnt;
    if (kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS) {
      out->kind = DL_ATTR_FLOATS;
      out->floats = dl_arena_alloc(a, (cnt + 1) * sizeof(float));
      if (!out->floats)
        return DL_ERR_NOMEM;
      if (cnt)
        memcpy(out->floats, at->floats, cnt * sizeof(float));
    } else if (kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) {
      out->kind = DL_ATTR_INTS;
      out->ints = dl_arena_alloc(a, (cnt + 1) * sizeof(int64_t));
      if (!out->ints)
        return DL_ERR_NOMEM;
      if (cnt)
        memcpy(out->ints, at->ints, cnt * sizeof(int64_t));
    } else {
      out->kind = DL_ATTR_STRINGS;
      const char **ss = dl_arena_alloc(a, (cnt + 1) * sizeof *ss);
      if (!ss)
        return DL_ERR_NOMEM;
      for (size_t k = 0; k < cnt; k++) {
        const ProtobufCBinaryData *b = &at->strings[k];
        ss[k] =
            dl_arena_strndup(a, b->len ? (const char *)b->data : "", b->len);
        if (!ss[k])
          return DL_ERR_NOMEM;
      }
      out->strings = ss;
    }
    return DL_OK;
  }
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: {
    bool sparse = kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR;
    if (sparse ? !at->sparse_tensor : !at->t)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "attribute '%s' has no tensor", aname);
    out->kind = DL_ATTR_TENSOR;
    out->t = detached_value(
        im, sparse ? (at->sparse_tensor->values
                          ? dl_pb_str(at->sparse_tensor->values->name)
                          : "")
                   : dl_pb_str(at->t->name));
    if (!out->t)
      return DL_ERR_NOMEM;
    if (sparse)
      return dl_onnx_sparse(ctx, im->base_dir, at->sparse_tensor, what, out->t);
    return dl_onnx_tensor(ctx, im->base_dir, at->t, what, out->t);
  }
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: {
    bool sparse = kind == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS;
    size_t cnt = sparse ? at->n_sparse_tensors : at->n_tensors;
    if (!count_ok(cnt))
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "attribute '%s' has too many elements", aname);
    out->kind = DL_ATTR_TENSORS;
    out->n = (int)cnt;
    out->ts = dl_arena_alloc(a, (cnt + 1) * sizeof *out->ts);
    if (!out->ts)
      return DL_ERR_NOMEM;
    for (size_t k = 0; k < cnt; k++) {
      const Onnx__SparseTensorProto *st = sparse ? at->sparse_tensors[k] : NULL;
      const char *tname = sparse ? (st->values ? st->values->name : NULL)
                                 : at->tensors[k]->name;
      out->ts[k] = detached_value(im, dl_pb_str(tname));
      if (!out->ts[k])
        return DL_ERR_NOMEM;
      if (sparse)
        DL_TRY(dl_onnx_sparse(ctx, im->base_dir, st, what, out->ts[k]));
      else
        DL_TRY(dl_onnx_tensor(ctx, im->base_dir, at->tensors[k], what,
                              out->ts[k]));
    }
    return DL_OK;
  }
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    if (!at->g)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "attribute '%s' has no graph", aname);
    out->kind = DL_ATTR_GRAPH;
    return build(im, ni->sub[(*next_sub)++], scope, &out->g);
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
    out->kind = DL_ATTR_GRAPHS;
    out->n = (int)at->n_graphs;
    out->gs = dl_arena_alloc(a, (at->n_graphs + 1) * sizeof *out->gs);
    if (!out->gs)
      return DL_ERR_NOMEM;
    for (size_t k = 0; k < at->n_graphs; k++)
      DL_TRY(build(im, ni->sub[(*next_sub)++], scope, &out->gs[k]));
    return DL_OK;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
    if (n->op == DL_OP_UNKNOWN) {
      *skip = true;
      return DL_OK;
    }
    return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                         "attribute '%s' is a type; type attributes are not "
                         "supported",
                         aname);
  default:
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "attribute '%s' has no value or an unknown type %d",
                         aname, kind);
  }
}

static DlStatus build_node(Imp *im, GInfo *gi, IScope *scope, int index) {
  DlCtx *ctx = im->ctx;
  DlGraph *g = scope->g;
  const Onnx__NodeProto *np = gi->gp->node[index];
  NodeInfo *ni = &gi->nodes[index];
  const char *op_type = arena_str(im, np->op_type);
  const char *domain = arena_str(im, norm_domain(np->domain));
  const char *name =
      *dl_pb_str(np->name)
          ? arena_str(im, np->name)
          : dl_arena_printf(&ctx->arena, "%s_%d", op_type, index);
  if (!op_type || !domain || !name)
    return DL_ERR_NOMEM;
  DlOp op = dl_op_from_name(domain, op_type);
  DlNode *n =
      dl_node_new(g, op, op_type, name, (int)np->n_input, (int)np->n_output);
  if (!n)
    return DL_ERR_NOMEM;
  n->op_type = op_type;
  n->name = name;
  n->domain = domain;
  int ver;
  if (dl_namemap_get(&im->opsets, domain, &ver))
    n->opset = ver;
  else if (!*domain)
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "the model imports no version of the default ONNX "
                         "operator set (opset_import)");
  else
    n->opset = 0;
  for (size_t k = 0; k < np->n_input; k++) {
    const char *in = dl_pb_str(np->input[k]);
    n->in[k] = -1;
    if (!*in)
      continue;
    n->in[k] = resolve(im, scope, in);
    if (n->in[k] < 0)
      return DL_ERR_NOMEM; /* analyze() checked the names */
  }
  n->attrs =
      dl_arena_alloc(&ctx->arena, (np->n_attribute + 1) * sizeof(DlAttr));
  if (!n->attrs)
    return DL_ERR_NOMEM;
  int next_sub = 0;
  for (size_t k = 0; k < np->n_attribute; k++) {
    bool skip;
    DL_TRY(convert_attr(im, n, np->attribute[k], ni, &next_sub, scope,
                        &n->attrs[n->nattr], &skip));
    if (!skip)
      n->nattr++;
  }
  for (size_t k = 0; k < np->n_output; k++) {
    const char *on = dl_pb_str(np->output[k]);
    n->out[k] = -1;
    if (!*on)
      continue;
    DlValue *v = dl_value_new(g, on, DL_UNDEFINED);
    if (!v || !v->name || !dl_namemap_put(&scope->vals, v->name, v->id))
      return DL_ERR_NOMEM;
    v->producer = n->id;
    n->out[k] = v->id;
  }
  return DL_OK;
}

static DlStatus build(Imp *im, GInfo *gi, IScope *outer, DlGraph **out) {
  DlCtx *ctx = im->ctx;
  DlArena *a = &ctx->arena;
  const Onnx__GraphProto *gp = gi->gp;
  const char *gname = arena_str(im, gp->name);
  if (!gname)
    return DL_ERR_NOMEM;
  DlGraph *g = dl_graph_new(ctx, gname);
  if (!g)
    return DL_ERR_NOMEM;
  g->parent = outer ? outer->g : NULL;
  g->opset = im->default_opset;
  IScope scope = {.g = g, .parent = outer};
  if (!dl_namemap_init(&scope.vals, a, gi->defs.count + 8))
    return DL_ERR_NOMEM;

  for (size_t i = 0; i < gp->n_initializer + gp->n_sparse_initializer; i++) {
    bool sparse = i >= gp->n_initializer;
    const Onnx__TensorProto *t = sparse ? NULL : gp->initializer[i];
    const Onnx__SparseTensorProto *st =
        sparse ? gp->sparse_initializer[i - gp->n_initializer] : NULL;
    const char *name =
        sparse ? dl_pb_str(st->values->name) : dl_pb_str(t->name);
    DlValue *v = dl_value_new(g, name, DL_UNDEFINED);
    if (!v || !v->name)
      return DL_ERR_NOMEM;
    char *what = dl_arena_printf(a, "initializer '%s'", name);
    if (!what)
      return DL_ERR_NOMEM;
    if (sparse)
      DL_TRY(dl_onnx_sparse(ctx, im->base_dir, st, what, v));
    else
      DL_TRY(dl_onnx_tensor(ctx, im->base_dir, t, what, v));
    v->producer = -1;
    if (!dl_namemap_put(&scope.vals, v->name, v->id))
      return DL_ERR_NOMEM;
  }
  g->inputs = dl_arena_alloc(a, (gp->n_input + 1) * sizeof(int));
  g->outputs = dl_arena_alloc(a, (gp->n_output + 1) * sizeof(int));
  if (!g->inputs || !g->outputs)
    return DL_ERR_NOMEM;
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    const char *name = dl_pb_str(vi->name);
    if (dl_namemap_get(&scope.vals, name, NULL))
      continue; /* initializer */
    DlValue *v = dl_value_new(g, name, DL_UNDEFINED);
    if (!v || !v->name)
      return DL_ERR_NOMEM;
    DL_TRY(input_type(im, g, vi, v, outer == NULL));
    v->producer = -1;
    v->is_input = true;
    if (!dl_namemap_put(&scope.vals, v->name, v->id))
      return DL_ERR_NOMEM;
    g->inputs[g->ninputs++] = v->id;
  }
  for (size_t i = 0; i < gp->n_node; i++)
    DL_TRY(build_node(im, gi, &scope, gi->order[i]));
  for (size_t i = 0; i < gp->n_output; i++) {
    int id = resolve(im, &scope, dl_pb_str(gp->output[i]->name));
    if (id < 0)
      return DL_ERR_NOMEM; /* analyze() checked the names */
    g->values[id]->is_output = true;
    g->outputs[g->noutputs++] = id;
  }
  *out = g;
  return DL_OK;
}

/* ---- protobuf pre-check ------------------------------------------------ */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* Walks the wire format with the message descriptors and fails when
 * messages nest deeper than MAX_MSG_DEPTH or the framing is broken.
 * Returns 0 ok, 1 malformed, 2 too deep. */
static int check_nesting(const ProtobufCMessageDescriptor *desc,
                         const uint8_t *p, const uint8_t *end, int depth) {
  if (depth > MAX_MSG_DEPTH)
    return 2;
  while (p < end) {
    uint64_t key, len;
    if (!read_varint(&p, end, &key))
      return 1;
    uint32_t wt = (uint32_t)(key & 7);
    uint64_t field = key >> 3;
    switch (wt) {
    case 0:
      if (!read_varint(&p, end, &len))
        return 1;
      break;
    case 1:
      if (end - p < 8)
        return 1;
      p += 8;
      break;
    case 5:
      if (end - p < 4)
        return 1;
      p += 4;
      break;
    case 2: {
      if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p))
        return 1;
      const ProtobufCFieldDescriptor *f =
          field <= UINT32_MAX
              ? protobuf_c_message_descriptor_get_field(desc, (unsigned)field)
              : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        int r = check_nesting(f->descriptor, p, p + len, depth + 1);
        if (r)
          return r;
      }
      p += len;
      break;
    }
    default:
      return 1; /* groups are not used by ONNX */
    }
  }
  return 0;
}

/* ---- entry points ------------------------------------------------------ */

DlStatus dl_import_onnx_buffer(DlCtx *ctx, const char *display_name,
                               const uint8_t *data, size_t len,
                               const char *base_dir, DlGraph **out) {
  if (!ctx->file)
    ctx->file =
        dl_arena_strdup(&ctx->arena, display_name ? display_name : "<memory>");
  if (len == 0)
    return dl_error(ctx, DL_ERR_PARSE, "empty file, not an ONNX model");
  int r = check_nesting(&onnx__model_proto__descriptor, data, data + len, 0);
  if (r == 2)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "model nests messages more than %d levels deep",
                    MAX_MSG_DEPTH);
  Onnx__ModelProto *m = r ? NULL : onnx__model_proto__unpack(NULL, len, data);
  if (!m)
    return dl_error(ctx, DL_ERR_PARSE,
                    "not a valid ONNX model (damaged or truncated protobuf)");
  DlStatus s = DL_OK;
  int ndiags = ctx->ndiags;
  Imp im = {.ctx = ctx, .base_dir = base_dir};
  if (!m->graph) {
    s = dl_error(ctx, DL_ERR_INVALID, "model has no graph");
    goto done;
  }
  if (!dl_namemap_init(&im.opsets, &ctx->arena, m->n_opset_import + 4)) {
    s = DL_ERR_NOMEM;
    goto done;
  }
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *os = m->opset_import[i];
    const char *dom = norm_domain(os->domain);
    if (!os->has_version || os->version < 1 || os->version > INT_MAX) {
      s = dl_error(ctx, DL_ERR_INVALID,
                   "opset_import for domain '%s' has an invalid version %lld",
                   dom, (long long)os->version);
      goto done;
    }
    if (dl_namemap_get(&im.opsets, dom, NULL))
      continue; /* first one wins */
    const char *key = dl_arena_strdup(&ctx->arena, dom);
    if (!key || !dl_namemap_put(&im.opsets, key, (int)os->version)) {
      s = DL_ERR_NOMEM;
      goto done;
    }
    if (!*dom)
      im.default_opset = (int)os->version;
  }
  GInfo *gi;
  s = analyze(&im, m->graph, NULL, &gi);
  if (s == DL_OK) {
    DlGraph *g;
    s = build(&im, gi, NULL, &g);
    if (s == DL_OK)
      *out = g;
  }
done:
  onnx__model_proto__free_unpacked(m, NULL);
  if (s == DL_ERR_NOMEM && ctx->ndiags == ndiags)
    dl_error(ctx, DL_ERR_NOMEM, "out of memory while importing the model");
  return s;
}

DlStatus dl_import_onnx(DlCtx *ctx, const char *path, DlGraph **out) {
  if (!ctx->file)
    ctx->file = dl_arena_strdup(&ctx->arena, path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return dl_error(ctx, DL_ERR_IO, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return dl_error(ctx, DL_ERR_IO, "cannot open: %s", strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return dl_error(ctx, DL_ERR_IO, "cannot open: %s",
                    S_ISDIR(st.st_mode) ? strerror(EISDIR)
                                        : "not a regular file");
  }
  size_t len = (size_t)st.st_size;
  void *map = NULL;
  if (len > 0) {
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      return dl_error(ctx, DL_ERR_IO, "cannot read: %s", strerror(e));
    }
  }
  close(fd);
  /* external data lives next to the model */
  const char *slash = strrchr(path, '/');
  char *dir = slash
                  ? dl_arena_strndup(&ctx->arena, path,
                                     slash == path ? 1 : (size_t)(slash - path))
                  : dl_arena_strdup(&ctx->arena, ".");
  DlStatus s;
  if (!dir)
    s = DL_ERR_NOMEM;
  else
    s = dl_import_onnx_buffer(ctx, path, map, len, dir, out);
  if (map)
    munmap(map, len);
  return s;
}
