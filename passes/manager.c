/*
 * manager.c - the pass table and the pass manager.
 *
 * The table is passes.def expanded once.  A pipeline is either the rows
 * whose min_level is at most the -O level, in table order, or exactly the
 * passes named by --passes (in that order); --disable-pass removes names
 * from either.  After each pass the manager optionally verifies the graph,
 * prints its IR, and draws it with Graphviz; it records time and the
 * "changed" flag for --stats.
 */
#include "passes/pass.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const DlPass PASS_TABLE[] = {
#define DL_PASS(name, level, fn, summary) {#name, level, fn, summary},
#include "passes/passes.def"
#undef DL_PASS
};

const DlPass *dl_pass_table(int *count) {
  if (count)
    *count = (int)DL_ARRAY_LEN(PASS_TABLE);
  return PASS_TABLE;
}

const DlPass *dl_pass_find(const char *name) {
  for (size_t i = 0; i < DL_ARRAY_LEN(PASS_TABLE); i++)
    if (strcmp(PASS_TABLE[i].name, name) == 0)
      return &PASS_TABLE[i];
  return NULL;
}

const char *dl_pass_names(DlCtx *ctx) {
  const char *s = "";
  for (size_t i = 0; i < DL_ARRAY_LEN(PASS_TABLE); i++)
    s = dl_arena_printf(&ctx->arena, "%s%s%s", s ? s : "", i ? ", " : "",
                        PASS_TABLE[i].name);
  return s ? s : "";
}

static DlStatus unknown_pass(DlCtx *ctx, const char *flag, const char *name,
                             size_t len) {
  return dl_error(ctx, DL_ERR_USAGE, "%s: unknown pass '%.*s' (valid: %s)",
                  flag, (int)len, name, dl_pass_names(ctx));
}

static const DlPass *find_n(const char *name, size_t len) {
  for (size_t i = 0; i < DL_ARRAY_LEN(PASS_TABLE); i++)
    if (strlen(PASS_TABLE[i].name) == len &&
        strncmp(PASS_TABLE[i].name, name, len) == 0)
      return &PASS_TABLE[i];
  return NULL;
}

DlStatus dl_pass_check_options(DlCtx *ctx, const DlPassOptions *o) {
  if (o->passes) {
    const char *s = o->passes;
    while (true) {
      const char *c = strchr(s, ',');
      size_t len = c ? (size_t)(c - s) : strlen(s);
      if (len && !find_n(s, len))
        return unknown_pass(ctx, "--passes", s, len);
      if (!c)
        break;
      s = c + 1;
    }
  }
  for (int i = 0; i < o->ndisable; i++)
    if (!dl_pass_find(o->disable[i]))
      return unknown_pass(ctx, "--disable-pass", o->disable[i],
                          strlen(o->disable[i]));
  for (int i = 0; i < o->nprint_after; i++)
    if (!dl_pass_find(o->print_after[i]))
      return unknown_pass(ctx, "--print-ir-after", o->print_after[i],
                          strlen(o->print_after[i]));
  return DL_OK;
}

static bool in_list(const char *name, const char *const *list, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0)
      return true;
  return false;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* mkdir -p */
static DlStatus make_dir(DlCtx *ctx, const char *dir) {
  char *p = dl_arena_strdup(&ctx->arena, dir);
  if (!p)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (char *c = p + 1; *c; c++) {
    if (*c != '/')
      continue;
    *c = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      return dl_error(ctx, DL_ERR_IO, "cannot create directory '%s': %s", p,
                      strerror(errno));
    *c = '/';
  }
  if (mkdir(p, 0755) != 0 && errno != EEXIST)
    return dl_error(ctx, DL_ERR_IO, "cannot create directory '%s': %s", p,
                    strerror(errno));
  return DL_OK;
}

DlStatus dl_run_passes(DlGraph *g, const DlPassOptions *o, DlPassRun **runs,
                       int *nruns) {
  DlCtx *ctx = g->ctx;
  DL_TRY(dl_pass_check_options(ctx, o));
  /* the pipeline */
  int cap = (int)DL_ARRAY_LEN(PASS_TABLE);
  if (o->passes)
    for (const char *c = o->passes; *c; c++)
      cap += *c == ',';
  const DlPass **pipe =
      dl_arena_alloc(&ctx->arena, sizeof(*pipe) * (size_t)cap);
  DlPassRun *rec = dl_arena_alloc(&ctx->arena, sizeof(*rec) * (size_t)cap);
  if (!pipe || !rec)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  int np = 0;
  if (o->passes) {
    const char *s = o->passes;
    while (true) {
      const char *c = strchr(s, ',');
      size_t len = c ? (size_t)(c - s) : strlen(s);
      const DlPass *p = len ? find_n(s, len) : NULL;
      if (p && !in_list(p->name, o->disable, o->ndisable) && np < cap)
        pipe[np++] = p;
      if (!c)
        break;
      s = c + 1;
    }
  } else {
    for (size_t i = 0; i < DL_ARRAY_LEN(PASS_TABLE); i++)
      if (PASS_TABLE[i].min_level <= o->level &&
          !in_list(PASS_TABLE[i].name, o->disable, o->ndisable))
        pipe[np++] = &PASS_TABLE[i];
  }

  FILE *pf = o->print_file ? (FILE *)o->print_file : stderr;
  if (o->dump_dot) {
    DL_TRY(make_dir(ctx, o->dump_dot));
    DL_TRY(dl_dot_write(
        g, dl_arena_printf(&ctx->arena, "%s/before.dot", o->dump_dot)));
  }
  for (int i = 0; i < np; i++) {
    const DlPass *p = pipe[i];
    bool changed = false;
    double t0 = now_ms();
    DlStatus st = p->run(g, &changed);
    double t1 = now_ms();
    if (st != DL_OK)
      return st;
    rec[i].name = p->name;
    rec[i].ms = t1 - t0;
    rec[i].changed = changed;
    if (ctx->opt.verify_each_pass) {
      st = dl_verify(g, true);
      if (st != DL_OK)
        return dl_error(ctx, st, "the graph is invalid after pass '%s'",
                        p->name);
    }
    if (o->print_after_all ||
        in_list(p->name, o->print_after, o->nprint_after)) {
      fprintf(pf, "// ---- IR after pass '%s'%s ----\n", p->name,
              changed ? "" : " (unchanged)");
      DL_TRY(dl_ir_print(g, pf));
      fflush(pf);
    }
    if (o->dump_dot)
      DL_TRY(
          dl_dot_write(g, dl_arena_printf(&ctx->arena, "%s/after-%02d-%s.dot",
                                          o->dump_dot, i + 1, p->name)));
  }
  if (runs)
    *runs = rec;
  if (nruns)
    *nruns = np;
  return DL_OK;
}
