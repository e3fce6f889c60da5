/*
 * ir.c - dtypes, the op name table, graph construction and attributes.
 */
#include "ir/ir.h"

#include <stdio.h>
#include <string.h>

/* ---- dtypes ------------------------------------------------------------ */

static const struct {
  DlDType t;
  const char *name;
  size_t size;
} dtype_table[] = {
    {DL_F32, "f32", 4},   {DL_F16, "f16", 2},       {DL_BF16, "bf16", 2},
    {DL_F64, "f64", 8},   {DL_I8, "i8", 1},         {DL_I16, "i16", 2},
    {DL_I32, "i32", 4},   {DL_I64, "i64", 8},       {DL_U8, "u8", 1},
    {DL_U16, "u16", 2},   {DL_U32, "u32", 4},       {DL_U64, "u64", 8},
    {DL_BOOL, "bool", 1}, {DL_STRING, "string", 0},
};

size_t dl_dtype_size(DlDType t) {
  for (size_t i = 0; i < DL_ARRAY_LEN(dtype_table); i++)
    if (dtype_table[i].t == t)
      return dtype_table[i].size;
  return 0;
}

const char *dl_dtype_name(DlDType t) {
  for (size_t i = 0; i < DL_ARRAY_LEN(dtype_table); i++)
    if (dtype_table[i].t == t)
      return dtype_table[i].name;
  return "undefined";
}

DlDType dl_dtype_from_name(const char *s) {
  if (!s)
    return DL_UNDEFINED;
  for (size_t i = 0; i < DL_ARRAY_LEN(dtype_table); i++)
    if (strcmp(dtype_table[i].name, s) == 0)
      return dtype_table[i].t;
  return DL_UNDEFINED;
}

bool dl_dtype_is_float(DlDType t) {
  return t == DL_F32 || t == DL_F16 || t == DL_BF16 || t == DL_F64;
}

bool dl_dtype_is_int(DlDType t) {
  switch (t) {
  case DL_I8:
  case DL_I16:
  case DL_I32:
  case DL_I64:
  case DL_U8:
  case DL_U16:
  case DL_U32:
  case DL_U64:
    return true;
  default:
    return false;
  }
}

/* ---- op table ---------------------------------------------------------- */

static const char *const op_names[DL_OP_COUNT] = {
    [DL_OP_UNKNOWN] = "Unknown",
#define DL_OP(name, fam, min_in, max_in, min_out, max_out)                     \
  [DL_OP_##name] = #name,
#include "ops/ops.def"
#undef DL_OP
};

const char *dl_op_name(DlOp op) {
  if ((int)op < 0 || op >= DL_OP_COUNT)
    return "Unknown";
  return op_names[op];
}

/* Ops of the "fused" family are dlcc's own, in the "dlcc" domain. */
static const char *const op_families[DL_OP_COUNT] = {
    [DL_OP_UNKNOWN] = "",
#define DL_OP(name, fam, min_in, max_in, min_out, max_out)                     \
  [DL_OP_##name] = #fam,
#include "ops/ops.def"
#undef DL_OP
};

DlOp dl_op_from_name(const char *domain, const char *op_type) {
  if (!op_type)
    return DL_OP_UNKNOWN;
  bool internal = domain && strcmp(domain, "dlcc") == 0;
  if (!internal && domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
    return DL_OP_UNKNOWN;
  for (int i = 1; i < DL_OP_COUNT; i++)
    if (strcmp(op_names[i], op_type) == 0 &&
        (strcmp(op_families[i], "fused") == 0) == internal)
      return (DlOp)i;
  return DL_OP_UNKNOWN;
}

/* ---- graph construction ----------------------------------------------- */

/* Grows an arena array of elem-sized items to hold at least need items. */
static bool grow(DlArena *a, void **arr, int *cap, int need, size_t elem) {
  if (need <= *cap)
    return true;
  int ncap = *cap ? *cap : 16;
  while (ncap < need) {
    if (ncap > (1 << 29))
      return false;
    ncap *= 2;
  }
  void *p = dl_arena_alloc(a, (size_t)ncap * elem);
  if (!p)
    return false;
  if (*cap)
    memcpy(p, *arr, (size_t)*cap * elem);
  *arr = p;
  *cap = ncap;
  return true;
}

DlGraph *dl_graph_new(DlCtx *ctx, const char *name) {
  DlGraph *g = dl_arena_alloc(&ctx->arena, sizeof *g);
  if (!g)
    return NULL;
  g->ctx = ctx;
  g->name = dl_arena_strdup(&ctx->arena, name ? name : "main");
  if (!g->name)
    return NULL;
  g->opset = 17;
  return g;
}

DlValue *dl_value_new(DlGraph *g, const char *name, DlDType dtype) {
  DlArena *a = &g->ctx->arena;
  void *arr = g->values;
  if (!grow(a, &arr, &g->capvalues, g->nvalues + 1, sizeof(DlValue *)))
    return NULL;
  g->values = arr;
  DlValue *v = dl_arena_alloc(a, sizeof *v);
  if (!v)
    return NULL;
  if (name) {
    v->name = dl_arena_strdup(a, name);
  } else {
    /* "t<id>": unique among generated names since ids are.  A model value
     * could carry the same name; names are labels only (lookups use ids)
     * and the printer disambiguates duplicates. */
    char buf[32];
    snprintf(buf, sizeof buf, "t%d", g->nvalues);
    v->name = dl_arena_strdup(a, buf);
  }
  if (!v->name)
    return NULL;
  v->id = g->nvalues;
  v->dtype = dtype;
  v->rank = -1;
  v->producer = -1;
  g->values[g->nvalues++] = v;
  return v;
}

DlNode *dl_node_new(DlGraph *g, DlOp op, const char *op_type, const char *name,
                    int nin, int nout) {
  DlArena *a = &g->ctx->arena;
  if (nin < 0 || nout < 0)
    return NULL;
  void *arr = g->nodes;
  if (!grow(a, &arr, &g->capnodes, g->nnodes + 1, sizeof(DlNode *)))
    return NULL;
  g->nodes = arr;
  DlNode *n = dl_arena_alloc(a, sizeof *n);
  if (!n)
    return NULL;
  n->id = g->nnodes;
  n->op = op;
  n->op_type = dl_arena_strdup(a, op_type ? op_type : dl_op_name(op));
  n->domain = "";
  n->name = dl_arena_strdup(a, name ? name : "");
  n->opset = (int)g->opset;
  n->nin = nin;
  n->nout = nout;
  n->in = dl_arena_alloc(a, sizeof(int) * (size_t)(nin ? nin : 1));
  n->out = dl_arena_alloc(a, sizeof(int) * (size_t)(nout ? nout : 1));
  if (!n->op_type || !n->name || !n->in || !n->out)
    return NULL;
  for (int i = 0; i < nin; i++)
    n->in[i] = -1;
  for (int i = 0; i < nout; i++)
    n->out[i] = -1;
  g->nodes[g->nnodes++] = n;
  return n;
}

int dl_graph_sym(DlGraph *g, const char *name) {
  for (int i = 0; i < g->nsyms; i++)
    if (strcmp(g->syms[i], name) == 0)
      return i;
  if (g->nsyms >= 65535)
    return -1; /* sym ids are uint16_t in DlTerm */
  void *arr = (void *)g->syms;
  if (!grow(&g->ctx->arena, &arr, &g->capsyms, g->nsyms + 1,
            sizeof(const char *)))
    return -1;
  g->syms = arr;
  const char *copy = dl_arena_strdup(&g->ctx->arena, name);
  if (!copy)
    return -1;
  g->syms[g->nsyms] = copy;
  return g->nsyms++;
}

int dl_graph_fresh_sym(DlGraph *g, const char *prefix) {
  char buf[128];
  for (int k = 0;; k++) {
    snprintf(buf, sizeof buf, "%s_%d", prefix ? prefix : "d", k);
    bool used = false;
    for (int i = 0; i < g->nsyms && !used; i++)
      used = strcmp(g->syms[i], buf) == 0;
    if (!used)
      return dl_graph_sym(g, buf);
  }
}

/* ---- values ------------------------------------------------------------ */

bool dl_value_numel(const DlValue *v, DlDim *out) {
  if (v->rank < 0)
    return false;
  DlDim acc = dl_dim_const(1);
  for (int i = 0; i < v->rank; i++) {
    DlDim r;
    if (!dl_dim_mul(&acc, &v->dims[i], &r))
      return false;
    acc = r;
  }
  *out = acc;
  return true;
}

int64_t dl_value_numel_const(const DlValue *v) {
  if (v->rank < 0)
    return -1;
  int64_t n = 1;
  for (int i = 0; i < v->rank; i++) {
    int64_t d;
    if (!dl_dim_is_const(&v->dims[i], &d) || d < 0)
      return -1;
    if (__builtin_mul_overflow(n, d, &n))
      return -1;
  }
  return n;
}

void dl_value_set_shape(DlValue *v, int rank, const DlDim *dims) {
  if (rank < 0) {
    v->rank = -1;
    return;
  }
  if (rank > DL_MAX_RANK)
    rank = DL_MAX_RANK;
  v->rank = rank;
  for (int i = 0; i < rank; i++)
    v->dims[i] = dims[i];
  for (int i = rank; i < DL_MAX_RANK; i++)
    v->dims[i] = dl_dim_const(0);
}

bool dl_value_known_dims(const DlValue *v, DlDim *out, int cap, int *count) {
  if (v->rank < 0 || v->rank > 1)
    return false;
  if (!dl_dtype_is_int(v->dtype))
    return false;
  int64_t n = dl_value_numel_const(v);
  if (n < 0 || n > cap)
    return false;
  if (v->symval) {
    for (int64_t i = 0; i < n; i++)
      out[i] = v->symval[i];
  } else if (v->data && (v->dtype == DL_I64 || v->dtype == DL_I32)) {
    for (int64_t i = 0; i < n; i++) {
      int64_t x;
      if (v->dtype == DL_I64) {
        memcpy(&x, (const char *)v->data + i * 8, 8);
      } else {
        int32_t y;
        memcpy(&y, (const char *)v->data + i * 4, 4);
        x = y;
      }
      out[i] = dl_dim_const(x);
    }
  } else {
    return false;
  }
  if (count)
    *count = (int)n;
  return true;
}

/* ---- attributes -------------------------------------------------------- */

const DlAttr *dl_attr(const DlNode *n, const char *name) {
  for (int i = 0; i < n->nattr; i++)
    if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0)
      return &n->attrs[i];
  return NULL;
}

int64_t dl_attr_int(const DlNode *n, const char *name, int64_t dflt) {
  const DlAttr *a = dl_attr(n, name);
  return a && a->kind == DL_ATTR_INT ? a->i : dflt;
}

float dl_attr_float(const DlNode *n, const char *name, float dflt) {
  const DlAttr *a = dl_attr(n, name);
  if (!a)
    return dflt;
  if (a->kind == DL_ATTR_FLOAT)
    return a->f;
  if (a->kind == DL_ATTR_INT)
    return (float)a->i;
  return dflt;
}

const char *dl_attr_string(const DlNode *n, const char *name,
                           const char *dflt) {
  const DlAttr *a = dl_attr(n, name);
  return a && a->kind == DL_ATTR_STRING && a->s ? a->s : dflt;
}

int dl_attr_ints(const DlNode *n, const char *name, const int64_t **out) {
  const DlAttr *a = dl_attr(n, name);
  if (!a || a->kind != DL_ATTR_INTS)
    return -1;
  if (out)
    *out = a->ints;
  return a->n;
}

static bool attr_str_eq(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

bool dl_attr_equal(const DlAttr *a, const DlAttr *b) {
  if (!attr_str_eq(a->name, b->name) || a->kind != b->kind)
    return false;
  switch (a->kind) {
  case DL_ATTR_FLOAT:
    return memcmp(&a->f, &b->f, sizeof a->f) == 0;
  case DL_ATTR_INT:
    return a->i == b->i;
  case DL_ATTR_STRING:
    return a->s_len == b->s_len &&
           (a->s_len == 0 || memcmp(a->s, b->s, a->s_len) == 0);
  case DL_ATTR_FLOATS:
    return a->n == b->n &&
           (a->n == 0 ||
            memcmp(a->floats, b->floats, sizeof(float) * (size_t)a->n) == 0);
  case DL_ATTR_INTS:
    return a->n == b->n &&
           (a->n == 0 ||
            memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n) == 0);
  case DL_ATTR_STRINGS:
    if (a->n != b->n)
      return false;
    for (int i = 0; i < a->n; i++)
      if (!attr_str_eq(a->strings[i], b->strings[i]))
        return false;
    return true;
  default:
    return false;
  }
}

bool dl_attrs_equal(const DlNode *a, const DlNode *b) {
  if (a->nattr != b->nattr)
    return false;
  for (int i = 0; i < a->nattr; i++) {
    bool found = false;
    for (int j = 0; j < b->nattr && !found; j++)
      found = dl_attr_equal(&a->attrs[i], &b->attrs[j]);
    if (!found)
      return false;
  }
  return true;
}
