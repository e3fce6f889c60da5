/*
 * onnx_tensor.c - decoding ONNX TensorProto and SparseTensorProto into
 * constant values: inline typed fields, raw_data and external data files.
 *
 * Nothing in the model is trusted: ranks, dims and byte counts are checked
 * before anything is allocated, and data must match the dims exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/onnx_internal.h"

static const char *const onnx_type_names[] = {
    "UNDEFINED",      "FLOAT",        "UINT8",          "INT8",
    "UINT16",         "INT16",        "INT32",          "INT64",
    "STRING",         "BOOL",         "FLOAT16",        "DOUBLE",
    "UINT32",         "UINT64",       "COMPLEX64",      "COMPLEX128",
    "BFLOAT16",       "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
    "FLOAT8E5M2FNUZ", "UINT4",        "INT4",           "FLOAT4E2M1",
    "FLOAT8E8M0",     "UINT2",        "INT2",           "FLOAT6E2M3",
    "FLOAT6E3M2"};

const char *dl_onnx_dtype_name(int32_t dt) {
  if (dt >= 0 && (size_t)dt < DL_ARRAY_LEN(onnx_type_names))
    return onnx_type_names[dt];
  return "unknown type";
}

DlDType dl_onnx_dtype(int32_t dt) {
  switch (dt) {
  case DL_F32:
  case DL_U8:
  case DL_I8:
  case DL_U16:
  case DL_I16:
  case DL_I32:
  case DL_I64:
  case DL_BOOL:
  case DL_F16:
  case DL_F64:
  case DL_U32:
  case DL_U64:
  case DL_BF16:
    return (DlDType)dt;
  default:
    return DL_UNDEFINED;
  }
}

static size_t elem_size(DlDType t) {
  switch (t) {
  case DL_U8:
  case DL_I8:
  case DL_BOOL:
    return 1;
  case DL_U16:
  case DL_I16:
  case DL_F16:
  case DL_BF16:
    return 2;
  case DL_F32:
  case DL_I32:
  case DL_U32:
    return 4;
  case DL_I64:
  case DL_U64:
  case DL_F64:
    return 8;
  default:
    return 0;
  }
}

/* Sets dtype and shape of v from a data type and dims; returns the element
 * count and byte size. */
static DlStatus tensor_header(DlCtx *ctx, int32_t data_type, size_t ndims,
                              const int64_t *dims, const char *what, DlValue *v,
                              uint64_t *numel, uint64_t *bytes) {
  if (data_type == 8)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "%s: string tensors are not supported", what);
  DlDType t = dl_onnx_dtype(data_type);
  if (t == DL_UNDEFINED)
    return dl_error(ctx, data_type == 0 ? DL_ERR_INVALID : DL_ERR_UNSUPPORTED,
                    "%s: element type %s (%d) is not supported", what,
                    dl_onnx_dtype_name(data_type), (int)data_type);
  if (ndims > DL_MAX_RANK)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "%s: rank %zu is more than the supported %d", what, ndims,
                    DL_MAX_RANK);
  uint64_t n = 1;
  bool zero = false;
  for (size_t i = 0; i < ndims; i++) {
    if (dims[i] < 0)
      return dl_error(ctx, DL_ERR_INVALID, "%s: negative dim %lld", what,
                      (long long)dims[i]);
    if (dims[i] == 0)
      zero = true;
  }
  for (size_t i = 0; i < ndims && !zero; i++) {
    if (__builtin_mul_overflow(n, (uint64_t)dims[i], &n) ||
        n > (uint64_t)INT64_MAX)
      return dl_error(ctx, DL_ERR_INVALID, "%s: element count overflows", what);
  }
  if (zero)
    n = 0;
  uint64_t b;
  if (__builtin_mul_overflow(n, (uint64_t)elem_size(t), &b) ||
      b > (uint64_t)SIZE_MAX / 2)
    return dl_error(ctx, DL_ERR_INVALID, "%s: byte size overflows", what);
  v->dtype = t;
  v->rank = (int)ndims;
  for (size_t i = 0; i < ndims; i++)
    v->dims[i] = dl_dim_const(dims[i]);
  *numel = n;
  *bytes = b;
  return DL_OK;
}

static void *alloc_data(DlCtx *ctx, uint64_t bytes) {
  /* never NULL for an empty tensor: data != NULL marks a constant */
  return dl_arena_alloc(&ctx->arena, bytes ? (size_t)bytes : 16);
}

/* Little-endian file bytes -> host order. */
static void fix_endian(void *data, uint64_t numel, size_t esize) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  uint8_t *p = data;
  for (uint64_t i = 0; i < numel; i++, p += esize)
    for (size_t a = 0, b = esize - 1; a < b; a++, b--) {
      uint8_t tmp = p[a];
      p[a] = p[b];
      p[b] = tmp;
    }
#else
  (void)data;
  (void)numel;
  (void)esize;
#endif
}

static void normalize_bool(DlValue *v, uint64_t numel) {
  if (v->dtype != DL_BOOL)
    return;
  uint8_t *p = v->data;
  for (uint64_t i = 0; i < numel; i++)
    p[i] = p[i] != 0;
}

/* Strict decimal parse of an external_data offset/length. */
static bool parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s)
    return false;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return false;
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
      return false;
  }
  *out = v;
  return true;
}

/* Relative, and no ".." component (either separator). */
static bool safe_location(const char *loc) {
  if (!*loc || loc[0] == '/' || loc[0] == '\\')
    return false;
  if (((loc[0] >= 'a' && loc[0] <= 'z') || (loc[0] >= 'A' && loc[0] <= 'Z')) &&
      loc[1] == ':')
    return false;
  const char *p = loc;
  while (*p) {
    const char *e = p;
    while (*e && *e != '/' && *e != '\\')
      e++;
    if (e - p == 2 && p[0] == '.' && p[1] == '.')
      return false;
    p = *e ? e + 1 : e;
  }
  return true;
}

static DlStatus read_external(DlCtx *ctx, const char *base_dir,
                              const Onnx__TensorProto *t, const char *what,
                              DlValue *v, uint64_t numel, uint64_t bytes) {
  const char *loc = NULL;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    const char *k = dl_pb_str(e->key), *val = dl_pb_str(e->value);
    if (!strcmp(k, "location")) {
      loc = val;
    } else if (!strcmp(k, "offset")) {
      if (!parse_u64(val, &offset))
        return dl_error(ctx, DL_ERR_INVALID,
                        "%s: external data offset '%s' is not a number", what,
                        val);
    } else if (!strcmp(k, "length")) {
      if (!parse_u64(val, &length))
        return dl_error(ctx, DL_ERR_INVALID,
                        "%s: external data length '%s' is not a number", what,
                        val);
      has_length = true;
    }
  }
  if (!loc || !*loc)
    return dl_error(ctx, DL_ERR_INVALID, "%s: external data has no location",
                    what);
  if (!safe_location(loc))
    return dl_error(ctx, DL_ERR_INVALID,
                    "%s: external data location '%s' must be a relative path "
                    "inside the model's folder (no '..')",
                    what, loc);
  if (!base_dir)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "%s: external data ('%s') cannot be read when the model "
                    "is imported from memory",
                    what, loc);
  if (has_length && length != bytes)
    return dl_error(ctx, DL_ERR_INVALID,
                    "%s: external data length %llu does not match the %llu "
                    "bytes its dims need",
                    what, (unsigned long long)length,
                    (unsigned long long)bytes);
  char *path = dl_arena_printf(&ctx->arena, "%s/%s", base_dir, loc);
  if (!path)
    return DL_ERR_NOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return dl_error(ctx, DL_ERR_IO,
                    "%s: cannot open external data file '%s': %s", what, path,
                    strerror(errno));
  struct stat st;
  DlStatus s = DL_OK;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    s = dl_error(ctx, DL_ERR_IO,
                 "%s: external data file '%s' is not a "
                 "regular file",
                 what, path);
    goto done;
  }
  uint64_t fsize = (uint64_t)st.st_size;
  if (offset > fsize || bytes > fsize - offset) {
    s = dl_error(ctx, DL_ERR_INVALID,
                 "%s: external data file '%s' has %llu bytes, the tensor "
                 "needs %llu at offset %llu",
                 what, path, (unsigned long long)fsize,
                 (unsigned long long)bytes, (unsigned long long)offset);
    goto done;
  }
  uint8_t *buf = alloc_data(ctx, bytes);
  if (!buf) {
    s = DL_ERR_NOMEM;
    goto done;
  }
  uint64_t got = 0;
  while (got < bytes) {
    size_t chunk =
        bytes - got > (1u << 30) ? (1u << 30) : (size_t)(bytes - got);
    ssize_t r = pread(fd, buf + got, chunk, (off_t)(offset + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      s = dl_error(ctx, DL_ERR_IO,
                   "%s: cannot read external data file "
                   "'%s': %s",
                   what, path,
                   r < 0 ? strerror(errno) : "unexpected end of file");
      goto done;
    }
    got += (uint64_t)r;
  }
  v->data = buf;
  fix_endian(v->data, numel, elem_size(v->dtype));
  normalize_bool(v, numel);
done:
  close(fd);
  return s;
}

static DlStatus count_mismatch(DlCtx *ctx, const char *what, const char *field,
                               size_t have, uint64_t numel) {
  return dl_error(ctx, DL_ERR_INVALID,
                  "%s: %s holds %zu elements, its dims need %llu", what, field,
                  have, (unsigned long long)numel);
}

DlStatus dl_onnx_tensor(DlCtx *ctx, const char *base_dir,
                        const Onnx__TensorProto *t, const char *what,
                        DlValue *v) {
  uint64_t numel, bytes;
  int32_t dt = t->has_data_type ? t->data_type : 0;
  DL_TRY(tensor_header(ctx, dt, t->n_dims, t->dims, what, v, &numel, &bytes));
  size_t esize = elem_size(v->dtype);
  if (t->segment)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "%s: segmented tensors are not supported", what);
  if (t->has_data_location &&
      t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return read_external(ctx, base_dir, t, what, v, numel, bytes);
  if (t->has_data_location &&
      t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT)
    return dl_error(ctx, DL_ERR_INVALID, "%s: unknown data_location %d", what,
                    (int)t->data_location);

  if (t->has_raw_data) {
    if ((uint64_t)t->raw_data.len != bytes)
      return dl_error(ctx, DL_ERR_INVALID,
                      "%s: raw_data holds %zu bytes, its dims need %llu "
                      "(%llu elements of %s)",
                      what, t->raw_data.len, (unsigned long long)bytes,
                      (unsigned long long)numel, dl_onnx_dtype_name(dt));
    v->data = alloc_data(ctx, bytes);
    if (!v->data)
      return DL_ERR_NOMEM;
    if (bytes)
      memcpy(v->data, t->raw_data.data, (size_t)bytes);
    fix_endian(v->data, numel, esize);
    normalize_bool(v, numel);
    return DL_OK;
  }

  v->data = alloc_data(ctx, bytes);
  if (!v->data)
    return DL_ERR_NOMEM;
  switch (v->dtype) {
  case DL_F32:
    if (t->n_float_data != numel)
      return count_mismatch(ctx, what, "float_data", t->n_float_data, numel);
    if (bytes)
      memcpy(v->data, t->float_data, (size_t)bytes);
    break;
  case DL_F64:
    if (t->n_double_data != numel)
      return count_mismatch(ctx, what, "double_data", t->n_double_data, numel);
    if (bytes)
      memcpy(v->data, t->double_data, (size_t)bytes);
    break;
  case DL_I64:
    if (t->n_int64_data != numel)
      return count_mismatch(ctx, what, "int64_data", t->n_int64_data, numel);
    if (bytes)
      memcpy(v->data, t->int64_data, (size_t)bytes);
    break;
  case DL_U32:
  case DL_U64:
    if (t->n_uint64_data != numel)
      return count_mismatch(ctx, what, "uint64_data", t->n_uint64_data, numel);
    for (uint64_t i = 0; i < numel; i++) {
      if (v->dtype == DL_U32)
        ((uint32_t *)v->data)[i] = (uint32_t)t->uint64_data[i];
      else
        ((uint64_t *)v->data)[i] = t->uint64_data[i];
    }
    break;
  default: /* the types stored in int32_data */
    if (t->n_int32_data != numel)
      return count_mismatch(ctx, what, "int32_data", t->n_int32_data, numel);
    for (uint64_t i = 0; i < numel; i++) {
      int32_t x = t->int32_data[i];
      switch (v->dtype) {
      case DL_I32:
        ((int32_t *)v->data)[i] = x;
        break;
      case DL_I16:
        ((int16_t *)v->data)[i] = (int16_t)x;
        break;
      case DL_U16:
      case DL_F16:
      case DL_BF16:
        ((uint16_t *)v->data)[i] = (uint16_t)x;
        break;
      case DL_I8:
        ((int8_t *)v->data)[i] = (int8_t)x;
        break;
      case DL_U8:
        ((uint8_t *)v->data)[i] = (uint8_t)x;
        break;
      case DL_BOOL:
        ((uint8_t *)v->data)[i] = x != 0;
        break;
      default:
        return DL_UNREACHABLE(ctx);
      }
    }
    break;
  }
  return DL_OK;
}

DlStatus dl_onnx_sparse(DlCtx *ctx, const char *base_dir,
                        const Onnx__SparseTensorProto *st, const char *what,
                        DlValue *v) {
  if (!st->values || !st->indices)
    return dl_error(ctx, DL_ERR_INVALID,
                    "%s: sparse tensor without values or indices", what);
  DlValue vals = {.id = -1, .producer = -1}, idx = {.id = -1, .producer = -1};
  DL_TRY(dl_onnx_tensor(ctx, base_dir, st->values, what, &vals));
  DL_TRY(dl_onnx_tensor(ctx, base_dir, st->indices, what, &idx));
  uint64_t numel, bytes;
  int32_t dt = st->values->has_data_type ? st->values->data_type : 0;
  DL_TRY(tensor_header(ctx, dt, st->n_dims, st->dims, what, v, &numel, &bytes));
  if (bytes > DL_ONNX_SPARSE_LIMIT)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "%s: sparse tensor expands to %llu bytes, more than the "
                    "supported %llu",
                    what, (unsigned long long)bytes,
                    (unsigned long long)DL_ONNX_SPARSE_LIMIT);
  int64_t nnz = vals.rank == 1 ? 0 : -1;
  if (nnz == 0)
    dl_dim_is_const(&vals.dims[0], &nnz);
  if (nnz < 0 || idx.dtype != DL_I64)
    return dl_error(ctx, DL_ERR_INVALID,
                    "%s: sparse values must be 1-D and indices int64", what);
  int64_t i0 = -1, i1 = -1;
  if (idx.rank >= 1)
    dl_dim_is_const(&idx.dims[0], &i0);
  if (idx.rank == 2)
    dl_dim_is_const(&idx.dims[1], &i1);
  bool linear = idx.rank == 1 && i0 == nnz;
  bool coords = idx.rank == 2 && i0 == nnz && i1 == (int64_t)st->n_dims;
  if (!linear && !coords)
    return dl_error(ctx, DL_ERR_INVALID,
                    "%s: sparse indices must be [NNZ] or [NNZ, rank]", what);
  size_t esize = elem_size(v->dtype);
  v->data = alloc_data(ctx, bytes);
  if (!v->data)
    return DL_ERR_NOMEM;
  const int64_t *ix = idx.data;
  for (int64_t k = 0; k < nnz; k++) {
    int64_t pos = 0;
    if (linear) {
      pos = ix[k];
    } else {
      for (size_t d = 0; d < st->n_dims; d++) {
        int64_t c = ix[k * (int64_t)st->n_dims + (int64_t)d];
        if (c < 0 || c >= st->dims[d]) {
          pos = -1;
          break;
        }
        pos = pos * st->dims[d] + c;
      }
    }
    if (pos < 0 || (uint64_t)pos >= numel)
      return dl_error(ctx, DL_ERR_INVALID, "%s: sparse index out of range",
                      what);
    memcpy((uint8_t *)v->data + (size_t)pos * esize,
           (uint8_t *)vals.data + (size_t)k * esize, esize);
  }
  return DL_OK;
}
