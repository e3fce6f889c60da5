/*
 * driver.c - the compilation pipeline, top to bottom (see driver.h).
 */
#include "driver/driver.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/llvm/targets.h"
#include "codegen/module.h"
#include "frontend/onnx_import.h"
#include "ir/ir.h"
#include "passes/pass.h"

static bool ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* path without its folder and last extension, in the arena */
static char *stem(DlCtx *ctx, const char *path) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  const char *dot = strrchr(b, '.');
  size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
  return dl_arena_strndup(&ctx->arena, b, n);
}

/* path with its last extension (if any) replaced by ext */
static char *with_ext(DlCtx *ctx, const char *path, const char *ext) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  const char *dot = strrchr(b, '.');
  size_t n = dot && dot != b ? (size_t)(dot - path) : strlen(path);
  return dl_arena_printf(&ctx->arena, "%.*s%s", (int)n, path, ext);
}

char *dlcc_prefix_from_path(DlCtx *ctx, const char *path) {
  char *s = stem(ctx, path);
  if (!s)
    return NULL;
  for (char *c = s; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_')
      *c = '_';
  if (!*s || isdigit((unsigned char)*s))
    s = dl_arena_printf(&ctx->arena, "m_%s", s);
  return s;
}

static DlStatus read_text(DlCtx *ctx, const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return dl_error(ctx, DL_ERR_IO, "cannot open '%s': %s", path,
                    strerror(errno));
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (len + 1 == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb)
        free(buf);
      buf = nb;
    }
  }
  bool err = ferror(f) != 0;
  fclose(f);
  if (!buf)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  if (err) {
    free(buf);
    return dl_error(ctx, DL_ERR_IO, "cannot read '%s'", path);
  }
  *out = dl_arena_strndup(&ctx->arena, buf, len);
  free(buf);
  return *out ? DL_OK : dl_error(ctx, DL_ERR_NOMEM, "out of memory");
}

/* Text outputs (ir, kir): to a temp file renamed into place, or stdout. */
typedef struct TextOut {
  FILE *f;
  char *tmp;
  const char *path;
} TextOut;

static DlStatus text_open(DlCtx *ctx, const char *path, TextOut *t) {
  t->path = path;
  t->tmp = NULL;
  if (!path || strcmp(path, "-") == 0) {
    t->f = stdout;
    return DL_OK;
  }
  t->tmp = dl_arena_printf(&ctx->arena, "%s.tmpXXXXXX", path);
  int fd = mkstemp(t->tmp);
  if (fd < 0)
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s': %s", path,
                    strerror(errno));
  fchmod(fd, 0644);
  t->f = fdopen(fd, "w");
  if (!t->f) {
    close(fd);
    unlink(t->tmp);
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s'", path);
  }
  return DL_OK;
}

static DlStatus text_close(DlCtx *ctx, TextOut *t, DlStatus st) {
  if (!t->tmp) {
    fflush(stdout);
    return st;
  }
  bool err = ferror(t->f) != 0;
  if (fclose(t->f) != 0)
    err = true;
  if (st == DL_OK && err)
    st = dl_error(ctx, DL_ERR_IO, "cannot write '%s'", t->path);
  if (st == DL_OK && rename(t->tmp, t->path) != 0)
    st = dl_error(ctx, DL_ERR_IO, "cannot write '%s': %s", t->path,
                  strerror(errno));
  if (st != DL_OK)
    unlink(t->tmp);
  return st;
}

static int live_nodes(const DlGraph *g) {
  int n = 0;
  for (int k = 0; k < g->nnodes; k++)
    n += !g->nodes[k]->dead;
  return n;
}

/* ---- --stats: one JSON object on stdout ------------------------------- */

typedef struct Stats {
  int nodes_in;
  const DlPassRun *runs;
  int nruns;
  const DlCompileOptions *o; /* --stats-sym values */
} Stats;

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

/* Index of the symbol named name, or -1. */
static int stats_sym_index(const DlGraph *g, const char *name) {
  for (int i = 0; i < g->nsyms; i++)
    if (strcmp(g->syms[i], name) == 0)
      return i;
  return -1;
}

static DlStatus print_stats(DlGraph *g, const KProgram *prog, const KPlan *plan,
                            const Stats *s) {
  DlCtx *ctx = g->ctx;
  int ns = g->nsyms > 0 ? g->nsyms : 1;
  int64_t *ones = dl_arena_alloc(&ctx->arena, sizeof(int64_t) * (size_t)ns);
  int *count = dl_arena_alloc(&ctx->arena, sizeof(int) * (DL_OP_COUNT + 1));
  if (!ones || !count)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < ns; i++)
    ones[i] = 1;
  for (int j = 0; j < s->o->nstats_syms; j++) {
    int i = stats_sym_index(g, s->o->stats_sym_names[j]);
    if (i >= 0) /* checked before anything was written */
      ones[i] = s->o->stats_sym_values[j];
  }
  for (int k = 0; k < g->nnodes; k++)
    if (!g->nodes[k]->dead && g->nodes[k]->op >= 0 &&
        g->nodes[k]->op < DL_OP_COUNT)
      count[g->nodes[k]->op]++;
  uint64_t inter = kplan_intermediate_bytes(prog, plan, ones);
  bool symbolic = false;
  for (int i = 0; i < plan->nslots; i++)
    for (int j = 0; j < plan->slots[i].nsizes; j++)
      if (!dl_dim_is_const(&plan->slots[i].sizes[j], NULL))
        symbolic = true;
  FILE *f = stdout;
  fprintf(f, "{\"nodes_in\": %d, \"nodes_out\": %d, \"kernels\": %d, ",
          s->nodes_in, live_nodes(g), prog->nkernels);
  fputs("\"ops_out\": {", f);
  bool first = true;
  for (int op = 0; op < DL_OP_COUNT; op++) {
    if (!count[op])
      continue;
    fprintf(f, "%s", first ? "" : ", ");
    json_str(f, dl_op_name((DlOp)op));
    fprintf(f, ": %d", count[op]);
    first = false;
  }
  fprintf(f, "}, \"arena_bytes\": %llu, \"symbolic\": %s, ",
          (unsigned long long)kplan_workspace_bytes(plan, ones),
          symbolic ? "true" : "false");
  fprintf(f, "\"weights_bytes\": %llu, \"intermediate_bytes\": %llu, ",
          (unsigned long long)plan->weights_bytes, (unsigned long long)inter);
  fprintf(f,
          "\"workspace_slots\": %d, \"inplace\": %d, \"aliased_copies\": "
          "%d, ",
          plan->nslots, plan->ninplace, plan->naliased);
  fputs("\"passes\": [", f);
  for (int i = 0; i < s->nruns; i++) {
    fprintf(f, "%s{\"name\": ", i ? ", " : "");
    json_str(f, s->runs[i].name);
    fprintf(f, ", \"ms\": %.3f, \"changed\": %s}", s->runs[i].ms,
            s->runs[i].changed ? "true" : "false");
  }
  fputs("]}\n", f);
  fflush(f);
  return ferror(f) ? dl_error(ctx, DL_ERR_IO, "cannot write --stats") : DL_OK;
}

static DlStatus import_model(DlCtx *ctx, const char *path, DlGraph **g) {
  if (ends_with(path, ".ir")) {
    char *text;
    DL_TRY(read_text(ctx, path, &text));
    return dl_ir_parse(ctx, text, g);
  }
  return dl_import_onnx(ctx, path, g);
}

DlStatus dlcc_compile(DlCtx *ctx, const DlCompileOptions *o) {
  if (!o || !o->input)
    return dl_error(ctx, DL_ERR_USAGE, "no input file");
  /* target and backend (LLVM backend / cross compilation) */
  DlTarget tgt;
  DL_TRY(dl_target_resolve(ctx, o->target, o->cpu, o->features, &tgt));
  const DlBackend *be = dl_backend_c();
  if (o->backend && strcmp(o->backend, "c") != 0 &&
      strcmp(o->backend, "llvm") != 0)
    return dl_error(ctx, DL_ERR_USAGE, "unknown backend '%s' (c, llvm)",
                    o->backend);
  if (o->emit != DL_EMIT_C &&
      (!o->backend || strcmp(o->backend, "llvm") == 0)) {
    if (dl_backend_llvm())
      be = dl_backend_llvm();
    else if (o->backend)
      return dl_error(ctx, DL_ERR_UNSUPPORTED,
                      "this dlcc was built without LLVM (--backend=llvm)");
  }
  if (be == dl_backend_c() && o->emit == DL_EMIT_SO &&
      !dl_target_is_host(&tgt)) {
    char *cc;
    DL_TRY(dl_target_c_compiler(ctx, &tgt, &cc));
    setenv("CC", cc, 1); /* the C backend compiles with $CC */
  }
  ctx->opt.opt_level = o->opt_level;
  if (o->verify_each_pass)
    ctx->opt.verify_each_pass = true;
  DlPassOptions po = {0};
  po.level = o->opt_level;
  po.passes = o->passes;
  po.disable = o->disable_passes;
  po.ndisable = o->ndisable_passes;
  po.print_after = o->print_ir_after;
  po.nprint_after = o->nprint_ir_after;
  po.print_after_all = o->print_ir_after_all;
  po.dump_dot = o->dump_dot;
  DL_TRY(dl_pass_check_options(ctx, &po));

  /* front end and graph passes */
  DlGraph *g = NULL;
  DL_TRY(import_model(ctx, o->input, &g));
  for (int i = 0; i < o->nfreeze; i++)
    DL_TRY(dl_freeze_input(g, o->freeze_names[i], o->freeze_files[i]));
  int nodes_in = live_nodes(g);
  DL_TRY(dl_verify(g, false));
  DL_TRY(dl_infer_graph(g));
  DL_TRY(dl_verify(g, true));
  DlPassRun *runs = NULL;
  int nruns = 0;
  DL_TRY(dl_run_passes(g, &po, &runs, &nruns));
  if (!ctx->opt.verify_each_pass)
    DL_TRY(dl_verify(g, true));
  for (int j = 0; o->stats && j < o->nstats_syms; j++)
    if (stats_sym_index(g, o->stats_sym_names[j]) < 0)
      return dl_error(ctx, DL_ERR_USAGE,
                      "--stats-sym: the model has no symbol '%s'",
                      o->stats_sym_names[j]);

  if (o->emit == DL_EMIT_IR) {
    TextOut t;
    DL_TRY(text_open(ctx, o->output, &t));
    DL_TRY(text_close(ctx, &t, dl_ir_print(g, t.f)));
    if (!o->stats)
      return DL_OK;
  }

  /* kernels and storage */
  KProgram *prog = NULL;
  DL_TRY(kir_lower_graph(g, &prog));
  KPlan *plan = NULL;
  DL_TRY(kplan_build_ex(prog,
                        o->sidecar_threshold ? o->sidecar_threshold
                                             : DL_SIDECAR_THRESHOLD_DEFAULT,
                        &plan));

  Stats stats = {nodes_in, runs, nruns, o};
  if (o->emit == DL_EMIT_IR)
    return print_stats(g, prog, plan, &stats);
  if (o->emit == DL_EMIT_KIR) {
    TextOut t;
    DL_TRY(text_open(ctx, o->output, &t));
    for (int k = 0; k < prog->nkernels; k++)
      kir_print(g, prog->kernels[k], t.f);
    DL_TRY(text_close(ctx, &t, DL_OK));
    return o->stats ? print_stats(g, prog, plan, &stats) : DL_OK;
  }
  if (o->emit == DL_EMIT_PLAN) {
    TextOut t;
    DL_TRY(text_open(ctx, o->output, &t));
    DL_TRY(text_close(ctx, &t, kplan_print(prog, plan, t.f)));
    return o->stats ? print_stats(g, prog, plan, &stats) : DL_OK;
  }

  /* module and header */
  const char *out = o->output;
  if (!out)
    out = dl_arena_printf(&ctx->arena, "%s.%s", stem(ctx, o->input),
                          o->emit == DL_EMIT_C ? "c"
                          : tgt.macho          ? "dylib"
                                               : "so");
  DlEmitRequest rq = {0};
  rq.prefix = o->prefix ? o->prefix : dlcc_prefix_from_path(ctx, out);
  rq.out_path = out;
  rq.header_path = o->no_header ? NULL : with_ext(ctx, out, ".h");
  if (rq.header_path && strcmp(rq.header_path, out) == 0)
    rq.header_path = dl_arena_printf(&ctx->arena, "%s.h", out);
  rq.sidecar_path = dl_arena_printf(&ctx->arena, "%s.weights", out);
  rq.target = o->target;
  rq.opt_level = o->opt_level;
  rq.cpu = o->cpu;
  rq.features = o->features;

  DlStatus st = o->emit == DL_EMIT_C ? be->emit_source(prog, plan, &rq)
                                     : be->emit_shared(prog, plan, &rq);
  if (st != DL_OK)
    return st;
  if (rq.header_path) {
    st = dl_write_header(prog, plan, &rq);
    if (st != DL_OK) {
      unlink(out);
      if (plan->weights_sidecar)
        unlink(rq.sidecar_path);
      return st;
    }
  }
  return o->stats ? print_stats(g, prog, plan, &stats) : DL_OK;
}
