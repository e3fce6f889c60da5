/*
 * base.h - arenas, status values and the compilation context.
 *
 * Every compilation owns one DlCtx.  Everything allocated while compiling
 * lives in the context's arena and is released at once by dl_ctx_free().
 * There is no global state: two contexts in one process never interfere.
 *
 * Errors are status values.  A function that can fail returns DlStatus
 * (DL_OK == 0) and records a message in the context with dl_error() or
 * dl_error_node(); callers pass the status up with DL_TRY().  Library code
 * never aborts on bad input; DL_UNREACHABLE marks internal bugs only.
 */
#ifndef DLCC_BASE_H
#define DLCC_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum DlStatus {
  DL_OK = 0,
  DL_ERR_IO,          /* file missing, unreadable, unwritable          */
  DL_ERR_PARSE,       /* malformed or truncated model / IR text        */
  DL_ERR_INVALID,     /* well-formed but semantically wrong model      */
  DL_ERR_UNSUPPORTED, /* valid, but an op/attribute dlcc cannot handle */
  DL_ERR_NOMEM,
  DL_ERR_USAGE,   /* bad command-line flag or API argument         */
  DL_ERR_INTERNAL /* a bug in dlcc                                 */
} DlStatus;

const char *dl_status_name(DlStatus s);

/* ---- arena ------------------------------------------------------------ */

typedef struct DlArenaBlock DlArenaBlock;
typedef struct DlArena {
  DlArenaBlock *head;
  size_t used_bytes;
} DlArena;

void dl_arena_init(DlArena *a);
void dl_arena_release(DlArena *a);
/* Zeroed, 16-byte aligned.  Returns NULL only when memory is exhausted. */
void *dl_arena_alloc(DlArena *a, size_t bytes);
char *dl_arena_strdup(DlArena *a, const char *s);
char *dl_arena_strndup(DlArena *a, const char *s, size_t n);
char *dl_arena_printf(DlArena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- diagnostics ------------------------------------------------------ */

typedef struct DlDiag {
  DlStatus code;
  char *msg; /* full text, already prefixed with file and node */
} DlDiag;

struct DlNode;

/* Options that change what the compiler does; filled by the driver. */
typedef struct DlOptions {
  int opt_level; /* 0..3 */
  bool verify_each_pass;
  /* Constants larger than this many bytes are not produced by folding ops
   * that expand their inputs (ConstantOfShape, Expand, Tile, Range). */
  size_t fold_limit_bytes;
} DlOptions;

typedef struct DlCtx {
  DlArena arena;    /* lifetime: the whole compilation */
  const char *file; /* model path, used as message prefix */
  DlOptions opt;
  DlDiag *diags; /* heap array, not arena: survives resets */
  int ndiags, capdiags;
} DlCtx;

void dl_ctx_init(DlCtx *ctx, const char *file);
void dl_ctx_free(DlCtx *ctx);

/* Record an error "FILE: message" and return code. */
DlStatus dl_error(DlCtx *ctx, DlStatus code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record "FILE: node 'NAME' (OpType): message" and return code. */
DlStatus dl_error_node(DlCtx *ctx, const struct DlNode *n, DlStatus code,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
DlStatus dl_verror(DlCtx *ctx, DlStatus code, const char *prefix,
                   const char *fmt, va_list ap);
/* Print every recorded diagnostic as "dlcc: error: ..." lines. */
void dl_print_diags(const DlCtx *ctx, void *file /* FILE* */);
/* Forgets the messages recorded after the first n (a pass that tried a
 * rewrite, found it invalid and undid it). */
void dl_diags_truncate(DlCtx *ctx, int n);

#define DL_TRY(expr)                                                           \
  do {                                                                         \
    DlStatus dl_try_s_ = (expr);                                               \
    if (dl_try_s_ != DL_OK)                                                    \
      return dl_try_s_;                                                        \
  } while (0)

/* Internal invariant broken: a dlcc bug, never a user error. */
#define DL_UNREACHABLE(ctx)                                                    \
  dl_error((ctx), DL_ERR_INTERNAL, "internal error at %s:%d", __FILE__,        \
           __LINE__)

#define DL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
