/*
 * base.c - arena, status names, context and diagnostics.
 */
#include "ir/base.h"
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dl_status_name(DlStatus s) {
  switch (s) {
  case DL_OK:
    return "ok";
  case DL_ERR_IO:
    return "io error";
  case DL_ERR_PARSE:
    return "parse error";
  case DL_ERR_INVALID:
    return "invalid model";
  case DL_ERR_UNSUPPORTED:
    return "unsupported";
  case DL_ERR_NOMEM:
    return "out of memory";
  case DL_ERR_USAGE:
    return "usage error";
  case DL_ERR_INTERNAL:
    return "internal error";
  }
  return "unknown status";
}

/* ---- arena ------------------------------------------------------------ */

#define DL_ARENA_BLOCK (64 * 1024)
#define DL_ARENA_ALIGN 16

struct DlArenaBlock {
  DlArenaBlock *next;
  size_t cap;  /* usable bytes after the header */
  size_t used; /* bytes handed out */
  /* keeps data 16-byte aligned whatever the two fields above take */
  _Alignas(DL_ARENA_ALIGN) unsigned char data[];
};

void dl_arena_init(DlArena *a) {
  a->head = NULL;
  a->used_bytes = 0;
}

void dl_arena_release(DlArena *a) {
  DlArenaBlock *b = a->head;
  while (b) {
    DlArenaBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used_bytes = 0;
}

static DlArenaBlock *arena_new_block(size_t cap) {
  if (cap > SIZE_MAX - sizeof(DlArenaBlock))
    return NULL;
  DlArenaBlock *b = malloc(sizeof(DlArenaBlock) + cap);
  if (!b)
    return NULL;
  b->next = NULL;
  b->cap = cap;
  b->used = 0;
  return b;
}

void *dl_arena_alloc(DlArena *a, size_t bytes) {
  if (bytes == 0)
    bytes = 1;
  if (bytes > SIZE_MAX - DL_ARENA_ALIGN)
    return NULL;
  size_t need = (bytes + DL_ARENA_ALIGN - 1) & ~(size_t)(DL_ARENA_ALIGN - 1);
  DlArenaBlock *b = a->head;
  if (!b || b->cap - b->used < need) {
    if (need > DL_ARENA_BLOCK / 4) {
      /* A big allocation gets a block of its own, linked behind the current
       * head so the head keeps serving small requests. */
      DlArenaBlock *big = arena_new_block(need);
      if (!big)
        return NULL;
      big->used = need;
      if (a->head) {
        big->next = a->head->next;
        a->head->next = big;
      } else {
        a->head = big;
      }
      a->used_bytes += need;
      memset(big->data, 0, need);
      return big->data;
    }
    b = arena_new_block(DL_ARENA_BLOCK);
    if (!b)
      return NULL;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->used;
  b->used += need;
  a->used_bytes += need;
  memset(p, 0, need);
  return p;
}

char *dl_arena_strndup(DlArena *a, const char *s, size_t n) {
  if (!s)
    return NULL;
  if (n == SIZE_MAX)
    return NULL;
  char *p = dl_arena_alloc(a, n + 1);
  if (!p)
    return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *dl_arena_strdup(DlArena *a, const char *s) {
  if (!s)
    return NULL;
  return dl_arena_strndup(a, s, strlen(s));
}

char *dl_arena_printf(DlArena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    va_end(ap2);
    return NULL;
  }
  char *p = dl_arena_alloc(a, (size_t)n + 1);
  if (p)
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

/* ---- context and diagnostics ------------------------------------------ */

void dl_ctx_init(DlCtx *ctx, const char *file) {
  memset(ctx, 0, sizeof(*ctx));
  dl_arena_init(&ctx->arena);
  ctx->file = file ? file : "<input>";
  ctx->opt.opt_level = 2;
  ctx->opt.verify_each_pass = false;
  ctx->opt.fold_limit_bytes = (size_t)16 << 20;
}

void dl_ctx_free(DlCtx *ctx) {
  for (int i = 0; i < ctx->ndiags; i++)
    free(ctx->diags[i].msg);
  free(ctx->diags);
  ctx->diags = NULL;
  ctx->ndiags = ctx->capdiags = 0;
  dl_arena_release(&ctx->arena);
}

/* Formats into a malloc'ed string; NULL when out of memory. */
static char *vformat(const char *prefix, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  if (n < 0)
    n = 0;
  size_t plen = prefix ? strlen(prefix) : 0;
  char *s = malloc(plen + (size_t)n + 1);
  if (s) {
    if (plen)
      memcpy(s, prefix, plen);
    s[plen] = 0;
    if (n > 0)
      vsnprintf(s + plen, (size_t)n + 1, fmt, ap2);
  }
  va_end(ap2);
  return s;
}

DlStatus dl_verror(DlCtx *ctx, DlStatus code, const char *prefix,
                   const char *fmt, va_list ap) {
  if (!ctx)
    return code;
  char *msg = vformat(prefix, fmt, ap);
  if (!msg)
    return code;
  if (ctx->ndiags == ctx->capdiags) {
    int cap = ctx->capdiags ? ctx->capdiags * 2 : 8;
    DlDiag *d = realloc(ctx->diags, (size_t)cap * sizeof(DlDiag));
    if (!d) {
      free(msg);
      return code;
    }
    ctx->diags = d;
    ctx->capdiags = cap;
  }
  ctx->diags[ctx->ndiags].code = code;
  ctx->diags[ctx->ndiags].msg = msg;
  ctx->ndiags++;
  return code;
}

DlStatus dl_error(DlCtx *ctx, DlStatus code, const char *fmt, ...) {
  char prefix[512];
  snprintf(prefix, sizeof prefix,
           "%s: ", ctx && ctx->file ? ctx->file : "<input>");
  va_list ap;
  va_start(ap, fmt);
  DlStatus s = dl_verror(ctx, code, prefix, fmt, ap);
  va_end(ap);
  return s;
}

DlStatus dl_error_node(DlCtx *ctx, const struct DlNode *n, DlStatus code,
                       const char *fmt, ...) {
  const char *file = ctx && ctx->file ? ctx->file : "<input>";
  const char *name = n && n->name ? n->name : "";
  const char *type = n && n->op_type ? n->op_type : n ? dl_op_name(n->op) : "?";
  int len = snprintf(NULL, 0, "%s: node '%s' (%s): ", file, name, type);
  char small[512];
  char *prefix = small;
  if (len >= (int)sizeof small) {
    prefix = malloc((size_t)len + 1);
    if (!prefix)
      prefix = small, len = (int)sizeof small - 1;
  }
  snprintf(prefix, (size_t)len + 1, "%s: node '%s' (%s): ", file, name, type);
  va_list ap;
  va_start(ap, fmt);
  DlStatus s = dl_verror(ctx, code, prefix, fmt, ap);
  va_end(ap);
  if (prefix != small)
    free(prefix);
  return s;
}

void dl_print_diags(const DlCtx *ctx, void *file) {
  FILE *f = file ? (FILE *)file : stderr;
  for (int i = 0; i < ctx->ndiags; i++) {
    /* A message may span lines; prefix each one. */
    const char *m = ctx->diags[i].msg;
    while (*m) {
      const char *nl = strchr(m, '\n');
      size_t len = nl ? (size_t)(nl - m) : strlen(m);
      fprintf(f, "dlcc: error: %.*s\n", (int)len, m);
      m += len;
      if (*m == '\n')
        m++;
    }
  }
}

void dl_diags_truncate(DlCtx *ctx, int n) {
  if (n < 0)
    n = 0;
  for (int i = n; i < ctx->ndiags; i++)
    free(ctx->diags[i].msg);
  if (ctx->ndiags > n)
    ctx->ndiags = n;
}
