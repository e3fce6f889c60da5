/*
 * onnx_internal.h - pieces shared by the ONNX importer's files.
 */
#ifndef DLCC_ONNX_INTERNAL_H
#define DLCC_ONNX_INTERNAL_H

#include "frontend/onnx.pb-c.h"
#include "ir/ir.h"

/* Largest dense tensor a sparse tensor may expand to. */
#define DL_ONNX_SPARSE_LIMIT ((uint64_t)64 << 20)

/* Open-addressing string -> int map in the arena.  Keys are not copied:
 * they must outlive the map. */
typedef struct DlNameMap {
  DlArena *arena;
  const char **keys;
  int *vals;
  uint32_t cap; /* power of two, 0 before init */
  uint32_t count;
} DlNameMap;

bool dl_namemap_init(DlNameMap *m, DlArena *arena, size_t hint);
/* Returns true and sets *val when key is present. */
bool dl_namemap_get(const DlNameMap *m, const char *key, int *val);
/* Inserts or overwrites; false when memory is exhausted. */
bool dl_namemap_put(DlNameMap *m, const char *key, int val);

/* Converts a protobuf string that may be NULL. */
static inline const char *dl_pb_str(const char *s) {
  return s ? s : "";
}

/* ONNX name of a TensorProto data type, for messages. */
const char *dl_onnx_dtype_name(int32_t dt);
/* Maps an ONNX element type to a DlDType dlcc can hold; DL_UNDEFINED when
 * it cannot (strings, complex, 8-bit and smaller floats, 4-bit ints). */
DlDType dl_onnx_dtype(int32_t dt);

/* Decodes a tensor into v (dtype, rank, dims, data).  what describes it in
 * messages ("initializer 'w'").  base_dir: folder for external data, NULL
 * refuses external data. */
DlStatus dl_onnx_tensor(DlCtx *ctx, const char *base_dir,
                        const Onnx__TensorProto *t, const char *what,
                        DlValue *v);
/* Decodes a sparse tensor into a dense one. */
DlStatus dl_onnx_sparse(DlCtx *ctx, const char *base_dir,
                        const Onnx__SparseTensorProto *st, const char *what,
                        DlValue *v);

#endif
