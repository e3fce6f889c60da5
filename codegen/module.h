/*
 * module.h - from a KProgram to a module: storage plan and backends.
 *
 * The plan decides where every value used at run time lives: a caller's
 * input or output buffer, the read-only weight blob, or a slot in the one
 * workspace.  It is backend independent; each backend renders the same
 * program and plan (C source today; LLVM IR and CUDA render the same).
 */
#ifndef DLCC_MODULE_GEN_H
#define DLCC_MODULE_GEN_H

#include "codegen/kir.h"

typedef enum KStorageKind {
  KST_NONE = 0, /* not used at run time */
  KST_INPUT,    /* index = graph input position */
  KST_OUTPUT,   /* index = graph output position */
  KST_WEIGHT,   /* offset into the weight blob */
  KST_WORK      /* index = workspace slot */
} KStorageKind;

typedef struct KStorage {
  KStorageKind kind;
  int index;
  uint64_t offset; /* KST_WEIGHT */
} KStorage;

/* A workspace slot, shared over time by values whose lifetimes do not
 * overlap: offset(slot i) = align64(offset(i-1) + bytes(i-1)), and
 * bytes(i) = the largest of sizes[0..nsizes-1], each a polynomial of the
 * symbols (element count * element size of a value placed there; constant
 * sizes are merged into one). */
typedef struct KSlot {
  int value; /* the first value placed in the slot */
  int nsizes;
  DlDim *sizes;
} KSlot;

typedef struct KPlan {
  KStorage *storage; /* indexed by value id */
  int nslots;
  KSlot *slots;
  int ninplace;     /* values that took over a dying input's slot in place */
  int naliased;     /* copy kernels dropped: both values share storage */
  uint8_t *weights; /* blob of all constants used at run time, 64-aligned */
  uint64_t weights_bytes;
  bool weights_sidecar; /* blob goes to a separate file, mmapped */
} KPlan;

DlStatus kplan_build(KProgram *p, KPlan **out);
/* Default size above which the weight blob goes to a sidecar file. */
#define DL_SIDECAR_THRESHOLD_DEFAULT ((uint64_t)64 << 20)
/* kplan_build with an explicit sidecar threshold in bytes (kplan_build uses
 * DL_SIDECAR_THRESHOLD_DEFAULT).  May add copy kernels to p for outputs
 * that alias inputs, constants or other outputs. */
DlStatus kplan_build_ex(KProgram *p, uint64_t sidecar_threshold, KPlan **out);

/* What a backend is asked to write. */
typedef struct DlEmitRequest {
  const char *prefix;       /* C identifier prefix of the entry points */
  const char *out_path;     /* .so / .c / .o to write */
  const char *header_path;  /* model.h, or NULL */
  const char *sidecar_path; /* weights file when plan->weights_sidecar */
  const char *target;       /* triple or alias; NULL = host */
  int opt_level;
  const char *cpu;      /* target CPU refinement or NULL (added: LLVM) */
  const char *features; /* target features or NULL (added: LLVM) */
} DlEmitRequest;

typedef struct DlBackend {
  const char *name; /* "c", "llvm", "cuda" */
  /* Writes a C source (emit_c) or a linked shared object (emit_so). */
  DlStatus (*emit_source)(KProgram *p, KPlan *plan, const DlEmitRequest *rq);
  DlStatus (*emit_shared)(KProgram *p, KPlan *plan, const DlEmitRequest *rq);
} DlBackend;

const DlBackend *dl_backend_c(void);

/* Workspace bytes the plan needs for symbol values syms[] (added for
 * --stats; must follow the layout the backends use). */
uint64_t kplan_workspace_bytes(const KPlan *p, const int64_t *syms);

/* Sum of the sizes of all values placed in the workspace, as if each had
 * a slot of its own (what the plan saves is measured against it). */
uint64_t kplan_intermediate_bytes(const KProgram *p, const KPlan *plan,
                                  const int64_t *syms);

/* True when buffers a and b of kernel k have the same storage: then
 * neither may be declared non-aliasing (restrict / noalias). */
bool kplan_bufs_share(const KPlan *plan, const Kernel *k, int a, int b);

/* The plan as text, one line per slot and per kernel (--emit=plan). */
DlStatus kplan_print(const KProgram *p, const KPlan *plan, void *file);

/* The generated header, common to every backend. */
DlStatus dl_write_header(KProgram *p, KPlan *plan, const DlEmitRequest *rq);

/* True when symbol sym appears in a workspace slot size, an input or output
 * dim, or a kernel: the backends bind and compute only those. */
bool kplan_sym_used(const KProgram *p, const KPlan *plan, int sym);

#endif
