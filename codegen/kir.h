/*
 * kir.h - the kernel IR: the one lowering of every op that every backend
 * renders.
 *
 * A Kernel is a loop nest over flat buffers: counted loops, scalar locals,
 * conditionals, loads and stores whose indices are integer expressions of
 * loop variables and graph symbols.  It is deliberately close to what a
 * scheduler manipulates (TVM's TIR, Halide's loop IR): loops carry flags
 * saying their iterations are independent (may be split across threads or
 * mapped to GPU blocks) or that they are a reduction, and a later scheduler
 * can tile, vectorize or replace a nest with a call to a micro-kernel
 * without the ops knowing.
 *
 * Ops build kernels with the KBuilder API below (an imperative builder with
 * a stack of open loops/ifs).  The C backend prints kernels as C; the
 * interpreter (kir_interp.c) executes them directly and is used for
 * constant folding and as the reference that backends are checked against.
 */
#ifndef DLCC_KIR_H
#define DLCC_KIR_H

#include "ir/ir.h"

typedef enum KExprKind {
  KE_INT,   /* integer constant (dtype: any int or bool) */
  KE_FLOAT, /* floating constant (dtype F32 or F64) */
  KE_VAR,   /* loop variable or scalar local */
  KE_SYM,   /* value of graph symbol `sym` at run time (I64) */
  KE_LOAD,  /* bufs[buf][idx] */
  KE_UNARY,
  KE_BINARY,
  KE_SELECT, /* a ? b : c */
  KE_CAST    /* convert a to dtype */
} KExprKind;

typedef enum KUnOp {
  KU_NEG,
  KU_ABS,
  KU_NOT, /* logical not on bool */
  KU_EXP,
  KU_LOG,
  KU_SQRT,
  KU_TANH,
  KU_ERF,
  KU_FLOOR,
  KU_CEIL,
  KU_ROUND, /* round half to even */
  KU_SIN,
  KU_COS,
  KU_COUNT
} KUnOp;

typedef enum KBinOp {
  KB_ADD,
  KB_SUB,
  KB_MUL,
  KB_DIV, /* float: IEEE; int: truncating (C) */
  KB_MOD, /* int: C remainder; float: fmod */
  KB_MIN, /* float: NaN-propagating like ONNX Min/Max */
  KB_MAX,
  KB_POW,
  KB_LT, /* comparisons produce DL_BOOL */
  KB_LE,
  KB_GT,
  KB_GE,
  KB_EQ,
  KB_NE,
  KB_AND, /* logical, on bool */
  KB_OR,
  KB_XOR,
  KB_COUNT
} KBinOp;

typedef struct KExpr KExpr;
struct KExpr {
  KExprKind kind;
  DlDType dtype;
  int64_t i; /* KE_INT value; KE_VAR var id; KE_SYM sym id; KE_LOAD buf */
  double f;  /* KE_FLOAT */
  int op;    /* KUnOp / KBinOp */
  KExpr *a, *b, *c; /* operands; KE_LOAD: a = index */
};

typedef enum KStmtKind {
  KS_BLOCK,  /* items[n] in order */
  KS_FOR,    /* for (var = 0; var < extent; var++) body */
  KS_IF,     /* if (cond) body else els (els may be NULL) */
  KS_DECL,   /* declare local `var` = value */
  KS_ASSIGN, /* var = value */
  KS_STORE   /* bufs[buf][index] = value */
} KStmtKind;

/* Loop flags. */
enum {
  KF_PARALLEL =
      1u << 0,         /* iterations independent: split across threads/blocks */
  KF_REDUCE = 1u << 1, /* iterations accumulate into a local */
  KF_VECTOR = 1u << 2, /* innermost, contiguous: a vectorization candidate */
  KF_UNROLL = 1u << 3
};

typedef struct KStmt KStmt;
struct KStmt {
  KStmtKind kind;
  unsigned flags; /* KS_FOR */
  int var;        /* KS_FOR, KS_DECL, KS_ASSIGN */
  int buf;        /* KS_STORE */
  KExpr *extent;  /* KS_FOR */
  KExpr *cond;    /* KS_IF */
  KExpr *index;   /* KS_STORE */
  KExpr *value;   /* KS_DECL, KS_ASSIGN, KS_STORE */
  KStmt *body;    /* KS_FOR, KS_IF (then) */
  KStmt *els;     /* KS_IF */
  int n, cap;     /* KS_BLOCK */
  KStmt **items;  /* KS_BLOCK */
};

typedef struct KVar {
  const char *name; /* hint for printing: "i0", "acc" */
  DlDType dtype;
} KVar;

typedef struct KBuf {
  int value; /* graph value id */
  DlDType dtype;
  bool written;
  /* Read buffers only: 1 + the index of a written buffer of this kernel
   * that may take over this buffer's storage (in place), or 0.  The op
   * promises that both have the same layout and that no element of this
   * buffer is read after the same element of the written buffer has been
   * stored (elementwise ops; row-wise Softmax and LayerNormalization, which
   * read a whole row before writing it).  The storage plan decides whether
   * to use it (kb_inplace). */
  int inplace;
} KBuf;

typedef struct Kernel {
  const char *name; /* unique C identifier, e.g. "k12_Conv" */
  int node;         /* graph node id it came from */
  int nbufs;
  KBuf *bufs;
  int nvars;
  KVar *vars;
  KStmt *body; /* a KS_BLOCK */
  DlGraph *g;  /* graph it came from: buffer shapes and messages (added) */
  /* 1 + buffer indices when the kernel does nothing but copy every element
   * of bufs[copy_in - 1], in order, to bufs[copy_out - 1] (Reshape and its
   * kin); the plan may then give both the same storage and drop the
   * kernel.  0 otherwise (kb_flat_copy). */
  int copy_in, copy_out;
} Kernel;

/* Kernels of a whole graph, in execution order. */
typedef struct KProgram {
  DlGraph *g;
  int nkernels;
  Kernel **kernels;
} KProgram;

/* ---- builder ---------------------------------------------------------- */

typedef struct KBuilder KBuilder;

KBuilder *kb_new(DlGraph *g, const DlNode *n); /* arena-allocated */
DlCtx *kb_ctx(KBuilder *kb);
/* Buffer slot for a graph value (deduplicated); write marks it an output. */
int kb_buf(KBuilder *kb, const DlValue *v, bool write);

/* Declares that read buffer `in` may share storage with written buffer
 * `out` (see KBuf.inplace). */
void kb_inplace(KBuilder *kb, int in, int out);
/* Declares that the whole kernel is an element-order copy of buffer `in`
 * to buffer `out` (see Kernel.copy_in). */
void kb_flat_copy(KBuilder *kb, int in, int out);

/* Expressions.  Integer helpers fold constants and identities (x+0, x*1). */
KExpr *ke_int(KBuilder *kb, int64_t v);             /* I64 */
KExpr *ke_const(KBuilder *kb, DlDType t, double v); /* any dtype */
KExpr *ke_var(KBuilder *kb, int var);
KExpr *ke_sym(KBuilder *kb, int sym);
KExpr *ke_dim(KBuilder *kb, const DlDim *d); /* I64 polynomial */
KExpr *ke_load(KBuilder *kb, int buf, KExpr *index);
KExpr *ke_un(KBuilder *kb, KUnOp op, KExpr *a);
KExpr *ke_bin(KBuilder *kb, KBinOp op, KExpr *a, KExpr *b);
KExpr *ke_select(KBuilder *kb, KExpr *cond, KExpr *a, KExpr *b);
KExpr *ke_cast(KBuilder *kb, DlDType t, KExpr *a);
#define ke_add(kb, a, b) ke_bin((kb), KB_ADD, (a), (b))
#define ke_sub(kb, a, b) ke_bin((kb), KB_SUB, (a), (b))
#define ke_mul(kb, a, b) ke_bin((kb), KB_MUL, (a), (b))
#define ke_div(kb, a, b) ke_bin((kb), KB_DIV, (a), (b))

/* Statements, appended to the innermost open block. */
int kb_for(KBuilder *kb, KExpr *extent, const char *hint, unsigned flags);
void kb_if(KBuilder *kb, KExpr *cond);
void kb_else(KBuilder *kb);
void kb_end(KBuilder *kb); /* closes the innermost for/if */
void kb_end_n(KBuilder *kb, int n);
int kb_decl(KBuilder *kb, const char *hint, DlDType t, KExpr *init);
void kb_assign(KBuilder *kb, int var, KExpr *value);
void kb_store(KBuilder *kb, int buf, KExpr *index, KExpr *value);

/* Opens rank nested loops over dims (the outer ones flagged `flags`, e.g.
 * KF_PARALLEL) and fills idx[rank] with the loop variables. */
void kb_for_shape(KBuilder *kb, int rank, const DlDim *dims, KExpr **idx,
                  unsigned flags);
/* Row-major flat index of idx[rank] in a tensor of shape dims. */
KExpr *ke_flat_index(KBuilder *kb, int rank, const DlDim *dims,
                     KExpr *const *idx);
/* Flat index into `in`, broadcast numpy-style (right-aligned) against an
 * output of rank out_rank indexed by idx. */
KExpr *ke_bcast_index(KBuilder *kb, const DlValue *in, int out_rank,
                      KExpr *const *idx);

/* Closes all blocks and returns the kernel; NULL if the builder recorded an
 * error (unbalanced blocks). */
Kernel *kb_finish(KBuilder *kb);

/* ---- whole programs, interpretation, printing ------------------------ */

/* Lowers every live node of g (after inference) into kernels. */
DlStatus kir_lower_graph(DlGraph *g, KProgram **out);

/* Executes kernel k on host memory: bufs[i] points at the storage of
 * k->bufs[i]; syms[] holds symbol values.  Bounds-checks every access. */
DlStatus kir_interpret(DlCtx *ctx, const Kernel *k, void *const *bufs,
                       const int64_t *syms);
/* Same, with the element count of every buffer given by the caller
 * (buf_numel[i] for bufs[i]) instead of computed from the graph values'
 * shapes.  Out-of-range accesses and integer division by zero return
 * DL_ERR_INVALID naming the node. */
DlStatus kir_interpret_n(DlCtx *ctx, const Kernel *k, void *const *bufs,
                         const int64_t *buf_numel, const int64_t *syms);

/* Readable dump of a kernel (for --emit=kir and tests). */
void kir_print(const DlGraph *g, const Kernel *k, void *file /* FILE* */);

#endif
