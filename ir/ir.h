/*
 * ir.h - the tensor graph IR.
 *
 * A DlGraph holds values and nodes.  A value has a dtype and a shape whose
 * dims are DlDim (constants or symbolic polynomials).  A value may carry
 * constant data (an initializer or a folded result) and, for small integer
 * tensors used in shape arithmetic, a "symbolic value": each element known
 * as a DlDim even though not a compile-time constant (Shape of a tensor with
 * a symbolic batch is [batch, 3, 224, 224]).
 *
 * Nodes are kept in topological order.  Every node's op is one row of the
 * op table (ops/ops.def); unsupported ONNX ops keep DL_OP_UNKNOWN and their
 * op_type string so the driver can list them all at once.
 *
 * All memory belongs to the context arena.
 */
#ifndef DLCC_IR_H
#define DLCC_IR_H

#include "ir/base.h"
#include "ir/dim.h"

#define DL_MAX_RANK 8

/* ONNX TensorProto.DataType numbering. */
typedef enum DlDType {
  DL_UNDEFINED = 0,
  DL_F32 = 1,
  DL_U8 = 2,
  DL_I8 = 3,
  DL_U16 = 4,
  DL_I16 = 5,
  DL_I32 = 6,
  DL_I64 = 7,
  DL_STRING = 8,
  DL_BOOL = 9,
  DL_F16 = 10,
  DL_F64 = 11,
  DL_U32 = 12,
  DL_U64 = 13,
  DL_BF16 = 16
} DlDType;

size_t dl_dtype_size(DlDType t);      /* 0 for unsupported */
const char *dl_dtype_name(DlDType t); /* "f32", "i64", "bool", ... */
DlDType dl_dtype_from_name(const char *s);
bool dl_dtype_is_float(DlDType t);
bool dl_dtype_is_int(DlDType t); /* signed or unsigned, not bool */

/* ---- op table --------------------------------------------------------- */

typedef enum DlOp {
  DL_OP_UNKNOWN = 0,
#define DL_OP(name, fam, min_in, max_in, min_out, max_out) DL_OP_##name,
#include "ops/ops.def"
#undef DL_OP
  DL_OP_COUNT
} DlOp;

const char *dl_op_name(DlOp op); /* ONNX op type */
DlOp dl_op_from_name(const char *domain, const char *op_type);

/* ---- attributes ------------------------------------------------------- */

typedef enum DlAttrKind {
  DL_ATTR_FLOAT = 1,
  DL_ATTR_INT,
  DL_ATTR_STRING,
  DL_ATTR_TENSOR,
  DL_ATTR_GRAPH,
  DL_ATTR_FLOATS,
  DL_ATTR_INTS,
  DL_ATTR_STRINGS,
  DL_ATTR_TENSORS,
  DL_ATTR_GRAPHS
} DlAttrKind;

struct DlValue;
struct DlGraph;

typedef struct DlAttr {
  const char *name;
  DlAttrKind kind;
  float f;
  int64_t i;
  const char *s; /* NUL-terminated copy; s_len bytes (may hold NULs) */
  size_t s_len;
  int n; /* element count for the list kinds */
  float *floats;
  int64_t *ints;
  const char **strings;
  struct DlValue *t;   /* TENSOR: a detached constant value */
  struct DlValue **ts; /* TENSORS */
  struct DlGraph *g;   /* GRAPH: subgraph, kept for control flow */
  struct DlGraph **gs; /* GRAPHS */
} DlAttr;

/* ---- values and nodes ------------------------------------------------- */

typedef struct DlValue {
  int id; /* index in graph->values; -1 when detached */
  const char *name;
  DlDType dtype;
  int rank; /* -1 while unknown */
  DlDim dims[DL_MAX_RANK];
  void *data;     /* constant contents, row-major, host byte order */
  DlDim *symval;  /* known element values for small int tensors, or NULL */
  int producer;   /* node id, or -1 for graph inputs and constants */
  bool is_input;  /* graph input (not an initializer) */
  bool is_output; /* graph output */
} DlValue;

typedef struct DlNode {
  int id;
  DlOp op;
  const char *op_type; /* as written in the model */
  const char *domain;  /* "" for the default ONNX domain */
  const char *name;    /* may be "" in the model; the importer names it */
  int opset;           /* opset version of its domain */
  int nin, nout;
  int *in;  /* value ids; -1 for an omitted optional input */
  int *out; /* value ids */
  int nattr;
  DlAttr *attrs;
  bool dead; /* removed by a pass; skipped everywhere */
} DlNode;

typedef struct DlGraph {
  DlCtx *ctx;
  const char *name;
  struct DlGraph *parent; /* enclosing graph for subgraphs */
  int nvalues, capvalues;
  DlValue **values;
  int nnodes, capnodes;
  DlNode **nodes; /* topological order */
  int ninputs, noutputs;
  int *inputs;  /* value ids of runtime inputs, in model order */
  int *outputs; /* value ids of outputs, in model order */
  int nsyms, capsyms;
  const char **syms; /* symbol names; DlDim sym ids index this */
  int64_t opset;     /* default-domain opset */
} DlGraph;

DlGraph *dl_graph_new(DlCtx *ctx, const char *name);
/* New value with unknown shape; name is copied (NULL -> generated). */
DlValue *dl_value_new(DlGraph *g, const char *name, DlDType dtype);
/* New node with nin/nout slots (filled with -1). */
DlNode *dl_node_new(DlGraph *g, DlOp op, const char *op_type, const char *name,
                    int nin, int nout);
/* Intern a symbol name; returns its id. */
int dl_graph_sym(DlGraph *g, const char *name);
/* A fresh symbol named prefix_N not used yet. */
int dl_graph_fresh_sym(DlGraph *g, const char *prefix);

static inline DlValue *dl_in(const DlGraph *g, const DlNode *n, int i) {
  return (i < n->nin && n->in[i] >= 0) ? g->values[n->in[i]] : NULL;
}
static inline DlValue *dl_out(const DlGraph *g, const DlNode *n, int i) {
  return (i < n->nout && n->out[i] >= 0) ? g->values[n->out[i]] : NULL;
}

/* Element count as a dim (product of dims); false if not representable. */
bool dl_value_numel(const DlValue *v, DlDim *out);
/* Element count when every dim is constant; -1 otherwise. */
int64_t dl_value_numel_const(const DlValue *v);
/* Set shape from an array of dims. */
void dl_value_set_shape(DlValue *v, int rank, const DlDim *dims);
/* If v is a 0-D/1-D integer tensor whose elements are known (constant data
 * or symval), writes them as dims (at most cap) and returns true. */
bool dl_value_known_dims(const DlValue *v, DlDim *out, int cap, int *count);

/* Attribute lookup; the getters return dflt when absent. */
const DlAttr *dl_attr(const DlNode *n, const char *name);
/* Same name, kind and value (graph attributes are never equal). */
bool dl_attr_equal(const DlAttr *a, const DlAttr *b);
/* Same attributes, in any order. */
bool dl_attrs_equal(const DlNode *a, const DlNode *b);
int64_t dl_attr_int(const DlNode *n, const char *name, int64_t dflt);
float dl_attr_float(const DlNode *n, const char *name, float dflt);
const char *dl_attr_string(const DlNode *n, const char *name, const char *dflt);
/* INTS attribute: returns count (or -1 if absent), pointer in *out. */
int dl_attr_ints(const DlNode *n, const char *name, const int64_t **out);

/* ---- checks and text form -------------------------------------------- */

/* Structural verifier: ids in range, topological order, every used value
 * defined once, shapes known after inference when `typed` is set. */
DlStatus dl_verify(DlGraph *g, bool typed);

/* Textual IR.  The printer writes a stable form that dl_ir_parse reads back
 * into an equal graph (printing both gives identical text). */
DlStatus dl_ir_print(DlGraph *g, void *file /* FILE* */);
char *dl_ir_to_string(DlGraph *g); /* arena string */
DlStatus dl_ir_parse(DlCtx *ctx, const char *text, DlGraph **out);

/* Shape and type inference plus constant folding, node by node in order
 * (ops/infer.c).  Nodes with DL_OP_UNKNOWN are reported together. */
DlStatus dl_infer_graph(DlGraph *g);

#endif
