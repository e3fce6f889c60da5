/*
 * dlcc_module.h - the fixed ABI between a compiled dlcc module and its caller.
 *
 * Every module dlcc writes, for every target, exports the same shape of
 * interface.  An application either includes the generated "<model>.h" and
 * calls the prefixed entry points directly, or loads any module at run time
 * through the runtime library (dlcc_runtime.h), which finds the descriptor
 * through the one fixed symbol `dlcc_module_v1`.
 *
 * This header is plain C99 and depends on nothing but <stdint.h>/<stddef.h>.
 */
#ifndef DLCC_MODULE_H
#define DLCC_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLCC_ABI_VERSION 1
#define DLCC_MAX_RANK 8

/* Element types use the numbering of ONNX TensorProto.DataType. */
enum dlcc_dtype {
  DLCC_FLOAT32 = 1,
  DLCC_UINT8 = 2,
  DLCC_INT8 = 3,
  DLCC_UINT16 = 4,
  DLCC_INT16 = 5,
  DLCC_INT32 = 6,
  DLCC_INT64 = 7,
  DLCC_BOOL = 9,
  DLCC_FLOAT16 = 10,
  DLCC_FLOAT64 = 11,
  DLCC_UINT32 = 12,
  DLCC_UINT64 = 13
};

/* Status codes returned by module entry points.  0 is success. */
enum dlcc_status {
  DLCC_OK = 0,
  DLCC_ERR_ARGUMENT = 1,  /* NULL pointer, wrong count                 */
  DLCC_ERR_SHAPE = 2,     /* input shape does not match the signature  */
  DLCC_ERR_DTYPE = 3,     /* input dtype does not match the signature  */
  DLCC_ERR_WORKSPACE = 4, /* workspace missing or too small            */
  DLCC_ERR_WEIGHTS = 5,   /* sidecar weights required but not given    */
  DLCC_ERR_RUNTIME = 6    /* a kernel found bad data (e.g. index range) */
};

/* A dense row-major tensor as seen by a module. */
typedef struct dlcc_tensor {
  void *data;
  const int64_t *shape; /* ndim entries */
  int32_t ndim;
  int32_t dtype; /* enum dlcc_dtype */
} dlcc_tensor;

/*
 * One input or output of a module.  dims[i] >= 0 is a fixed extent; dims[i] < 0
 * means symbolic dim number (-dims[i] - 1), whose name is sym_names[that].
 * Output dims may be expressions of the symbols; their values at run time
 * come from output_shape().
 */
typedef struct dlcc_io_desc {
  const char *name;
  int32_t dtype;
  int32_t ndim;
  int64_t dims[DLCC_MAX_RANK];
} dlcc_io_desc;

/*
 * The descriptor returned by dlcc_module_v1().  All functions are re-entrant:
 * one module may be called from many threads at once, each with its own
 * workspace.
 */
typedef struct dlcc_module_desc {
  int32_t abi_version; /* DLCC_ABI_VERSION */
  const char *name;    /* prefix of the entry points */
  int32_t num_inputs, num_outputs, num_syms;
  const dlcc_io_desc *inputs;
  const dlcc_io_desc *outputs;
  const char *const *sym_names;
  /* Bytes of weights kept in a sidecar file (0 when embedded). */
  uint64_t sidecar_weights_bytes;

  /* Checks the inputs' dtypes and shapes and binds symbol values into
   * syms[num_syms]. */
  int32_t (*bind)(const dlcc_tensor *inputs, int64_t *syms);
  /* Workspace bytes needed for the bound symbol values. */
  uint64_t (*workspace_size)(const int64_t *syms);
  /* Shape of output i for the bound symbol values, into dims[ndim]. */
  int32_t (*output_shape)(int32_t i, const int64_t *syms, int64_t *dims);
  /* Runs the model.  outputs[i].data must point to enough memory for the
   * shape given by output_shape(); workspace must hold workspace_size()
   * bytes, aligned to 64.  weights is NULL for embedded weights, else the
   * sidecar's bytes (the runtime library maps them). */
  int32_t (*run)(const dlcc_tensor *inputs, dlcc_tensor *outputs,
                 void *workspace, uint64_t workspace_bytes,
                 const void *weights);
} dlcc_module_desc;

/* The one fixed-name symbol every module exports. */
typedef const dlcc_module_desc *(*dlcc_module_v1_fn)(void);
#define DLCC_MODULE_SYMBOL "dlcc_module_v1"

#ifdef __cplusplus
}
#endif
#endif
