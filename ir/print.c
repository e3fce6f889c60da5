/*
 * print.c - the textual IR printer.
 *
 *   graph "main" opset 17 syms(batch, seq) {
 *     input %x : f32[batch,3,224,224]
 *     outer %o : f32[4]                    (defined in an enclosing graph)
 *     const %w : f32[2] = hex"0000803f00000040"
 *     %y : f32[batch,8] = Conv(%x, %w, _) {strides = [2,2]} name "conv1"
 *     %s : i64[2] symval [batch,8] = Shape(%y)
 *     output %y
 *   }
 *
 * Node suffixes, in this order when present: {attrs} domain "d" opset N
 * name "n".  Types are `?` when unknown, else dtype[dims] where either part
 * may be `?` / `*` (unknown dtype / unknown rank).  Float attributes print
 * with %.9g plus ".0" when needed, so they read back bit-exact.  The parser
 * (parse.c) reads exactly this form.
 */
#include "ir/ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Out {
  char *buf;
  size_t len, cap;
  bool oom;
} Out;

static void out_mem(Out *o, const char *s, size_t n) {
  if (o->oom)
    return;
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + n + 1)
      cap *= 2;
    char *b = realloc(o->buf, cap);
    if (!b) {
      o->oom = true;
      return;
    }
    o->buf = b;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = 0;
}

static void out_s(Out *o, const char *s) {
  out_mem(o, s, strlen(s));
}

static void out_f(Out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_f(Out *o, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n < sizeof small) {
    out_mem(o, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    o->oom = true;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  out_mem(o, big, (size_t)n);
  free(big);
}

static void indent(Out *o, int depth) {
  for (int i = 0; i < depth; i++)
    out_s(o, "  ");
}

static bool is_ident(const char *s) {
  if (!s || !*s)
    return false;
  if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
    return false;
  for (s++; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
          (*s >= '0' && *s <= '9')))
      return false;
  return true;
}

/* Characters allowed in a bare %name. */
static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '/' || c == '-';
}

static void out_quoted(Out *o, const char *s, size_t n) {
  out_s(o, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[3] = {'\\', (char)c, 0};
      out_s(o, e);
    } else if (c == '\n') {
      out_s(o, "\\n");
    } else if (c == '\t') {
      out_s(o, "\\t");
    } else if (c < 0x20 || c >= 0x7f) {
      out_f(o, "\\x%02x", c);
    } else {
      out_mem(o, (const char *)&c, 1);
    }
  }
  out_s(o, "\"");
}

static void out_name(Out *o, const char *name) {
  const char *s = name ? name : "";
  bool bare = *s != 0;
  for (const char *p = s; *p && bare; p++)
    bare = name_char(*p);
  out_s(o, "%");
  if (bare)
    out_s(o, s);
  else
    out_quoted(o, s, strlen(s));
}

static void out_dim(Out *o, const DlGraph *g, const DlDim *d) {
  /* Symbol names that are not identifiers are written quoted. */
  const char *small[16];
  const char **names = small;
  bool heap = false;
  if (g->nsyms > 16) {
    names = malloc(sizeof(char *) * (size_t)g->nsyms);
    if (!names) {
      o->oom = true;
      return;
    }
    heap = true;
  }
  Out q = {0};
  for (int i = 0; i < g->nsyms; i++)
    names[i] = g->syms[i];
  /* Only the symbols this dim uses need checking. */
  char *quoted[DL_DIM_TERMS * DL_DIM_FACTORS];
  int nq = 0;
  for (int t = 0; t < d->nterms; t++) {
    for (int k = 0; k < d->t[t].nsym; k++) {
      int s = d->t[t].sym[k];
      if (s >= g->nsyms)
        continue;
      if (is_ident(g->syms[s]) || names[s] != g->syms[s])
        continue;
      q.len = 0;
      out_quoted(&q, g->syms[s], strlen(g->syms[s]));
      if (q.oom)
        break;
      quoted[nq] = strdup(q.buf);
      if (!quoted[nq])
        break;
      names[s] = quoted[nq++];
    }
  }
  free(q.buf);
  char buf[512];
  /* symbols out of range print as sN via a NULL name */
  int n = 0;
  bool in_range = true;
  for (int t = 0; t < d->nterms; t++)
    for (int k = 0; k < d->t[t].nsym; k++)
      if (d->t[t].sym[k] >= g->nsyms)
        in_range = false;
  n = dl_dim_print(buf, sizeof buf, d, in_range ? names : NULL);
  if (n >= 0 && (size_t)n < sizeof buf) {
    out_s(o, buf);
  } else if (n >= 0) {
    char *big = malloc((size_t)n + 1);
    if (big) {
      dl_dim_print(big, (size_t)n + 1, d, in_range ? names : NULL);
      out_s(o, big);
      free(big);
    } else {
      o->oom = true;
    }
  }
  for (int i = 0; i < nq; i++)
    free(quoted[i]);
  if (heap)
    free(names);
}

static void out_type(Out *o, const DlGraph *g, const DlValue *v) {
  if (v->dtype == DL_UNDEFINED && v->rank < 0) {
    out_s(o, "?");
    return;
  }
  out_s(o, v->dtype == DL_UNDEFINED ? "?" : dl_dtype_name(v->dtype));
  if (v->rank < 0) {
    out_s(o, "[*]");
    return;
  }
  out_s(o, "[");
  for (int i = 0; i < v->rank && i < DL_MAX_RANK; i++) {
    if (i)
      out_s(o, ",");
    out_dim(o, g, &v->dims[i]);
  }
  out_s(o, "]");
}

static void out_hex(Out *o, const void *data, size_t n) {
  static const char hx[] = "0123456789abcdef";
  out_s(o, "hex\"");
  const unsigned char *p = data;
  char chunk[256];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    chunk[k++] = hx[p[i] >> 4];
    chunk[k++] = hx[p[i] & 15];
    if (k == sizeof chunk) {
      out_mem(o, chunk, k);
      k = 0;
    }
  }
  out_mem(o, chunk, k);
  out_s(o, "\"");
}

/* Bytes of constant data, or 0 when the value's data cannot be printed. */
static size_t data_bytes(const DlValue *v) {
  if (!v->data)
    return 0;
  size_t es = dl_dtype_size(v->dtype);
  int64_t n = dl_value_numel_const(v);
  if (es == 0 || n < 0)
    return 0;
  return (size_t)n * es;
}

/* %name : type [symval [...]] [data hex"..."] */
static void out_decl(Out *o, const DlGraph *g, const DlValue *v,
                     const char *name, bool inline_data) {
  out_name(o, name);
  out_s(o, " : ");
  out_type(o, g, v);
  int64_t n = dl_value_numel_const(v);
  if (v->symval && n >= 0) {
    out_s(o, " symval [");
    for (int64_t i = 0; i < n; i++) {
      if (i)
        out_s(o, ",");
      out_dim(o, g, &v->symval[i]);
    }
    out_s(o, "]");
  }
  if (inline_data && v->data) {
    out_s(o, " data ");
    out_hex(o, v->data, data_bytes(v));
  }
}

static void out_float(Out *o, float f) {
  if (isnan(f)) {
    out_s(o, "nan");
    return;
  }
  if (isinf(f)) {
    out_s(o, f < 0 ? "-inf" : "inf");
    return;
  }
  char buf[64];
  snprintf(buf, sizeof buf, "%.9g", (double)f);
  out_s(o, buf);
  if (!strpbrk(buf, ".e"))
    out_s(o, ".0");
}

static void out_graph(Out *o, const DlGraph *g, int depth);

static void out_tensor(Out *o, const DlGraph *g, const DlValue *t) {
  out_s(o, "tensor(");
  if (!t) {
    out_s(o, ")");
    return;
  }
  if (t->name && t->name[0]) {
    out_name(o, t->name);
    out_s(o, " : ");
  }
  out_type(o, g, t);
  if (t->data) {
    out_s(o, ", ");
    out_hex(o, t->data, data_bytes(t));
  }
  out_s(o, ")");
}

static void out_attr(Out *o, const DlGraph *g, const DlAttr *a, int depth) {
  if (is_ident(a->name))
    out_s(o, a->name);
  else
    out_quoted(o, a->name ? a->name : "", a->name ? strlen(a->name) : 0);
  out_s(o, " = ");
  static const char *const list_kw[] = {[DL_ATTR_FLOATS] = "floats",
                                        [DL_ATTR_INTS] = "ints",
                                        [DL_ATTR_STRINGS] = "strings",
                                        [DL_ATTR_TENSORS] = "tensors",
                                        [DL_ATTR_GRAPHS] = "graphs"};
  switch (a->kind) {
  case DL_ATTR_FLOAT:
    out_float(o, a->f);
    return;
  case DL_ATTR_INT:
    out_f(o, "%lld", (long long)a->i);
    return;
  case DL_ATTR_STRING:
    out_quoted(o, a->s ? a->s : "", a->s ? a->s_len : 0);
    return;
  case DL_ATTR_TENSOR:
    out_tensor(o, g, a->t);
    return;
  case DL_ATTR_GRAPH:
    if (a->g)
      out_graph(o, a->g, depth);
    else
      out_s(o, "graphs[]");
    return;
  case DL_ATTR_FLOATS:
  case DL_ATTR_INTS:
  case DL_ATTR_STRINGS:
  case DL_ATTR_TENSORS:
  case DL_ATTR_GRAPHS:
    break;
  default:
    out_s(o, "?");
    return;
  }
  int n = a->n > 0 ? a->n : 0;
  if (n == 0)
    out_s(o, list_kw[a->kind]);
  out_s(o, "[");
  for (int i = 0; i < n; i++) {
    if (i)
      out_s(o, ", ");
    switch (a->kind) {
    case DL_ATTR_FLOATS:
      out_float(o, a->floats[i]);
      break;
    case DL_ATTR_INTS:
      out_f(o, "%lld", (long long)a->ints[i]);
      break;
    case DL_ATTR_STRINGS: {
      const char *s = a->strings[i] ? a->strings[i] : "";
      out_quoted(o, s, strlen(s));
      break;
    }
    case DL_ATTR_TENSORS:
      out_tensor(o, g, a->ts[i]);
      break;
    default:
      out_graph(o, a->gs[i], depth);
      break;
    }
  }
  out_s(o, "]");
}

/* ---- unique display names ------------------------------------------------
 * Value names are labels; two values may share one (a generated "t5" and a
 * model's "t5").  The printer gives later duplicates "NAME~ID" so the text
 * always parses back. */

typedef struct NameMap {
  const char **keys;
  size_t cap, n;
} NameMap;

static size_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (size_t)h;
}

static bool nm_has(const NameMap *m, const char *k) {
  if (!m->cap)
    return false;
  for (size_t i = name_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i])
      return false;
    if (strcmp(m->keys[i], k) == 0)
      return true;
  }
}

static bool nm_add(NameMap *m, const char *k) {
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    const char **keys = calloc(cap, sizeof *keys);
    if (!keys)
      return false;
    for (size_t j = 0; j < m->cap; j++) {
      if (!m->keys[j])
        continue;
      size_t i = name_hash(m->keys[j]) & (cap - 1);
      while (keys[i])
        i = (i + 1) & (cap - 1);
      keys[i] = m->keys[j];
    }
    free(m->keys);
    m->keys = keys;
    m->cap = cap;
  }
  size_t i = name_hash(k) & (m->cap - 1);
  while (m->keys[i])
    i = (i + 1) & (m->cap - 1);
  m->keys[i] = k;
  m->n++;
  return true;
}

/* disp[id] for every value; extra strings go to *owned (heap). */
static const char **display_names(const DlGraph *g, char ***owned,
                                  int *nowned) {
  const char **disp = calloc((size_t)g->nvalues + 1, sizeof *disp);
  char **own = calloc((size_t)g->nvalues + 1, sizeof *own);
  NameMap m = {0};
  int no = 0;
  bool fail = !disp || !own;
  for (int i = 0; i < g->nvalues && !fail; i++) {
    const char *nm = g->values[i]->name ? g->values[i]->name : "";
    if (nm_has(&m, nm)) {
      char buf[64];
      for (int k = 0;; k++) {
        if (k)
          snprintf(buf, sizeof buf, "~%d~%d", i, k);
        else
          snprintf(buf, sizeof buf, "~%d", i);
        size_t len = strlen(nm) + strlen(buf) + 1;
        char *alt = malloc(len);
        if (!alt) {
          fail = true;
          break;
        }
        snprintf(alt, len, "%s%s", nm, buf);
        if (!nm_has(&m, alt)) {
          own[no++] = alt;
          nm = alt;
          break;
        }
        free(alt);
      }
      if (fail)
        break;
    }
    disp[i] = nm;
    if (!nm_add(&m, nm))
      fail = true;
  }
  free(m.keys);
  if (fail) {
    for (int i = 0; i < no; i++)
      free(own[i]);
    free(own);
    free(disp);
    return NULL;
  }
  *owned = own;
  *nowned = no;
  return disp;
}

static bool node_live(const DlGraph *g, int id) {
  return id >= 0 && id < g->nnodes && !g->nodes[id]->dead;
}

/* A value printed as `const`: has data and no live node defines it. */
static bool is_const_decl(const DlGraph *g, const DlValue *v) {
  if (!v->data || v->is_input)
    return false;
  if (v->producer < 0)
    return true;
  if (!node_live(g, v->producer))
    return true;
  const DlNode *n = g->nodes[v->producer];
  for (int i = 0; i < n->nout; i++)
    if (n->out[i] == v->id)
      return false;
  return true;
}

static void out_graph(Out *o, const DlGraph *g, int depth) {
  out_s(o, "graph ");
  out_quoted(o, g->name ? g->name : "", g->name ? strlen(g->name) : 0);
  out_f(o, " opset %lld", (long long)g->opset);
  if (g->nsyms > 0) {
    out_s(o, " syms(");
    for (int i = 0; i < g->nsyms; i++) {
      if (i)
        out_s(o, ", ");
      if (is_ident(g->syms[i]))
        out_s(o, g->syms[i]);
      else
        out_quoted(o, g->syms[i], strlen(g->syms[i]));
    }
    out_s(o, ")");
  }
  out_s(o, " {\n");

  /* 0 undefined, 1 defined (input/const/node), 2 referenced only */
  unsigned char *st = calloc((size_t)g->nvalues + 1, 1);
  char **owned = NULL;
  int nowned = 0;
  const char **disp = st ? display_names(g, &owned, &nowned) : NULL;
  if (!st || !disp) {
    free(st);
    o->oom = true;
    return;
  }
  for (int i = 0; i < g->ninputs; i++)
    if (g->inputs[i] >= 0 && g->inputs[i] < g->nvalues)
      st[g->inputs[i]] = 1;
  for (int i = 0; i < g->nvalues; i++)
    if (!st[i] && is_const_decl(g, g->values[i]))
      st[i] = 3;
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nout; i++)
      if (n->out[i] >= 0 && n->out[i] < g->nvalues && !st[n->out[i]])
        st[n->out[i]] = 1;
  }
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nin; i++)
      if (n->in[i] >= 0 && n->in[i] < g->nvalues && !st[n->in[i]])
        st[n->in[i]] = 2;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i] >= 0 && g->outputs[i] < g->nvalues && !st[g->outputs[i]])
      st[g->outputs[i]] = 2;

  for (int i = 0; i < g->ninputs; i++) {
    if (g->inputs[i] < 0 || g->inputs[i] >= g->nvalues)
      continue;
    indent(o, depth + 1);
    out_s(o, "input ");
    out_decl(o, g, g->values[g->inputs[i]], disp[g->inputs[i]], false);
    out_s(o, "\n");
  }
  for (int i = 0; i < g->nvalues; i++) {
    if (st[i] != 2)
      continue;
    indent(o, depth + 1);
    out_s(o, "outer ");
    out_decl(o, g, g->values[i], disp[i], false);
    out_s(o, "\n");
  }
  for (int i = 0; i < g->nvalues; i++) {
    if (st[i] != 3)
      continue;
    const DlValue *v = g->values[i];
    indent(o, depth + 1);
    out_s(o, "const ");
    out_decl(o, g, v, disp[i], false);
    out_s(o, " = ");
    out_hex(o, v->data, data_bytes(v));
    out_s(o, "\n");
  }
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    indent(o, depth + 1);
    if (n->nout == 0)
      out_s(o, "()");
    for (int i = 0; i < n->nout; i++) {
      if (i)
        out_s(o, ", ");
      if (n->out[i] < 0 || n->out[i] >= g->nvalues)
        out_s(o, "_");
      else
        out_decl(o, g, g->values[n->out[i]], disp[n->out[i]], true);
    }
    out_s(o, " = ");
    const char *ot = n->op_type ? n->op_type : dl_op_name(n->op);
    if (is_ident(ot))
      out_s(o, ot);
    else
      out_quoted(o, ot, strlen(ot));
    out_s(o, "(");
    for (int i = 0; i < n->nin; i++) {
      if (i)
        out_s(o, ", ");
      if (n->in[i] < 0 || n->in[i] >= g->nvalues)
        out_s(o, "_");
      else
        out_name(o, disp[n->in[i]]);
    }
    out_s(o, ")");
    if (n->nattr > 0) {
      out_s(o, " {");
      for (int i = 0; i < n->nattr; i++) {
        if (i)
          out_s(o, ", ");
        out_attr(o, g, &n->attrs[i], depth + 1);
      }
      out_s(o, "}");
    }
    if (n->domain && n->domain[0]) {
      out_s(o, " domain ");
      out_quoted(o, n->domain, strlen(n->domain));
    }
    if (n->opset != g->opset)
      out_f(o, " opset %d", n->opset);
    if (n->name && n->name[0]) {
      out_s(o, " name ");
      out_quoted(o, n->name, strlen(n->name));
    }
    out_s(o, "\n");
  }
  for (int i = 0; i < g->noutputs; i++) {
    indent(o, depth + 1);
    out_s(o, "output ");
    if (g->outputs[i] < 0 || g->outputs[i] >= g->nvalues)
      out_s(o, "_");
    else
      out_name(o, disp[g->outputs[i]]);
    out_s(o, "\n");
  }
  free(st);
  for (int i = 0; i < nowned; i++)
    free(owned[i]);
  free(owned);
  free(disp);
  indent(o, depth);
  out_s(o, "}");
}

static DlStatus render(DlGraph *g, Out *o) {
  out_graph(o, g, 0);
  out_s(o, "\n");
  if (o->oom) {
    free(o->buf);
    o->buf = NULL;
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory printing IR");
  }
  return DL_OK;
}

DlStatus dl_ir_print(DlGraph *g, void *file) {
  Out o = {0};
  DL_TRY(render(g, &o));
  FILE *f = file ? (FILE *)file : stdout;
  size_t w = fwrite(o.buf, 1, o.len, f);
  free(o.buf);
  if (w != o.len)
    return dl_error(g->ctx, DL_ERR_IO, "cannot write IR text");
  return DL_OK;
}

char *dl_ir_to_string(DlGraph *g) {
  Out o = {0};
  if (render(g, &o) != DL_OK)
    return NULL;
  char *s = dl_arena_strndup(&g->ctx->arena, o.buf, o.len);
  free(o.buf);
  return s;
}
