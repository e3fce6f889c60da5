/*
 * tensor.c - dtypes, owned tensors and status messages of the runtime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

const char *dlcc_rt_strerror(int status) {
  switch (status) {
  case DLCC_OK:
    return "success";
  case DLCC_ERR_ARGUMENT:
    return "invalid argument";
  case DLCC_ERR_SHAPE:
    return "input shape does not match the module";
  case DLCC_ERR_DTYPE:
    return "input dtype does not match the module";
  case DLCC_ERR_WORKSPACE:
    return "workspace missing or too small";
  case DLCC_ERR_WEIGHTS:
    return "sidecar weights missing";
  case DLCC_ERR_RUNTIME:
    return "a kernel found bad data";
  case DLCC_RT_ERR_IO:
    return "input/output error";
  case DLCC_RT_ERR_FORMAT:
    return "malformed or unsupported file";
  case DLCC_RT_ERR_LOAD:
    return "module could not be loaded";
  case DLCC_RT_ERR_NOMEM:
    return "out of memory";
  default:
    return "unknown status";
  }
}

size_t dlcc_rt_dtype_size(int32_t dtype) {
  switch (dtype) {
  case DLCC_FLOAT32:
  case DLCC_INT32:
  case DLCC_UINT32:
    return 4;
  case DLCC_UINT8:
  case DLCC_INT8:
  case DLCC_BOOL:
    return 1;
  case DLCC_UINT16:
  case DLCC_INT16:
  case DLCC_FLOAT16:
    return 2;
  case DLCC_INT64:
  case DLCC_FLOAT64:
  case DLCC_UINT64:
    return 8;
  default:
    return 0;
  }
}

const char *dlcc_rt_dtype_name(int32_t dtype) {
  switch (dtype) {
  case DLCC_FLOAT32:
    return "float32";
  case DLCC_UINT8:
    return "uint8";
  case DLCC_INT8:
    return "int8";
  case DLCC_UINT16:
    return "uint16";
  case DLCC_INT16:
    return "int16";
  case DLCC_INT32:
    return "int32";
  case DLCC_INT64:
    return "int64";
  case DLCC_BOOL:
    return "bool";
  case DLCC_FLOAT16:
    return "float16";
  case DLCC_FLOAT64:
    return "float64";
  case DLCC_UINT32:
    return "uint32";
  case DLCC_UINT64:
    return "uint64";
  default:
    return "unknown";
  }
}

uint64_t dlcc_rt_tensor_numel(const dlcc_rt_tensor *t) {
  uint64_t n = 1;
  if (!t)
    return 0;
  for (int32_t i = 0; i < t->ndim && i < DLCC_MAX_RANK; i++)
    n *= t->shape[i] < 0 ? 0 : (uint64_t)t->shape[i];
  return n;
}

void dlcc_rt_tensor_free(dlcc_rt_tensor *t) {
  if (!t)
    return;
  if (t->owned)
    free(t->data);
  memset(t, 0, sizeof *t);
}

dlcc_tensor dlcc_rt_tensor_view(const dlcc_rt_tensor *t) {
  dlcc_tensor v;
  v.data = t->data;
  v.shape = t->shape;
  v.ndim = t->ndim;
  v.dtype = t->dtype;
  return v;
}

int dlcc_rt__err(char *buf, size_t len, int status, const char *fmt, ...) {
  if (buf && len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
  }
  return status;
}

void *dlcc_rt__alloc(uint64_t bytes) {
  void *p = NULL;
  if (bytes == 0)
    bytes = 1;
  /* Round up to the alignment so vector kernels may read whole lines. */
  if (bytes > (uint64_t)SIZE_MAX - 64)
    return NULL;
  bytes = (bytes + 63) & ~(uint64_t)63;
  if (posix_memalign(&p, 64, (size_t)bytes) != 0)
    return NULL;
  return p;
}

int dlcc_rt__shape_bytes(const int64_t *shape, int32_t ndim, size_t elem_size,
                         uint64_t *numel, uint64_t *bytes) {
  const uint64_t limit = (uint64_t)1 << 62;
  uint64_t n = 1;
  int zero = 0;
  for (int32_t i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return 0;
    if (shape[i] == 0) {
      zero = 1;
      continue;
    }
    if ((uint64_t)shape[i] > limit / n)
      return 0;
    n *= (uint64_t)shape[i];
  }
  if (zero)
    n = 0;
  if (elem_size && n > limit / elem_size)
    return 0;
  *numel = n;
  *bytes = n * elem_size;
  return 1;
}

void dlcc_rt__format_shape(const int64_t *shape, int32_t ndim, char *buf,
                           size_t len) {
  size_t pos = 0;
  if (!buf || len == 0)
    return;
  buf[0] = 0;
  pos += (size_t)snprintf(buf, len, "[");
  for (int32_t i = 0; i < ndim && pos < len; i++)
    pos += (size_t)snprintf(buf + pos, len - pos, "%s%lld", i ? "," : "",
                            (long long)shape[i]);
  if (pos < len)
    snprintf(buf + pos, len - pos, "]");
}
