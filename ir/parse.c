/*
 * parse.c - reads the textual IR written by print.c.
 *
 * A small hand-written lexer and recursive-descent parser.  Errors are
 * reported as "FILE:LINE:COL: message" and parsing stops at the first one;
 * any input, however malformed, yields a status and never a crash.  The
 * grammar (see print.c for an example):
 *
 *   file    := graph EOF
 *   graph   := 'graph' STRING 'opset' INT ['syms' '(' [sym {',' sym}] ')']
 *              '{' {stmt} '}'
 *   stmt    := 'input' decl | 'outer' decl | 'const' decl '=' HEX
 *            | 'output' (VALUE | '_') | outs '=' OPTYPE '(' args ')' {suffix}
 *   outs    := '(' ')' | ('_' | decl) {',' ('_' | decl)}
 *   decl    := VALUE ':' type ['symval' '[' dims ']'] ['data' HEX]
 *   type    := '?' | ('?' | DTYPE) '[' ('*' | [dim {',' dim}]) ']'
 *   dim     := ['-'] term {('+' | '-') term};  term := factor {'*' factor}
 *   factor  := INT | SYM | '(' dim ')'
 *   suffix  := '{' [attr {',' attr}] '}' | 'domain' STRING | 'opset' INT
 *            | 'name' STRING
 *   attr    := (IDENT | STRING) '=' aval
 *   aval    := ['-'] (INT | FLOAT | 'inf' | 'nan') | STRING | graph
 *            | 'tensor' '(' [VALUE ':'] type [',' HEX] ')'
 *            | [LISTKW] '[' [aval {',' aval}] ']'
 */
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef enum TokKind {
  T_EOF,
  T_IDENT,
  T_INT,
  T_FLOAT,
  T_STRING,
  T_VALUE,
  T_HEX,
  T_PUNCT,
  T_ERROR
} TokKind;

typedef struct Tok {
  TokKind kind;
  int line, col;
  const char *start; /* source text of the token */
  size_t len;
  char punct;
  uint64_t u; /* T_INT magnitude */
  char *str;  /* decoded T_STRING / T_VALUE / T_HEX bytes (arena) */
  size_t slen;
} Tok;

typedef struct Lexer {
  const char *src;
  size_t pos;
  int line, col;
  Tok tok; /* current token */
} Lexer;

typedef struct Parser {
  DlCtx *ctx;
  Lexer lx;
  DlStatus status;
  int depth;
  struct ValMap *vals; /* names of the graph being parsed */
} Parser;

/* Value name -> id for one graph (open addressing, heap). */
typedef struct ValMap {
  const char **keys;
  int *ids;
  size_t cap, n;
} ValMap;

static size_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (size_t)h;
}

static int vm_get(const ValMap *m, const char *k) {
  if (!m || !m->cap)
    return -1;
  for (size_t i = name_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i])
      return -1;
    if (strcmp(m->keys[i], k) == 0)
      return m->ids[i];
  }
}

static bool vm_put(ValMap *m, const char *k, int id) {
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    const char **keys = calloc(cap, sizeof *keys);
    int *ids = calloc(cap, sizeof *ids);
    if (!keys || !ids) {
      free(keys);
      free(ids);
      return false;
    }
    for (size_t j = 0; j < m->cap; j++) {
      if (!m->keys[j])
        continue;
      size_t i = name_hash(m->keys[j]) & (cap - 1);
      while (keys[i])
        i = (i + 1) & (cap - 1);
      keys[i] = m->keys[j];
      ids[i] = m->ids[j];
    }
    free(m->keys);
    free(m->ids);
    m->keys = keys;
    m->ids = ids;
    m->cap = cap;
  }
  size_t i = name_hash(k) & (m->cap - 1);
  while (m->keys[i])
    i = (i + 1) & (m->cap - 1);
  m->keys[i] = k;
  m->ids[i] = id;
  m->n++;
  return true;
}

static DlStatus perr_at(Parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static DlStatus perr_at(Parser *p, int line, int col, const char *fmt, ...) {
  if (p->status != DL_OK)
    return p->status;
  char prefix[512];
  snprintf(prefix, sizeof prefix,
           "%s:%d:%d: ", p->ctx->file ? p->ctx->file : "<input>", line, col);
  va_list ap;
  va_start(ap, fmt);
  p->status = dl_verror(p->ctx, DL_ERR_PARSE, prefix, fmt, ap);
  va_end(ap);
  return p->status;
}

#define PERR(p, ...)                                                           \
  perr_at((p), (p)->lx.tok.line, (p)->lx.tok.col, __VA_ARGS__)

static DlStatus nomem(Parser *p) {
  if (p->status != DL_OK)
    return p->status;
  p->status = dl_error(p->ctx, DL_ERR_NOMEM, "out of memory parsing IR");
  return p->status;
}

/* ---- lexer --------------------------------------------------------------- */

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
static bool is_namec(char c) {
  return is_alpha(c) || is_digit(c) || c == '.' || c == '/' || c == '-';
}
static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static char lx_peekc(const Lexer *l, size_t k) {
  /* never reads beyond the terminating NUL */
  for (size_t i = 0; i < k; i++)
    if (!l->src[l->pos + i])
      return 0;
  return l->src[l->pos + k];
}

static void lx_adv(Lexer *l) {
  char c = l->src[l->pos];
  if (!c)
    return;
  l->pos++;
  if (c == '\n') {
    l->line++;
    l->col = 1;
  } else {
    l->col++;
  }
}

/* Reads a "..." string at the current position into arena bytes. */
static bool lx_string(Parser *p, char **out, size_t *outlen) {
  Lexer *l = &p->lx;
  int line = l->line, col = l->col;
  lx_adv(l); /* opening quote */
  size_t start = l->pos, cap = 0;
  /* first pass: find the end and the decoded length upper bound */
  for (size_t i = start;; i++) {
    char c = l->src[i];
    if (!c || c == '\n') {
      perr_at(p, line, col, "unterminated string");
      return false;
    }
    if (c == '"')
      break;
    if (c == '\\') {
      if (!l->src[i + 1]) {
        perr_at(p, line, col, "unterminated string");
        return false;
      }
      i++;
    }
    cap++;
  }
  char *buf = dl_arena_alloc(&p->ctx->arena, cap + 1);
  if (!buf) {
    nomem(p);
    return false;
  }
  size_t n = 0;
  for (;;) {
    char c = l->src[l->pos];
    if (c == '"') {
      lx_adv(l);
      break;
    }
    if (c == '\\') {
      int ecol = l->col;
      lx_adv(l);
      char e = l->src[l->pos];
      lx_adv(l);
      switch (e) {
      case 'n':
        buf[n++] = '\n';
        break;
      case 't':
        buf[n++] = '\t';
        break;
      case '"':
      case '\\':
        buf[n++] = e;
        break;
      case 'x': {
        int h1 = hexval(l->src[l->pos]);
        int h2 = h1 >= 0 ? hexval(l->src[l->pos + 1]) : -1;
        if (h1 < 0 || h2 < 0) {
          perr_at(p, l->line, ecol, "bad \\x escape in string");
          return false;
        }
        lx_adv(l);
        lx_adv(l);
        buf[n++] = (char)(h1 * 16 + h2);
        break;
      }
      default:
        perr_at(p, l->line, ecol, "unknown escape '\\%c' in string",
                (e >= 0x20 && e < 0x7f) ? e : '?');
        return false;
      }
      continue;
    }
    buf[n++] = c;
    lx_adv(l);
  }
  buf[n] = 0;
  *out = buf;
  *outlen = n;
  return true;
}

static void lx_next(Parser *p) {
  Lexer *l = &p->lx;
  Tok *t = &l->tok;
  if (p->status != DL_OK) {
    t->kind = T_ERROR;
    return;
  }
  /* skip white space and // comments */
  for (;;) {
    char c = l->src[l->pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      lx_adv(l);
    } else if (c == '/' && lx_peekc(l, 1) == '/') {
      while (l->src[l->pos] && l->src[l->pos] != '\n')
        lx_adv(l);
    } else {
      break;
    }
  }
  memset(t, 0, sizeof *t);
  t->line = l->line;
  t->col = l->col;
  t->start = l->src + l->pos;
  char c = l->src[l->pos];
  if (!c) {
    t->kind = T_EOF;
    return;
  }
  if (c == 'h' && lx_peekc(l, 1) == 'e' && lx_peekc(l, 2) == 'x' &&
      lx_peekc(l, 3) == '"') {
    lx_adv(l), lx_adv(l), lx_adv(l), lx_adv(l);
    size_t start = l->pos, n = 0;
    while (hexval(l->src[l->pos]) >= 0)
      lx_adv(l), n++;
    if (l->src[l->pos] != '"') {
      perr_at(p, l->line, l->col, "bad character in hex string");
      t->kind = T_ERROR;
      return;
    }
    if (n % 2) {
      perr_at(p, t->line, t->col, "hex string has an odd number of digits");
      t->kind = T_ERROR;
      return;
    }
    lx_adv(l);
    char *buf = dl_arena_alloc(&p->ctx->arena, n / 2 + 1);
    if (!buf) {
      nomem(p);
      t->kind = T_ERROR;
      return;
    }
    for (size_t i = 0; i < n / 2; i++)
      buf[i] = (char)(hexval(l->src[start + 2 * i]) * 16 +
                      hexval(l->src[start + 2 * i + 1]));
    t->kind = T_HEX;
    t->str = buf;
    t->slen = n / 2;
  } else if (is_alpha(c)) {
    while (is_alpha(l->src[l->pos]) || is_digit(l->src[l->pos]))
      lx_adv(l);
    t->kind = T_IDENT;
    if (l->src + l->pos - t->start == 1 && c == '_') {
      t->kind = T_PUNCT; /* a lone '_' marks an omitted input or output */
      t->punct = '_';
    }
  } else if (is_digit(c)) {
    bool is_float = false, overflow = false;
    uint64_t u = 0;
    while (is_digit(l->src[l->pos])) {
      unsigned d = (unsigned)(l->src[l->pos] - '0');
      if (u > (UINT64_MAX - d) / 10)
        overflow = true;
      u = u * 10 + d;
      lx_adv(l);
    }
    if (l->src[l->pos] == '.') {
      is_float = true;
      lx_adv(l);
      while (is_digit(l->src[l->pos]))
        lx_adv(l);
    }
    if (l->src[l->pos] == 'e' || l->src[l->pos] == 'E') {
      char n1 = lx_peekc(l, 1);
      char n2 = (n1 == '+' || n1 == '-') ? lx_peekc(l, 2) : n1;
      if (is_digit(n2)) {
        is_float = true;
        lx_adv(l);
        if (n1 == '+' || n1 == '-')
          lx_adv(l);
        while (is_digit(l->src[l->pos]))
          lx_adv(l);
      }
    }
    if (!is_float && overflow) {
      perr_at(p, t->line, t->col, "integer too large");
      t->kind = T_ERROR;
      return;
    }
    t->kind = is_float ? T_FLOAT : T_INT;
    t->u = u;
  } else if (c == '"') {
    if (!lx_string(p, &t->str, &t->slen)) {
      t->kind = T_ERROR;
      return;
    }
    t->kind = T_STRING;
  } else if (c == '%') {
    lx_adv(l);
    if (l->src[l->pos] == '"') {
      if (!lx_string(p, &t->str, &t->slen)) {
        t->kind = T_ERROR;
        return;
      }
    } else {
      size_t start = l->pos;
      while (is_namec(l->src[l->pos]))
        lx_adv(l);
      if (l->pos == start) {
        perr_at(p, t->line, t->col, "expected a value name after '%%'");
        t->kind = T_ERROR;
        return;
      }
      t->str = dl_arena_strndup(&p->ctx->arena, l->src + start, l->pos - start);
      if (!t->str) {
        nomem(p);
        t->kind = T_ERROR;
        return;
      }
      t->slen = l->pos - start;
    }
    t->kind = T_VALUE;
  } else if (strchr("(){}[],:=*+-?_", c)) {
    lx_adv(l);
    t->kind = T_PUNCT;
    t->punct = c;
  } else {
    if (c >= 0x20 && c < 0x7f)
      perr_at(p, t->line, t->col, "unexpected character '%c'", c);
    else
      perr_at(p, t->line, t->col, "unexpected byte 0x%02x",
              (unsigned)(unsigned char)c);
    t->kind = T_ERROR;
    return;
  }
  t->len = (size_t)(l->src + l->pos - t->start);
}

/* ---- token helpers ------------------------------------------------------- */

static bool ok(const Parser *p) {
  return p->status == DL_OK;
}

static bool is_punct(const Parser *p, char c) {
  return p->lx.tok.kind == T_PUNCT && p->lx.tok.punct == c;
}

static bool is_kw(const Parser *p, const char *kw) {
  const Tok *t = &p->lx.tok;
  return t->kind == T_IDENT && t->len == strlen(kw) &&
         memcmp(t->start, kw, t->len) == 0;
}

static const char *tok_desc(const Tok *t, char *buf, size_t cap) {
  switch (t->kind) {
  case T_EOF:
    return "end of input";
  case T_STRING:
    return "a string";
  case T_VALUE:
    return "a value name";
  case T_HEX:
    return "hex data";
  default:
    snprintf(buf, cap, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->start);
    return buf;
  }
}

static DlStatus expected(Parser *p, const char *what) {
  char buf[64];
  return PERR(p, "expected %s, found %s", what,
              tok_desc(&p->lx.tok, buf, sizeof buf));
}

static bool accept_punct(Parser *p, char c) {
  if (!is_punct(p, c))
    return false;
  lx_next(p);
  return true;
}

static bool expect_punct(Parser *p, char c) {
  if (accept_punct(p, c))
    return true;
  char what[8] = {'\'', c, '\'', 0};
  expected(p, what);
  return false;
}

static bool expect_kw(Parser *p, const char *kw) {
  if (is_kw(p, kw)) {
    lx_next(p);
    return true;
  }
  char what[32];
  snprintf(what, sizeof what, "'%s'", kw);
  expected(p, what);
  return false;
}

/* Growable arena array. */
static bool vpush(Parser *p, void **arr, int *n, int *cap, size_t elem,
                  const void *item) {
  if (*n == *cap) {
    int ncap = *cap ? *cap * 2 : 8;
    if (ncap > (1 << 28)) {
      nomem(p);
      return false;
    }
    void *na = dl_arena_alloc(&p->ctx->arena, (size_t)ncap * elem);
    if (!na) {
      nomem(p);
      return false;
    }
    if (*n)
      memcpy(na, *arr, (size_t)*n * elem);
    *arr = na;
    *cap = ncap;
  }
  memcpy((char *)*arr + (size_t)*n * elem, item, elem);
  (*n)++;
  return true;
}

static bool parse_int(Parser *p, int64_t *out) {
  bool neg = accept_punct(p, '-');
  if (p->lx.tok.kind != T_INT) {
    expected(p, "an integer");
    return false;
  }
  uint64_t u = p->lx.tok.u;
  if (u > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
    PERR(p, "integer out of range");
    return false;
  }
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  lx_next(p);
  return true;
}

/* ---- dims and types ------------------------------------------------------ */

static bool parse_dim(Parser *p, DlGraph *g, DlDim *out);

static bool parse_factor(Parser *p, DlGraph *g, DlDim *out) {
  Tok *t = &p->lx.tok;
  if (t->kind == T_INT) {
    if (t->u > (uint64_t)INT64_MAX) {
      PERR(p, "dim constant out of range");
      return false;
    }
    *out = dl_dim_const((int64_t)t->u);
    lx_next(p);
    return true;
  }
  if (t->kind == T_IDENT || t->kind == T_STRING) {
    char *name = t->kind == T_IDENT
                     ? dl_arena_strndup(&p->ctx->arena, t->start, t->len)
                     : t->str;
    if (!name)
      return nomem(p), false;
    if (t->kind == T_STRING && strlen(name) != t->slen) {
      PERR(p, "symbol name contains a NUL byte");
      return false;
    }
    int id = dl_graph_sym(g, name);
    if (id < 0)
      return nomem(p), false;
    *out = dl_dim_sym(id);
    lx_next(p);
    return true;
  }
  if (is_punct(p, '(')) {
    if (++p->depth > MAX_DEPTH) {
      PERR(p, "expression nested too deeply");
      return false;
    }
    lx_next(p);
    bool r = parse_dim(p, g, out) && expect_punct(p, ')');
    p->depth--;
    return r;
  }
  expected(p, "a dim (integer or symbol)");
  return false;
}

static bool parse_term(Parser *p, DlGraph *g, DlDim *out) {
  int line = p->lx.tok.line, col = p->lx.tok.col;
  if (!parse_factor(p, g, out))
    return false;
  while (accept_punct(p, '*')) {
    DlDim f, r;
    if (!parse_factor(p, g, &f))
      return false;
    if (!dl_dim_mul(out, &f, &r)) {
      perr_at(p, line, col, "dim expression too complex");
      return false;
    }
    *out = r;
  }
  return true;
}

static bool parse_dim(Parser *p, DlGraph *g, DlDim *out) {
  int line = p->lx.tok.line, col = p->lx.tok.col;
  bool neg = accept_punct(p, '-');
  DlDim acc;
  if (!parse_term(p, g, &acc))
    return false;
  if (neg) {
    DlDim z = dl_dim_const(0), r;
    if (!dl_dim_sub(&z, &acc, &r)) {
      perr_at(p, line, col, "dim expression too complex");
      return false;
    }
    acc = r;
  }
  for (;;) {
    bool plus = is_punct(p, '+');
    if (!plus && !is_punct(p, '-'))
      break;
    lx_next(p);
    DlDim t, r;
    if (!parse_term(p, g, &t))
      return false;
    if (!(plus ? dl_dim_add(&acc, &t, &r) : dl_dim_sub(&acc, &t, &r))) {
      perr_at(p, line, col, "dim expression too complex");
      return false;
    }
    acc = r;
  }
  *out = acc;
  return true;
}

static bool parse_type(Parser *p, DlGraph *g, DlValue *v) {
  v->dtype = DL_UNDEFINED;
  v->rank = -1;
  if (accept_punct(p, '?')) {
    if (!is_punct(p, '['))
      return true; /* fully unknown */
  } else if (p->lx.tok.kind == T_IDENT) {
    char name[16];
    size_t len = p->lx.tok.len;
    if (len >= sizeof name)
      len = sizeof name - 1;
    memcpy(name, p->lx.tok.start, len);
    name[len] = 0;
    v->dtype =
        p->lx.tok.len < sizeof name ? dl_dtype_from_name(name) : DL_UNDEFINED;
    if (v->dtype == DL_UNDEFINED) {
      PERR(p, "unknown dtype '%.*s'", (int)(len), p->lx.tok.start);
      return false;
    }
    lx_next(p);
  } else {
    expected(p, "a type");
    return false;
  }
  if (!expect_punct(p, '['))
    return false;
  if (accept_punct(p, '*'))
    return expect_punct(p, ']');
  int rank = 0;
  if (!is_punct(p, ']')) {
    do {
      if (rank == DL_MAX_RANK) {
        PERR(p, "rank above %d", DL_MAX_RANK);
        return false;
      }
      if (!parse_dim(p, g, &v->dims[rank]))
        return false;
      rank++;
    } while (accept_punct(p, ','));
  }
  if (!expect_punct(p, ']'))
    return false;
  v->rank = rank;
  return true;
}

/* Checks that hex data fits v's type exactly and attaches it. */
static bool attach_data(Parser *p, DlValue *v, const Tok *hex) {
  size_t es = dl_dtype_size(v->dtype);
  int64_t n = dl_value_numel_const(v);
  if (es == 0 || n < 0) {
    perr_at(p, hex->line, hex->col,
            "constant data needs a fixed-size dtype and constant shape");
    return false;
  }
  if ((uint64_t)n > SIZE_MAX / es || (size_t)n * es != hex->slen) {
    perr_at(p, hex->line, hex->col,
            "constant data has %zu bytes, type needs %lld x %zu", hex->slen,
            (long long)n, es);
    return false;
  }
  v->data = hex->str;
  if (hex->slen == 0) {
    /* empty tensors still need a non-NULL pointer to count as constant */
    v->data = dl_arena_alloc(&p->ctx->arena, 1);
    if (!v->data)
      return nomem(p), false;
  }
  return true;
}

static int find_value(const Parser *p, const char *name) {
  return vm_get(p->vals, name);
}

static bool check_name(Parser *p, const Tok *t) {
  if (strlen(t->str) != t->slen) {
    perr_at(p, t->line, t->col, "value name contains a NUL byte");
    return false;
  }
  return true;
}

/* decl := VALUE ':' type ['symval' '[' dims ']'] ['data' HEX] */
static DlValue *parse_decl(Parser *p, DlGraph *g, bool allow_data) {
  Tok name = p->lx.tok;
  if (name.kind != T_VALUE) {
    expected(p, "a value name");
    return NULL;
  }
  if (!check_name(p, &name))
    return NULL;
  if (find_value(p, name.str) >= 0) {
    perr_at(p, name.line, name.col, "value '%%%s' is defined twice", name.str);
    return NULL;
  }
  lx_next(p);
  if (!expect_punct(p, ':'))
    return NULL;
  DlValue *v = dl_value_new(g, name.str, DL_UNDEFINED);
  if (!v || !vm_put(p->vals, v->name, v->id))
    return nomem(p), NULL;
  if (!parse_type(p, g, v))
    return NULL;
  if (is_kw(p, "symval")) {
    Tok at = p->lx.tok;
    lx_next(p);
    if (!expect_punct(p, '['))
      return NULL;
    DlDim *dims = NULL;
    int n = 0, cap = 0;
    if (!is_punct(p, ']')) {
      do {
        DlDim d;
        if (!parse_dim(p, g, &d))
          return NULL;
        if (!vpush(p, (void **)&dims, &n, &cap, sizeof d, &d))
          return NULL;
      } while (accept_punct(p, ','));
    }
    if (!expect_punct(p, ']'))
      return NULL;
    int64_t numel = dl_value_numel_const(v);
    if (!dl_dtype_is_int(v->dtype) || numel != n) {
      perr_at(p, at.line, at.col,
              "symval needs an integer tensor with %d elements", n);
      return NULL;
    }
    if (n == 0) {
      dims = dl_arena_alloc(&p->ctx->arena, sizeof(DlDim));
      if (!dims)
        return nomem(p), NULL;
    }
    v->symval = dims;
  }
  if (allow_data && is_kw(p, "data")) {
    lx_next(p);
    if (p->lx.tok.kind != T_HEX) {
      expected(p, "hex data");
      return NULL;
    }
    if (!attach_data(p, v, &p->lx.tok))
      return NULL;
    lx_next(p);
  }
  return v;
}

/* ---- attributes ---------------------------------------------------------- */

static DlGraph *parse_graph(Parser *p, DlGraph *parent);

/* tensor '(' [VALUE ':'] type [',' HEX] ')' -- a detached value */
static DlValue *parse_tensor(Parser *p, DlGraph *g) {
  if (!expect_kw(p, "tensor") || !expect_punct(p, '('))
    return NULL;
  DlValue *v = dl_arena_alloc(&p->ctx->arena, sizeof *v);
  if (!v)
    return nomem(p), NULL;
  v->id = -1;
  v->producer = -1;
  v->rank = -1;
  v->name = "";
  if (p->lx.tok.kind == T_VALUE) {
    if (!check_name(p, &p->lx.tok))
      return NULL;
    v->name = p->lx.tok.str;
    lx_next(p);
    if (!expect_punct(p, ':'))
      return NULL;
  }
  if (!parse_type(p, g, v))
    return NULL;
  if (accept_punct(p, ',')) {
    if (p->lx.tok.kind != T_HEX) {
      expected(p, "hex data");
      return NULL;
    }
    if (!attach_data(p, v, &p->lx.tok))
      return NULL;
    lx_next(p);
  }
  if (!expect_punct(p, ')'))
    return NULL;
  return v;
}

/* Reads a float or int token (with optional sign) as a float. */
static bool parse_float(Parser *p, float *out) {
  bool neg = accept_punct(p, '-');
  Tok *t = &p->lx.tok;
  float f;
  if (is_kw(p, "inf")) {
    f = __builtin_inff();
  } else if (is_kw(p, "nan")) {
    f = __builtin_nanf("");
  } else if (t->kind == T_FLOAT || t->kind == T_INT) {
    char buf[128];
    if (t->len >= sizeof buf) {
      PERR(p, "number too long");
      return false;
    }
    memcpy(buf, t->start, t->len);
    buf[t->len] = 0;
    f = strtof(buf, NULL);
  } else {
    expected(p, "a number");
    return false;
  }
  lx_next(p);
  *out = neg ? -f : f;
  return true;
}

/* What an attribute value starting at the current token is. */
static DlAttrKind peek_kind(Parser *p) {
  Lexer save = p->lx;
  if (is_punct(p, '-'))
    lx_next(p);
  DlAttrKind k = 0;
  if (p->lx.tok.kind == T_INT)
    k = DL_ATTR_INT;
  else if (p->lx.tok.kind == T_FLOAT || is_kw(p, "inf") || is_kw(p, "nan"))
    k = DL_ATTR_FLOAT;
  else if (p->lx.tok.kind == T_STRING)
    k = DL_ATTR_STRING;
  else if (is_kw(p, "tensor"))
    k = DL_ATTR_TENSOR;
  else if (is_kw(p, "graph"))
    k = DL_ATTR_GRAPH;
  p->lx = save;
  return k;
}

static bool parse_attr(Parser *p, DlGraph *g, DlAttr *a) {
  Tok nt = p->lx.tok;
  if (nt.kind == T_IDENT) {
    a->name = dl_arena_strndup(&p->ctx->arena, nt.start, nt.len);
    if (!a->name)
      return nomem(p), false;
  } else if (nt.kind == T_STRING) {
    a->name = nt.str;
  } else {
    expected(p, "an attribute name");
    return false;
  }
  lx_next(p);
  if (!expect_punct(p, '='))
    return false;

  /* list, maybe with a kind keyword */
  static const struct {
    const char *kw;
    DlAttrKind list, elem;
  } lists[] = {{"floats", DL_ATTR_FLOATS, DL_ATTR_FLOAT},
               {"ints", DL_ATTR_INTS, DL_ATTR_INT},
               {"strings", DL_ATTR_STRINGS, DL_ATTR_STRING},
               {"tensors", DL_ATTR_TENSORS, DL_ATTR_TENSOR},
               {"graphs", DL_ATTR_GRAPHS, DL_ATTR_GRAPH}};
  DlAttrKind elem = 0;
  for (size_t i = 0; i < DL_ARRAY_LEN(lists); i++) {
    if (is_kw(p, lists[i].kw)) {
      lx_next(p);
      if (!is_punct(p, '[')) {
        expected(p, "'['");
        return false;
      }
      elem = lists[i].elem;
      a->kind = lists[i].list;
    }
  }
  if (is_punct(p, '[')) {
    lx_next(p);
    if (!elem && !is_punct(p, ']')) {
      elem = peek_kind(p);
      for (size_t i = 0; i < DL_ARRAY_LEN(lists); i++)
        if (lists[i].elem == elem)
          a->kind = lists[i].list;
      if (!elem) {
        expected(p, "an attribute value");
        return false;
      }
    }
    if (!elem) {
      PERR(p, "empty list needs a kind, e.g. ints[]");
      return false;
    }
    int n = 0, cap = 0;
    void *arr = NULL;
    if (!is_punct(p, ']')) {
      do {
        if (elem == DL_ATTR_FLOAT) {
          float f;
          if (!parse_float(p, &f))
            return false;
          if (!vpush(p, &arr, &n, &cap, sizeof f, &f))
            return false;
        } else if (elem == DL_ATTR_INT) {
          int64_t x;
          if (!parse_int(p, &x))
            return false;
          if (!vpush(p, &arr, &n, &cap, sizeof x, &x))
            return false;
        } else if (elem == DL_ATTR_STRING) {
          if (p->lx.tok.kind != T_STRING) {
            expected(p, "a string");
            return false;
          }
          const char *s = p->lx.tok.str;
          if (!vpush(p, &arr, &n, &cap, sizeof s, &s))
            return false;
          lx_next(p);
        } else if (elem == DL_ATTR_TENSOR) {
          DlValue *t = parse_tensor(p, g);
          if (!t || !vpush(p, &arr, &n, &cap, sizeof t, &t))
            return false;
        } else {
          DlGraph *sg = parse_graph(p, g);
          if (!sg || !vpush(p, &arr, &n, &cap, sizeof sg, &sg))
            return false;
        }
      } while (accept_punct(p, ','));
    }
    if (!expect_punct(p, ']'))
      return false;
    if (!arr) {
      /* keep list pointers non-NULL even when empty */
      arr = dl_arena_alloc(&p->ctx->arena, 8);
      if (!arr)
        return nomem(p), false;
    }
    a->n = n;
    switch (a->kind) {
    case DL_ATTR_FLOATS:
      a->floats = arr;
      break;
    case DL_ATTR_INTS:
      a->ints = arr;
      break;
    case DL_ATTR_STRINGS:
      a->strings = arr;
      break;
    case DL_ATTR_TENSORS:
      a->ts = arr;
      break;
    default:
      a->gs = arr;
      break;
    }
    return true;
  }

  a->kind = peek_kind(p);
  switch (a->kind) {
  case DL_ATTR_INT:
    return parse_int(p, &a->i);
  case DL_ATTR_FLOAT:
    return parse_float(p, &a->f);
  case DL_ATTR_STRING:
    a->s = p->lx.tok.str;
    a->s_len = p->lx.tok.slen;
    lx_next(p);
    return true;
  case DL_ATTR_TENSOR:
    a->t = parse_tensor(p, g);
    return a->t != NULL;
  case DL_ATTR_GRAPH:
    a->g = parse_graph(p, g);
    return a->g != NULL;
  default:
    expected(p, "an attribute value");
    return false;
  }
}

/* ---- statements ---------------------------------------------------------- */

static bool parse_node(Parser *p, DlGraph *g) {
  int *outs = NULL, nout = 0, capout = 0;
  if (accept_punct(p, '(')) {
    if (!expect_punct(p, ')'))
      return false;
  } else {
    do {
      int id = -1;
      if (!accept_punct(p, '_')) {
        DlValue *v = parse_decl(p, g, true);
        if (!v)
          return false;
        id = v->id;
      }
      if (!vpush(p, (void **)&outs, &nout, &capout, sizeof id, &id))
        return false;
    } while (accept_punct(p, ','));
  }
  if (!expect_punct(p, '='))
    return false;
  Tok opt = p->lx.tok;
  char *op_type;
  if (opt.kind == T_IDENT)
    op_type = dl_arena_strndup(&p->ctx->arena, opt.start, opt.len);
  else if (opt.kind == T_STRING)
    op_type = opt.str;
  else
    return expected(p, "an op type"), false;
  if (!op_type)
    return nomem(p), false;
  lx_next(p);
  if (!expect_punct(p, '('))
    return false;
  int *ins = NULL, nin = 0, capin = 0;
  if (!is_punct(p, ')')) {
    do {
      int id = -1;
      if (!accept_punct(p, '_')) {
        if (p->lx.tok.kind != T_VALUE)
          return expected(p, "a value"), false;
        id = find_value(p, p->lx.tok.str);
        if (id < 0) {
          PERR(p, "undefined value '%%%s'", p->lx.tok.str);
          return false;
        }
        lx_next(p);
      }
      if (!vpush(p, (void **)&ins, &nin, &capin, sizeof id, &id))
        return false;
    } while (accept_punct(p, ','));
  }
  if (!expect_punct(p, ')'))
    return false;

  DlAttr *attrs = NULL;
  int nattr = 0, capattr = 0;
  const char *domain = "", *name = "";
  int64_t opset = g->opset;
  bool seen_attrs = false;
  for (;;) {
    if (is_punct(p, '{') && !seen_attrs) {
      seen_attrs = true;
      lx_next(p);
      if (!is_punct(p, '}')) {
        do {
          DlAttr a;
          memset(&a, 0, sizeof a);
          if (!parse_attr(p, g, &a))
            return false;
          if (!vpush(p, (void **)&attrs, &nattr, &capattr, sizeof a, &a))
            return false;
        } while (accept_punct(p, ','));
      }
      if (!expect_punct(p, '}'))
        return false;
    } else if (is_kw(p, "domain")) {
      lx_next(p);
      if (p->lx.tok.kind != T_STRING)
        return expected(p, "a string"), false;
      domain = p->lx.tok.str;
      lx_next(p);
    } else if (is_kw(p, "opset")) {
      lx_next(p);
      if (!parse_int(p, &opset))
        return false;
      if (opset < 0 || opset > 100000) {
        PERR(p, "opset out of range");
        return false;
      }
    } else if (is_kw(p, "name")) {
      lx_next(p);
      if (p->lx.tok.kind != T_STRING)
        return expected(p, "a string"), false;
      name = p->lx.tok.str;
      lx_next(p);
    } else {
      break;
    }
  }
  DlNode *n = dl_node_new(g, dl_op_from_name(domain, op_type), op_type, name,
                          nin, nout);
  if (!n)
    return nomem(p), false;
  n->domain = domain;
  n->opset = (int)opset;
  for (int i = 0; i < nin; i++)
    n->in[i] = ins[i];
  for (int i = 0; i < nout; i++) {
    n->out[i] = outs[i];
    if (outs[i] >= 0)
      g->values[outs[i]]->producer = n->id;
  }
  n->nattr = nattr;
  n->attrs = attrs;
  return true;
}

/* Capacities of the graph's input and output arrays while parsing. */
typedef struct IoCap {
  int capin, capout;
} IoCap;

static bool parse_stmt(Parser *p, DlGraph *g, IoCap *io) {
  if (is_kw(p, "input") || is_kw(p, "outer")) {
    bool input = is_kw(p, "input");
    lx_next(p);
    DlValue *v = parse_decl(p, g, false);
    if (!v)
      return false;
    if (input) {
      v->is_input = true;
      if (!vpush(p, (void **)&g->inputs, &g->ninputs, &io->capin, sizeof(int),
                 &v->id))
        return false;
    }
    return true;
  }
  if (is_kw(p, "const")) {
    lx_next(p);
    DlValue *v = parse_decl(p, g, false);
    if (!v || !expect_punct(p, '='))
      return false;
    if (p->lx.tok.kind != T_HEX)
      return expected(p, "hex data"), false;
    if (!attach_data(p, v, &p->lx.tok))
      return false;
    lx_next(p);
    return true;
  }
  if (is_kw(p, "output")) {
    lx_next(p);
    int id = -1;
    if (!accept_punct(p, '_')) {
      if (p->lx.tok.kind != T_VALUE)
        return expected(p, "a value"), false;
      id = find_value(p, p->lx.tok.str);
      if (id < 0) {
        PERR(p, "undefined value '%%%s'", p->lx.tok.str);
        return false;
      }
      g->values[id]->is_output = true;
      lx_next(p);
    }
    if (!vpush(p, (void **)&g->outputs, &g->noutputs, &io->capout, sizeof(int),
               &id))
      return false;
    return true;
  }
  return parse_node(p, g);
}

static DlGraph *parse_graph_body(Parser *p, DlGraph *parent);

/* Each graph has its own value names; subgraphs declare outer values. */
static DlGraph *parse_graph(Parser *p, DlGraph *parent) {
  ValMap map = {0};
  ValMap *saved = p->vals;
  p->vals = &map;
  DlGraph *g = parse_graph_body(p, parent);
  p->vals = saved;
  free(map.keys);
  free(map.ids);
  return g;
}

static DlGraph *parse_graph_body(Parser *p, DlGraph *parent) {
  if (++p->depth > MAX_DEPTH) {
    PERR(p, "graphs nested too deeply");
    return NULL;
  }
  if (!expect_kw(p, "graph"))
    return NULL;
  if (p->lx.tok.kind != T_STRING)
    return expected(p, "a graph name"), NULL;
  DlGraph *g = dl_graph_new(p->ctx, p->lx.tok.str);
  if (!g)
    return nomem(p), NULL;
  g->parent = parent;
  lx_next(p);
  if (!expect_kw(p, "opset"))
    return NULL;
  int64_t opset;
  if (!parse_int(p, &opset))
    return NULL;
  if (opset < 0 || opset > 100000) {
    PERR(p, "opset out of range");
    return NULL;
  }
  g->opset = opset;
  if (is_kw(p, "syms")) {
    lx_next(p);
    if (!expect_punct(p, '('))
      return NULL;
    if (!is_punct(p, ')')) {
      do {
        Tok t = p->lx.tok;
        char *name = t.kind == T_IDENT
                         ? dl_arena_strndup(&p->ctx->arena, t.start, t.len)
                     : t.kind == T_STRING ? t.str
                                          : NULL;
        if (!name) {
          if (t.kind == T_IDENT)
            return nomem(p), NULL;
          return expected(p, "a symbol name"), NULL;
        }
        for (int i = 0; i < g->nsyms; i++)
          if (strcmp(g->syms[i], name) == 0) {
            PERR(p, "symbol '%s' declared twice", name);
            return NULL;
          }
        if (dl_graph_sym(g, name) < 0)
          return nomem(p), NULL;
        lx_next(p);
      } while (accept_punct(p, ','));
    }
    if (!expect_punct(p, ')'))
      return NULL;
  }
  if (!expect_punct(p, '{'))
    return NULL;
  IoCap io = {0, 0};
  while (ok(p) && !is_punct(p, '}')) {
    if (p->lx.tok.kind == T_EOF) {
      expected(p, "'}'");
      return NULL;
    }
    if (!parse_stmt(p, g, &io))
      return NULL;
  }
  if (!expect_punct(p, '}'))
    return NULL;
  p->depth--;
  return g;
}

DlStatus dl_ir_parse(DlCtx *ctx, const char *text, DlGraph **out) {
  Parser p;
  memset(&p, 0, sizeof p);
  p.ctx = ctx;
  p.lx.src = text ? text : "";
  p.lx.line = 1;
  p.lx.col = 1;
  *out = NULL;
  lx_next(&p);
  DlGraph *g = parse_graph(&p, NULL);
  if (g && ok(&p) && p.lx.tok.kind != T_EOF)
    expected(&p, "end of input");
  if (!ok(&p))
    return p.status;
  if (!g)
    return dl_error(ctx, DL_ERR_PARSE, "cannot parse IR");
  *out = g;
  return DL_OK;
}
