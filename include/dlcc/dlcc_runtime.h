/*
 * dlcc_runtime.h - load and run any dlcc module at run time.
 *
 * The runtime library needs only libc, libm and libdl.  Typical use:
 *
 *   char err[256];
 *   dlcc_rt_module *m;
 *   if (dlcc_rt_load("model.so", &m, err, sizeof err) != DLCC_OK) ...
 *   dlcc_rt_session *s = dlcc_rt_session_new(m);   // one per thread
 *   dlcc_rt_tensor out[1] = {0};                     // data NULL: allocated
 *   if (dlcc_rt_run(s, inputs, 1, out, 1) != DLCC_OK)
 *     puts(dlcc_rt_session_error(s));
 *   ... use out[0].data, out[0].shape ...
 *   dlcc_rt_tensor_free(&out[0]);
 *   dlcc_rt_session_free(s);
 *   dlcc_rt_unload(m);
 *
 * A loaded module is read-only after dlcc_rt_load and may be shared by any
 * number of threads, each running through its own session.  A session owns
 * the workspace (grown as needed and reused across runs) and the message of
 * its last error; it must not be used by two threads at once.
 *
 * Tensor files: .npy (NumPy, C order, little-endian) and serialized ONNX
 * TensorProto (.pb) can be read and written with the dlcc_rt_*_read/_write
 * functions below.
 *
 * No function aborts on bad input: every failure returns a status (the
 * module codes of dlcc_module.h, or the DLCC_RT_ERR_* codes below) with a
 * message.
 */
#ifndef DLCC_RUNTIME_H
#define DLCC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "dlcc/dlcc_module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of the runtime library, in addition to enum dlcc_status. */
enum dlcc_rt_status {
  DLCC_RT_ERR_IO = 100,     /* a file could not be opened, read or written */
  DLCC_RT_ERR_FORMAT = 101, /* a file is malformed or not supported        */
  DLCC_RT_ERR_LOAD = 102,   /* dlopen/dlsym failed or a bad descriptor     */
  DLCC_RT_ERR_NOMEM = 103   /* out of memory                              */
};

/* A generic one-line description of a status code. */
const char *dlcc_rt_strerror(int status);

/* Bytes per element of a dtype (enum dlcc_dtype), 0 when unknown. */
size_t dlcc_rt_dtype_size(int32_t dtype);
/* "float32", "int64", ...; "unknown" when unknown. */
const char *dlcc_rt_dtype_name(int32_t dtype);

/*
 * A tensor owned by (or handed to) the runtime: the shape is stored inline.
 * When the runtime allocates data (outputs passed with data NULL, tensors
 * read from files) it sets owned = 1; dlcc_rt_tensor_free releases it.
 * data is always 64-byte aligned when the runtime allocated it.
 */
typedef struct dlcc_rt_tensor {
  void *data;
  int64_t shape[DLCC_MAX_RANK];
  int32_t ndim;
  int32_t dtype;     /* enum dlcc_dtype */
  uint64_t nbytes;   /* bytes of the elements: numel * dtype size */
  uint64_t capacity; /* bytes available at data (set it for own buffers) */
  int32_t owned;     /* 1: data was allocated by the runtime */
} dlcc_rt_tensor;

/* Element count of a tensor (product of its shape; 1 for rank 0). */
uint64_t dlcc_rt_tensor_numel(const dlcc_rt_tensor *t);
/* Releases data when owned and clears the tensor.  NULL is accepted. */
void dlcc_rt_tensor_free(dlcc_rt_tensor *t);
/* A dlcc_tensor view of t (its shape points into t). */
dlcc_tensor dlcc_rt_tensor_view(const dlcc_rt_tensor *t);

/* ---- modules -------------------------------------------------------------
 */

typedef struct dlcc_rt_module dlcc_rt_module;

/*
 * Loads a module: dlopen(RTLD_NOW | RTLD_LOCAL), looks up dlcc_module_v1,
 * checks the ABI version and the descriptor, and when the module keeps its
 * weights in a sidecar maps "<path>.weights" read-only (it must exist and
 * have exactly sidecar_weights_bytes bytes).  On failure *out is NULL and
 * errbuf (if not NULL) holds a message naming the file.
 */
int dlcc_rt_load(const char *path, dlcc_rt_module **out, char *errbuf,
                 size_t errlen);
/* Unloads a module.  Every session of it must have been freed. */
void dlcc_rt_unload(dlcc_rt_module *mod);
/* The module's descriptor (inputs, outputs, symbols). */
const dlcc_module_desc *dlcc_rt_desc(const dlcc_rt_module *mod);
/* The sidecar weights (NULL when embedded). */
const void *dlcc_rt_weights(const dlcc_rt_module *mod);
/* Position of the input/output with this name, -1 when none. */
int32_t dlcc_rt_find_input(const dlcc_rt_module *mod, const char *name);
int32_t dlcc_rt_find_output(const dlcc_rt_module *mod, const char *name);
/* Writes a signature such as "float32[N,3,224,224]" for an input
 * (is_output 0) or output (1); returns the length snprintf would. */
int dlcc_rt_format_io(const dlcc_rt_module *mod, int is_output, int32_t i,
                      char *buf, size_t len);

/* ---- sessions ------------------------------------------------------------
 */

typedef struct dlcc_rt_session dlcc_rt_session;

/* A new session of a loaded module; NULL when out of memory. */
dlcc_rt_session *dlcc_rt_session_new(dlcc_rt_module *mod);
void dlcc_rt_session_free(dlcc_rt_session *s);
/* The message of the session's last failure ("" after a success). */
const char *dlcc_rt_session_error(const dlcc_rt_session *s);
/* The symbol values bound by the last successful run or prepare
 * (num_syms entries). */
const int64_t *dlcc_rt_session_syms(const dlcc_rt_session *s);
/* Current workspace size in bytes. */
uint64_t dlcc_rt_session_workspace_bytes(const dlcc_rt_session *s);

/*
 * Checks the inputs and computes the outputs' shapes without running:
 * fills outputs[i].shape/ndim/dtype/nbytes; data is left untouched.
 */
int dlcc_rt_prepare(dlcc_rt_session *s, const dlcc_tensor *inputs,
                    int32_t num_inputs, dlcc_rt_tensor *outputs,
                    int32_t num_outputs);

/*
 * Runs the module.  inputs are in the descriptor's order; their dtypes and
 * shapes are checked.  For each output: data NULL -> the runtime allocates
 * it (owned = 1; free with dlcc_rt_tensor_free); data not NULL -> it must
 * hold capacity >= the output's bytes (an owned buffer that is too small is
 * reallocated, so passing the same outputs again reuses them).  The shape,
 * ndim, dtype and nbytes of every output are filled in.  outputs must be
 * initialized (zeroed, or data/capacity set); after a failure, outputs the
 * runtime allocated are still owned: release them with dlcc_rt_tensor_free.
 */
int dlcc_rt_run(dlcc_rt_session *s, const dlcc_tensor *inputs,
                int32_t num_inputs, dlcc_rt_tensor *outputs,
                int32_t num_outputs);

/* ---- tensor files --------------------------------------------------------
 * Readers fill *t with an owned tensor (free with dlcc_rt_tensor_free); on
 * failure *t is cleared and errbuf holds a message naming the file.
 */

/* .npy, versions 1.0/2.0/3.0, C order, little-endian: '<f4' '<f8' '<f2'
 * '<i8' '<i4' '<i2' '|i1' '<u8' '<u4' '<u2' '|u1' '|b1'. */
int dlcc_rt_npy_read(const char *path, dlcc_rt_tensor *t, char *errbuf,
                     size_t errlen);
int dlcc_rt_npy_write(const char *path, const dlcc_rt_tensor *t, char *errbuf,
                      size_t errlen);

/* Serialized onnx.TensorProto.  *name_out (when name_out is not NULL)
 * receives the tensor's name, malloc'ed (free with free()), or NULL. */
int dlcc_rt_pb_read(const char *path, dlcc_rt_tensor *t, char **name_out,
                    char *errbuf, size_t errlen);
/* Writes dims, data_type, name (when not NULL) and raw_data. */
int dlcc_rt_pb_write(const char *path, const dlcc_rt_tensor *t,
                     const char *name, char *errbuf, size_t errlen);

/* In-memory forms of the same (buffers are not modified; where names the
 * data in messages). */
int dlcc_rt_npy_parse(const void *buf, size_t len, const char *where,
                      dlcc_rt_tensor *t, char *errbuf, size_t errlen);
int dlcc_rt_pb_parse(const void *buf, size_t len, const char *where,
                     dlcc_rt_tensor *t, char **name_out, char *errbuf,
                     size_t errlen);

/* Reads .npy or .pb by the file's extension (anything but .npy is read as
 * a TensorProto). */
int dlcc_rt_tensor_read(const char *path, dlcc_rt_tensor *t, char *errbuf,
                        size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
