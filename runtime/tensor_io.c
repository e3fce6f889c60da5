/*
 * tensor_io.c - tensor files: NumPy .npy and serialized ONNX TensorProto.
 *
 * Both readers treat their input as hostile: every length and count is
 * checked against the bytes actually present before anything is allocated,
 * so a truncated file or one with huge dims gives an error, not a crash.
 * The TensorProto wire format is decoded by hand (a few fields).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "dlcc tensor files are little-endian; big-endian hosts are not supported"
#endif

#define MAX_NPY_HEADER (1u << 20)

/* ---- whole files ---------------------------------------------------------
 */

static int read_whole(const char *path, unsigned char **out, size_t *len,
                      char *errbuf, size_t errlen) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  unsigned char *buf;
  size_t n;
  *out = NULL;
  *len = 0;
  if (!f)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_IO, "%s: %s", path,
                        strerror(errno));
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_IO,
                        "%s: not a regular file", path);
  }
  if (st.st_size < 0 || (uint64_t)st.st_size >= (uint64_t)SIZE_MAX / 2) {
    fclose(f);
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_IO, "%s: file too large",
                        path);
  }
  n = (size_t)st.st_size;
  buf = malloc(n ? n : 1);
  if (!buf) {
    fclose(f);
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_NOMEM,
                        "%s: out of memory reading %zu bytes", path, n);
  }
  if (n && fread(buf, 1, n, f) != n) {
    free(buf);
    fclose(f);
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_IO, "%s: short read", path);
  }
  fclose(f);
  *out = buf;
  *len = n;
  return DLCC_OK;
}

static int write_whole(const char *path, const void *head, size_t head_len,
                       const void *body, size_t body_len, char *errbuf,
                       size_t errlen) {
  FILE *f = fopen(path, "wb");
  int ok;
  if (!f)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_IO, "%s: %s", path,
                        strerror(errno));
  ok = fwrite(head, 1, head_len, f) == head_len;
  if (ok && body_len)
    ok = fwrite(body, 1, body_len, f) == body_len;
  if (fclose(f) != 0)
    ok = 0;
  if (!ok)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_IO, "%s: write failed",
                        path);
  return DLCC_OK;
}

static int check_tensor(const dlcc_rt_tensor *t, const char *path,
                        uint64_t *bytes, char *errbuf, size_t errlen) {
  uint64_t numel;
  size_t es;
  if (!t)
    return dlcc_rt__err(errbuf, errlen, DLCC_ERR_ARGUMENT, "%s: no tensor",
                        path);
  es = dlcc_rt_dtype_size(t->dtype);
  if (!es)
    return dlcc_rt__err(errbuf, errlen, DLCC_ERR_DTYPE, "%s: unknown dtype %d",
                        path, (int)t->dtype);
  if (t->ndim < 0 || t->ndim > DLCC_MAX_RANK ||
      !dlcc_rt__shape_bytes(t->shape, t->ndim, es, &numel, bytes) ||
      *bytes > (uint64_t)SIZE_MAX)
    return dlcc_rt__err(errbuf, errlen, DLCC_ERR_SHAPE, "%s: bad shape", path);
  if (*bytes && !t->data)
    return dlcc_rt__err(errbuf, errlen, DLCC_ERR_ARGUMENT, "%s: no data", path);
  return DLCC_OK;
}

/* ---- .npy ----------------------------------------------------------------
 */

static const struct {
  const char *code;
  int32_t dtype;
} npy_types[] = {
    {"f4", DLCC_FLOAT32}, {"f8", DLCC_FLOAT64}, {"f2", DLCC_FLOAT16},
    {"i8", DLCC_INT64},   {"i4", DLCC_INT32},   {"i2", DLCC_INT16},
    {"i1", DLCC_INT8},    {"u8", DLCC_UINT64},  {"u4", DLCC_UINT32},
    {"u2", DLCC_UINT16},  {"u1", DLCC_UINT8},   {"b1", DLCC_BOOL},
};

typedef struct {
  const char *p, *end;
} Lex;

static void lex_ws(Lex *l) {
  while (l->p < l->end &&
         (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
    l->p++;
}

static int lex_char(Lex *l, char c) {
  lex_ws(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return 1;
  }
  return 0;
}

/* A Python string literal in ' or " quotes, without escapes. */
static int lex_str(Lex *l, const char **s, size_t *n) {
  char q;
  const char *start;
  lex_ws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
    return 0;
  q = *l->p++;
  start = l->p;
  while (l->p < l->end && *l->p != q) {
    if (*l->p == '\\')
      return 0;
    l->p++;
  }
  if (l->p >= l->end)
    return 0;
  *s = start;
  *n = (size_t)(l->p - start);
  l->p++;
  return 1;
}

static int lex_word(Lex *l, const char *w) {
  size_t n = strlen(w);
  lex_ws(l);
  if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
    l->p += n;
    return 1;
  }
  return 0;
}

static int lex_int(Lex *l, int64_t *v) {
  uint64_t x = 0;
  int any = 0;
  lex_ws(l);
  while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
    x = x * 10 + (uint64_t)(*l->p - '0');
    if (x > ((uint64_t)1 << 62))
      return 0;
    l->p++;
    any = 1;
  }
  if (any && l->p < l->end && *l->p == 'L')
    l->p++;
  *v = (int64_t)x;
  return any;
}

#define NPY_ERR(st, ...) dlcc_rt__err(errbuf, errlen, (st), __VA_ARGS__)

/* Up to 32 bytes of s for a message, non-printable bytes as '?'. */
static const char *printable(const char *s, size_t n, char out[40]) {
  size_t i;
  for (i = 0; i < n && i < 32; i++)
    out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  out[i] = 0;
  return out;
}

static int npy_header(const char *h, size_t hlen, const char *where,
                      dlcc_rt_tensor *t, char *errbuf, size_t errlen) {
  Lex l = {h, h + hlen};
  int have_descr = 0, have_order = 0, have_shape = 0;
  char pbuf[40];
  if (!lex_char(&l, '{'))
    return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: .npy header is not a dict", where);
  while (!lex_char(&l, '}')) {
    const char *k;
    size_t kn;
    if (!lex_str(&l, &k, &kn) || !lex_char(&l, ':'))
      return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: malformed .npy header", where);
    if (kn == 5 && memcmp(k, "descr", 5) == 0) {
      const char *d;
      size_t dn;
      size_t i;
      if (!lex_str(&l, &d, &dn))
        return NPY_ERR(DLCC_RT_ERR_FORMAT,
                       "%s: .npy descr is not a plain dtype (structured "
                       "arrays are not supported)",
                       where);
      if (dn != 3)
        return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: unsupported .npy dtype '%s'",
                       where, printable(d, dn, pbuf));
      for (i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (memcmp(d + 1, npy_types[i].code, 2) == 0)
          break;
      if (i == sizeof npy_types / sizeof npy_types[0])
        return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: unsupported .npy dtype '%s'",
                       where, printable(d, dn, pbuf));
      t->dtype = npy_types[i].dtype;
      if (d[0] == '>' && dlcc_rt_dtype_size(t->dtype) > 1)
        return NPY_ERR(DLCC_RT_ERR_FORMAT,
                       "%s: big-endian .npy data ('%s') is not supported",
                       where, printable(d, dn, pbuf));
      if (d[0] != '<' && d[0] != '|' && d[0] != '=' && d[0] != '>')
        return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: unsupported .npy dtype '%s'",
                       where, printable(d, dn, pbuf));
      have_descr = 1;
    } else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0) {
      if (lex_word(&l, "True"))
        return NPY_ERR(DLCC_RT_ERR_FORMAT,
                       "%s: Fortran-order .npy arrays are not supported "
                       "(save a C-contiguous array)",
                       where);
      if (!lex_word(&l, "False"))
        return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: bad fortran_order in header",
                       where);
      have_order = 1;
    } else if (kn == 5 && memcmp(k, "shape", 5) == 0) {
      if (!lex_char(&l, '('))
        return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: bad shape in .npy header",
                       where);
      t->ndim = 0;
      while (!lex_char(&l, ')')) {
        int64_t v;
        if (!lex_int(&l, &v))
          return NPY_ERR(DLCC_RT_ERR_FORMAT,
                         "%s: bad or too large dim in .npy shape", where);
        if (t->ndim >= DLCC_MAX_RANK)
          return NPY_ERR(DLCC_RT_ERR_FORMAT,
                         "%s: .npy array has more than %d dims", where,
                         DLCC_MAX_RANK);
        t->shape[t->ndim++] = v;
        if (!lex_char(&l, ',')) {
          if (!lex_char(&l, ')'))
            return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: bad shape in .npy header",
                           where);
          break;
        }
      }
      have_shape = 1;
    } else {
      return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: unknown key '%s' in .npy header",
                     where, printable(k, kn, pbuf));
    }
    if (!lex_char(&l, ',')) {
      if (!lex_char(&l, '}'))
        return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: malformed .npy header", where);
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    return NPY_ERR(DLCC_RT_ERR_FORMAT,
                   "%s: .npy header lacks descr, fortran_order or shape",
                   where);
  return DLCC_OK;
}

int dlcc_rt_npy_parse(const void *buf, size_t len, const char *where,
                      dlcc_rt_tensor *t, char *errbuf, size_t errlen) {
  const unsigned char *b = buf;
  size_t hstart, hlen;
  uint64_t numel, bytes;
  int st;
  if (!where)
    where = "<npy>";
  if (!t || (!buf && len))
    return NPY_ERR(DLCC_ERR_ARGUMENT, "%s: NULL argument", where);
  memset(t, 0, sizeof *t);
  if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
    return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: not a .npy file (bad magic)",
                   where);
  if (b[6] == 1) {
    hstart = 10;
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
  } else if (b[6] == 2 || b[6] == 3) {
    if (len < 12)
      return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: truncated .npy header", where);
    hstart = 12;
    hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
           (size_t)b[11] << 24;
  } else {
    return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: unsupported .npy version %d.%d",
                   where, (int)b[6], (int)b[7]);
  }
  if (hlen > MAX_NPY_HEADER || hlen > len - hstart)
    return NPY_ERR(DLCC_RT_ERR_FORMAT,
                   "%s: truncated .npy file (header of %zu bytes, file of %zu)",
                   where, hlen, len);
  st = npy_header((const char *)b + hstart, hlen, where, t, errbuf, errlen);
  if (st) {
    memset(t, 0, sizeof *t);
    return st;
  }
  {
    char sh[256];
    int ok = dlcc_rt__shape_bytes(t->shape, t->ndim,
                                  dlcc_rt_dtype_size(t->dtype), &numel, &bytes);
    size_t have = len - hstart - hlen;
    dlcc_rt__format_shape(t->shape, t->ndim, sh, sizeof sh);
    if (!ok) {
      memset(t, 0, sizeof *t);
      return NPY_ERR(DLCC_RT_ERR_FORMAT, "%s: .npy shape %s is too large",
                     where, sh);
    }
    if (bytes != (uint64_t)have) {
      memset(t, 0, sizeof *t);
      return NPY_ERR(DLCC_RT_ERR_FORMAT,
                     "%s: .npy shape %s needs %llu bytes of data, the file "
                     "holds %zu%s",
                     where, sh, (unsigned long long)bytes, have,
                     bytes > have ? " (truncated?)" : "");
    }
  }
  t->data = dlcc_rt__alloc(bytes);
  if (!t->data) {
    memset(t, 0, sizeof *t);
    return NPY_ERR(DLCC_RT_ERR_NOMEM, "%s: out of memory", where);
  }
  if (bytes)
    memcpy(t->data, b + hstart + hlen, (size_t)bytes);
  t->nbytes = bytes;
  t->capacity = bytes;
  t->owned = 1;
  return DLCC_OK;
}

int dlcc_rt_npy_read(const char *path, dlcc_rt_tensor *t, char *errbuf,
                     size_t errlen) {
  unsigned char *buf;
  size_t len;
  int st;
  if (t)
    memset(t, 0, sizeof *t);
  if (!path || !t)
    return NPY_ERR(DLCC_ERR_ARGUMENT, "dlcc_rt_npy_read: NULL argument");
  st = read_whole(path, &buf, &len, errbuf, errlen);
  if (st)
    return st;
  st = dlcc_rt_npy_parse(buf, len, path, t, errbuf, errlen);
  free(buf);
  return st;
}

int dlcc_rt_npy_write(const char *path, const dlcc_rt_tensor *t, char *errbuf,
                      size_t errlen) {
  char head[512];
  size_t n, i, total;
  uint64_t bytes;
  const char *code = NULL;
  char order;
  int st;
  if (!path)
    return NPY_ERR(DLCC_ERR_ARGUMENT, "dlcc_rt_npy_write: NULL path");
  st = check_tensor(t, path, &bytes, errbuf, errlen);
  if (st)
    return st;
  for (i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
    if (npy_types[i].dtype == t->dtype)
      code = npy_types[i].code;
  if (!code)
    return NPY_ERR(DLCC_ERR_DTYPE, "%s: dtype %s has no .npy form", path,
                   dlcc_rt_dtype_name(t->dtype));
  order = dlcc_rt_dtype_size(t->dtype) == 1 ? '|' : '<';
  memcpy(head, "\x93NUMPY\x01\x00\x00\x00", 10);
  n = 10;
  n += (size_t)snprintf(head + n, sizeof head - n,
                        "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                        order, code);
  for (int32_t k = 0; k < t->ndim; k++)
    n += (size_t)snprintf(head + n, sizeof head - n, "%s%lld", k ? ", " : "",
                          (long long)t->shape[k]);
  n += (size_t)snprintf(head + n, sizeof head - n, "%s), }",
                        t->ndim == 1 ? "," : "");
  /* Pad with spaces so the data starts on a 64-byte boundary. */
  total = (n + 1 + 63) / 64 * 64;
  if (total > sizeof head)
    return NPY_ERR(DLCC_ERR_SHAPE, "%s: header too long", path);
  memset(head + n, ' ', total - n - 1);
  head[total - 1] = '\n';
  head[8] = (char)((total - 10) & 0xff);
  head[9] = (char)((total - 10) >> 8);
  return write_whole(path, head, total, t->data, (size_t)bytes, errbuf, errlen);
}

/* ---- TensorProto ---------------------------------------------------------
 */

/* TensorProto field numbers. */
enum {
  TP_DIMS = 1,
  TP_DATA_TYPE = 2,
  TP_SEGMENT = 3,
  TP_FLOAT = 4,
  TP_INT32 = 5,
  TP_STRING = 6,
  TP_INT64 = 7,
  TP_NAME = 8,
  TP_RAW = 9,
  TP_DOUBLE = 10,
  TP_UINT64 = 11,
  TP_DATA_LOCATION = 14
};

typedef struct {
  const unsigned char *p, *end;
} Wire;

/* 0 on a truncated or over-long varint. */
static int wire_varint(Wire *w, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    unsigned char c;
    if (w->p >= w->end)
      return 0;
    c = *w->p++;
    if (shift == 63 && (c & 0x7e))
      return 0;
    x |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *v = x;
      return 1;
    }
  }
  return 0;
}

static int wire_fixed(Wire *w, size_t n, uint64_t *v) {
  uint64_t x = 0;
  if ((size_t)(w->end - w->p) < n)
    return 0;
  for (size_t i = 0; i < n; i++)
    x |= (uint64_t)w->p[i] << (8 * i);
  w->p += n;
  *v = x;
  return 1;
}

static int wire_bytes(Wire *w, const unsigned char **s, size_t *n) {
  uint64_t len;
  if (!wire_varint(w, &len) || len > (uint64_t)(w->end - w->p))
    return 0;
  *s = w->p;
  *n = (size_t)len;
  w->p += len;
  return 1;
}

/* What one scan of the message found. */
typedef struct {
  int64_t dims[DLCC_MAX_RANK];
  int ndim;
  int64_t data_type;
  const unsigned char *raw;
  size_t raw_len;
  int has_raw;
  const unsigned char *name;
  size_t name_len;
  int has_name;
  uint64_t count[16]; /* elements per typed field number */
  int external;
  int segment;
} TpScan;

/* Where decoded values go in the fill pass. */
typedef struct {
  int field;     /* the typed field to store, 0 in the scan pass */
  void *dst;     /* numel elements of dtype */
  int32_t dtype; /* of dst */
  uint64_t n;    /* stored so far */
  uint64_t cap;
} TpFill;

static void store(TpFill *f, uint64_t v) {
  if (f->n >= f->cap)
    return;
  switch (f->dtype) {
  case DLCC_FLOAT32:
  case DLCC_INT32:
  case DLCC_UINT32: {
    uint32_t x = (uint32_t)v;
    memcpy((char *)f->dst + f->n * 4, &x, 4);
    break;
  }
  case DLCC_INT64:
  case DLCC_UINT64:
  case DLCC_FLOAT64:
    memcpy((char *)f->dst + f->n * 8, &v, 8);
    break;
  case DLCC_INT16:
  case DLCC_UINT16:
  case DLCC_FLOAT16: {
    uint16_t x = (uint16_t)v;
    memcpy((char *)f->dst + f->n * 2, &x, 2);
    break;
  }
  case DLCC_BOOL:
    ((uint8_t *)f->dst)[f->n] = v != 0;
    break;
  default:
    ((uint8_t *)f->dst)[f->n] = (uint8_t)v;
    break;
  }
  f->n++;
}

#define PB_ERR(st, ...) dlcc_rt__err(errbuf, errlen, (st), __VA_ARGS__)

/* One pass over the message: the scan pass (fill->field == 0) records
 * dims, type, raw data, name and counts; the fill pass stores the values of
 * fill->field. */
static int tp_pass(const unsigned char *buf, size_t len, const char *where,
                   TpScan *sc, TpFill *fill, char *errbuf, size_t errlen) {
  Wire w = {buf, buf + len};
  while (w.p < w.end) {
    uint64_t key, v;
    int field, wt;
    if (!wire_varint(&w, &key))
      return PB_ERR(DLCC_RT_ERR_FORMAT, "%s: truncated TensorProto (bad key)",
                    where);
    field = (int)(key >> 3 > 1000000 ? 1000000 : key >> 3);
    wt = (int)(key & 7);
    if (field == 0)
      return PB_ERR(DLCC_RT_ERR_FORMAT, "%s: not a TensorProto (field 0)",
                    where);
    /* Repeated numeric fields: one element, or a packed run. */
    if (field == TP_DIMS || field == TP_FLOAT || field == TP_INT32 ||
        field == TP_INT64 || field == TP_DOUBLE || field == TP_UINT64) {
      int elem_wt = field == TP_FLOAT ? 5 : field == TP_DOUBLE ? 1 : 0;
      Wire run = w;
      int packed = wt == 2;
      const unsigned char *s;
      size_t n;
      if (packed) {
        if (!wire_bytes(&w, &s, &n))
          return PB_ERR(DLCC_RT_ERR_FORMAT,
                        "%s: truncated TensorProto (field %d)", where, field);
        run.p = s;
        run.end = s + n;
      } else if (wt != elem_wt) {
        return PB_ERR(DLCC_RT_ERR_FORMAT,
                      "%s: TensorProto field %d has wire type %d", where, field,
                      wt);
      }
      do {
        int ok = elem_wt == 0   ? wire_varint(&run, &v)
                 : elem_wt == 5 ? wire_fixed(&run, 4, &v)
                                : wire_fixed(&run, 8, &v);
        if (!ok)
          return PB_ERR(DLCC_RT_ERR_FORMAT,
                        "%s: truncated TensorProto (field %d)", where, field);
        if (field == TP_DIMS) {
          if (fill->field)
            continue;
          if (sc->ndim >= DLCC_MAX_RANK)
            return PB_ERR(DLCC_RT_ERR_FORMAT,
                          "%s: tensor has more than %d dims", where,
                          DLCC_MAX_RANK);
          if ((int64_t)v < 0 || v > ((uint64_t)1 << 62))
            return PB_ERR(DLCC_RT_ERR_FORMAT, "%s: bad dim %lld", where,
                          (long long)(int64_t)v);
          sc->dims[sc->ndim++] = (int64_t)v;
        } else if (!fill->field) {
          sc->count[field]++;
        } else if (fill->field == field) {
          store(fill, v);
        }
      } while (packed ? run.p < run.end : 0);
      if (!packed)
        w = run;
      continue;
    }
    switch (wt) {
    case 0:
      if (!wire_varint(&w, &v))
        return PB_ERR(DLCC_RT_ERR_FORMAT,
                      "%s: truncated TensorProto (field %d)", where, field);
      if (field == TP_DATA_TYPE)
        sc->data_type = (int64_t)v;
      else if (field == TP_DATA_LOCATION && v != 0)
        sc->external = 1;
      break;
    case 1:
    case 5:
      if (!wire_fixed(&w, wt == 1 ? 8 : 4, &v))
        return PB_ERR(DLCC_RT_ERR_FORMAT,
                      "%s: truncated TensorProto (field %d)", where, field);
      break;
    case 2: {
      const unsigned char *s;
      size_t n;
      if (!wire_bytes(&w, &s, &n))
        return PB_ERR(DLCC_RT_ERR_FORMAT,
                      "%s: truncated TensorProto (field %d)", where, field);
      if (field == TP_RAW) {
        sc->raw = s;
        sc->raw_len = n;
        sc->has_raw = 1;
      } else if (field == TP_NAME) {
        sc->name = s;
        sc->name_len = n;
        sc->has_name = 1;
      } else if (field == TP_SEGMENT) {
        sc->segment = 1;
      } else if (field == TP_STRING) {
        sc->count[TP_STRING]++;
      }
      break;
    }
    default:
      return PB_ERR(DLCC_RT_ERR_FORMAT,
                    "%s: not a TensorProto (wire type %d, field %d)", where, wt,
                    field);
    }
  }
  return DLCC_OK;
}

/* The typed field that carries a dtype's values without raw_data. */
static int typed_field(int32_t dtype) {
  switch (dtype) {
  case DLCC_FLOAT32:
    return TP_FLOAT;
  case DLCC_INT32:
  case DLCC_INT16:
  case DLCC_INT8:
  case DLCC_UINT16:
  case DLCC_UINT8:
  case DLCC_BOOL:
  case DLCC_FLOAT16:
    return TP_INT32;
  case DLCC_INT64:
    return TP_INT64;
  case DLCC_FLOAT64:
    return TP_DOUBLE;
  case DLCC_UINT32:
  case DLCC_UINT64:
    return TP_UINT64;
  default:
    return 0;
  }
}

int dlcc_rt_pb_parse(const void *buf, size_t len, const char *where,
                     dlcc_rt_tensor *t, char **name_out, char *errbuf,
                     size_t errlen) {
  TpScan sc;
  TpFill fill;
  uint64_t numel, bytes;
  size_t es;
  int st;
  char sh[256];
  if (!where)
    where = "<pb>";
  if (name_out)
    *name_out = NULL;
  if (!t || (!buf && len))
    return PB_ERR(DLCC_ERR_ARGUMENT, "%s: NULL argument", where);
  memset(t, 0, sizeof *t);
  memset(&sc, 0, sizeof sc);
  memset(&fill, 0, sizeof fill);
  st = tp_pass(buf, len, where, &sc, &fill, errbuf, errlen);
  if (st)
    return st;
  if (sc.external)
    return PB_ERR(DLCC_RT_ERR_FORMAT,
                  "%s: tensor data is stored externally (not supported)",
                  where);
  if (sc.segment)
    return PB_ERR(DLCC_RT_ERR_FORMAT, "%s: segmented tensors are not supported",
                  where);
  es = dlcc_rt_dtype_size((int32_t)sc.data_type);
  if (sc.data_type <= 0 || sc.data_type > 64 || es == 0)
    return PB_ERR(DLCC_RT_ERR_FORMAT,
                  "%s: unsupported TensorProto data_type %lld%s", where,
                  (long long)sc.data_type,
                  sc.data_type == 0 ? " (not a tensor file?)" : "");
  t->dtype = (int32_t)sc.data_type;
  t->ndim = sc.ndim;
  memcpy(t->shape, sc.dims, sizeof sc.dims);
  dlcc_rt__format_shape(t->shape, t->ndim, sh, sizeof sh);
  if (!dlcc_rt__shape_bytes(t->shape, t->ndim, es, &numel, &bytes) ||
      bytes > (uint64_t)SIZE_MAX) {
    memset(t, 0, sizeof *t);
    return PB_ERR(DLCC_RT_ERR_FORMAT, "%s: tensor shape %s is too large", where,
                  sh);
  }
  if (sc.has_raw) {
    if ((uint64_t)sc.raw_len != bytes) {
      memset(t, 0, sizeof *t);
      return PB_ERR(DLCC_RT_ERR_FORMAT,
                    "%s: %s%s needs %llu bytes, raw_data holds %zu", where,
                    dlcc_rt_dtype_name((int32_t)sc.data_type), sh,
                    (unsigned long long)bytes, sc.raw_len);
    }
  } else {
    int f = typed_field((int32_t)sc.data_type);
    if (sc.count[f] != numel) {
      memset(t, 0, sizeof *t);
      return PB_ERR(DLCC_RT_ERR_FORMAT,
                    "%s: %s%s needs %llu values, the file holds %llu", where,
                    dlcc_rt_dtype_name((int32_t)sc.data_type), sh,
                    (unsigned long long)numel, (unsigned long long)sc.count[f]);
    }
  }
  t->data = dlcc_rt__alloc(bytes);
  if (!t->data) {
    memset(t, 0, sizeof *t);
    return PB_ERR(DLCC_RT_ERR_NOMEM, "%s: out of memory", where);
  }
  t->nbytes = bytes;
  t->capacity = bytes;
  t->owned = 1;
  if (sc.has_raw) {
    if (bytes)
      memcpy(t->data, sc.raw, (size_t)bytes);
  } else if (numel) {
    TpScan sc2;
    memset(&sc2, 0, sizeof sc2);
    fill.field = typed_field(t->dtype);
    fill.dst = t->data;
    fill.dtype = t->dtype;
    fill.cap = numel;
    st = tp_pass(buf, len, where, &sc2, &fill, errbuf, errlen);
    if (st) {
      dlcc_rt_tensor_free(t);
      return st;
    }
  }
  if (name_out && sc.has_name) {
    *name_out = malloc(sc.name_len + 1);
    if (!*name_out) {
      dlcc_rt_tensor_free(t);
      return PB_ERR(DLCC_RT_ERR_NOMEM, "%s: out of memory", where);
    }
    memcpy(*name_out, sc.name, sc.name_len);
    (*name_out)[sc.name_len] = 0;
  }
  return DLCC_OK;
}

int dlcc_rt_pb_read(const char *path, dlcc_rt_tensor *t, char **name_out,
                    char *errbuf, size_t errlen) {
  unsigned char *buf;
  size_t len;
  int st;
  if (t)
    memset(t, 0, sizeof *t);
  if (name_out)
    *name_out = NULL;
  if (!path || !t)
    return PB_ERR(DLCC_ERR_ARGUMENT, "dlcc_rt_pb_read: NULL argument");
  st = read_whole(path, &buf, &len, errbuf, errlen);
  if (st)
    return st;
  st = dlcc_rt_pb_parse(buf, len, path, t, name_out, errbuf, errlen);
  free(buf);
  return st;
}

static size_t put_varint(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

int dlcc_rt_pb_write(const char *path, const dlcc_rt_tensor *t,
                     const char *name, char *errbuf, size_t errlen) {
  unsigned char *head;
  size_t n = 0, name_len = name ? strlen(name) : 0;
  uint64_t bytes;
  int st;
  if (!path)
    return PB_ERR(DLCC_ERR_ARGUMENT, "dlcc_rt_pb_write: NULL path");
  st = check_tensor(t, path, &bytes, errbuf, errlen);
  if (st)
    return st;
  /* dims, data_type and name (proto2 encoding: dims not packed), then the
   * raw_data key and length; the data itself follows. */
  head = malloc(DLCC_MAX_RANK * 11 + 32 + name_len);
  if (!head)
    return PB_ERR(DLCC_RT_ERR_NOMEM, "%s: out of memory", path);
  for (int32_t k = 0; k < t->ndim; k++) {
    head[n++] = TP_DIMS << 3;
    n += put_varint(head + n, (uint64_t)t->shape[k]);
  }
  head[n++] = TP_DATA_TYPE << 3;
  n += put_varint(head + n, (uint64_t)t->dtype);
  if (name) {
    head[n++] = TP_NAME << 3 | 2;
    n += put_varint(head + n, name_len);
    memcpy(head + n, name, name_len);
    n += name_len;
  }
  head[n++] = TP_RAW << 3 | 2;
  n += put_varint(head + n, bytes);
  st = write_whole(path, head, n, t->data, (size_t)bytes, errbuf, errlen);
  free(head);
  return st;
}

int dlcc_rt_tensor_read(const char *path, dlcc_rt_tensor *t, char *errbuf,
                        size_t errlen) {
  size_t n = path ? strlen(path) : 0;
  if (n >= 4 && strcmp(path + n - 4, ".npy") == 0)
    return dlcc_rt_npy_read(path, t, errbuf, errlen);
  return dlcc_rt_pb_read(path, t, NULL, errbuf, errlen);
}
