/*
 * dlcc.c - the compiler's command line, in the style of cc/clang:
 *
 *   dlcc [options] model.onnx -o model.so
 *
 * Exit status: 0 success, 1 compilation error (diagnostics on stderr),
 * 2 usage error, 3 the model is valid but uses something dlcc does not
 * support (every such op is listed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/llvm/targets.h"
#include "driver/driver.h"
#include "passes/pass.h"

#ifndef DLCC_VERSION
#define DLCC_VERSION "0.0.0"
#endif

static void usage(FILE *f) {
  fputs(
      "usage: dlcc [options] <model.onnx | graph.ir> [-o <output>]\n"
      "\n"
      "Compiles an ONNX model into a native module plus a C header.\n"
      "\n"
      "options:\n"
      "  -o <file>            output file (default: <model>.so, <model>.c;\n"
      "                       stdout for --emit=ir, kir and plan)\n"
      "  --emit=<kind>        so (default): shared object and <out>.h\n"
      "                       c: C99 source <out>.c and <out>.h\n"
      "                       ir: textual graph IR after the passes\n"
      "                       kir: kernel IR dump\n"
      "                       plan: storage plan (workspace slots)\n"
      "  -O0 -O1 -O2 -O3      optimization level (default -O2)\n"
      "  --name=<prefix>      C prefix of the entry points (default: the\n"
      "                       output file name as a C identifier)\n"
      "  --target=<t>         code generation target: host (default), an\n"
      "                       alias (rpi4, aarch64, armv7, apple-m1, ...)\n"
      "                       or an LLVM triple; see --list-targets\n"
      "  --cpu=<name>         target CPU (e.g. cortex-a72, x86-64-v3)\n"
      "  --features=<list>    target features (e.g. +neon,-avx512f)\n"
      "  --backend=<b>        llvm (default when built with LLVM) or c\n"
      "  --list-targets       list the target aliases\n"
      "  --weights-sidecar-threshold=<bytes>\n"
      "                       weights above this size go to <out>.weights\n"
      "                       (default 67108864)\n"
      "  --no-header          do not write the .h file\n"
      "  --freeze-input NAME=FILE\n"
      "                       make input NAME a constant with the tensor in\n"
      "                       FILE (.npy or .pb), e.g. a shape given as input\n"
      "\n"
      "graph passes (see docs/passes.md):\n"
      "  --passes=<a,b,...>   run exactly these passes, in this order\n"
      "  --disable-pass=<p>   skip pass p (repeatable)\n"
      "  --list-passes        list the passes and their -O levels\n"
      "  --verify-each-pass   run the IR verifier after every pass\n"
      "                       (or DLCC_VERIFY_EACH_PASS=1)\n"
      "  --print-ir-after=<p> print the IR to stderr after pass p\n"
      "                       (repeatable)\n"
      "  --print-ir-after-all print the IR to stderr after every pass\n"
      "  --dump-dot=<dir>     write Graphviz drawings: <dir>/before.dot and\n"
      "                       <dir>/after-NN-<pass>.dot\n"
      "  --stats              print one JSON object of statistics on stdout\n"
      "  --stats-sym=NAME=N   value of symbol NAME for the byte figures of\n"
      "                       --stats (default: every symbol is 1)\n"
      "  --help               show this help\n"
      "  --version            show the version\n",
      f);
}

static int usage_error(const char *fmt, const char *arg) {
  fputs("dlcc: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n(run 'dlcc --help' for usage)\n", stderr);
  return 2;
}

static bool is_c_ident(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9'))
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return false;
  return true;
}

static void list_passes(void) {
  int n;
  const DlPass *t = dl_pass_table(&n);
  for (int i = 0; i < n; i++)
    printf("%-16s -O%d  %s\n", t[i].name, t[i].min_level, t[i].summary);
}

int main(int argc, char **argv) {
  DlCompileOptions o = {0};
  o.opt_level = 2;
  /* repeatable pass flags */
  enum { MAX_REPEAT = 64 };
  const char *disable[MAX_REPEAT], *print_after[MAX_REPEAT];
  const char *freeze_names[MAX_REPEAT], *freeze_files[MAX_REPEAT];
  static char freeze_buf[MAX_REPEAT][256];
  const char *ssym_names[MAX_REPEAT];
  int64_t ssym_values[MAX_REPEAT];
  static char ssym_buf[MAX_REPEAT][128];
  o.stats_sym_names = ssym_names;
  o.stats_sym_values = ssym_values;
  o.freeze_names = freeze_names;
  o.freeze_files = freeze_files;
  o.disable_passes = disable;
  o.print_ir_after = print_after;
  const char *vep = getenv("DLCC_VERIFY_EACH_PASS");
  if (vep && *vep && strcmp(vep, "0") != 0)
    o.verify_each_pass = true;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("dlcc %s\n", DLCC_VERSION);
      return 0;
    } else if (strcmp(a, "-o") == 0) {
      if (i + 1 >= argc)
        return usage_error("missing argument to '%s'", a);
      o.output = argv[++i];
    } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
      o.output = a + 2;
    } else if (strncmp(a, "--emit=", 7) == 0) {
      const char *k = a + 7;
      if (strcmp(k, "so") == 0)
        o.emit = DL_EMIT_SO;
      else if (strcmp(k, "c") == 0)
        o.emit = DL_EMIT_C;
      else if (strcmp(k, "ir") == 0)
        o.emit = DL_EMIT_IR;
      else if (strcmp(k, "kir") == 0)
        o.emit = DL_EMIT_KIR;
      else if (strcmp(k, "plan") == 0)
        o.emit = DL_EMIT_PLAN;
      else
        return usage_error("unknown --emit kind '%s' (so, c, ir, kir, plan)",
                           k);
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' &&
               !a[3]) {
      o.opt_level = a[2] - '0';
    } else if (strncmp(a, "--name=", 7) == 0) {
      if (!is_c_ident(a + 7))
        return usage_error("--name needs a C identifier, got '%s'", a + 7);
      o.prefix = a + 7;
    } else if (strncmp(a, "--target=", 9) == 0) {
      o.target = a + 9;
      if (!*o.target)
        return usage_error("missing argument to '%s'", a);
    } else if (strcmp(a, "--list-targets") == 0) {
      dl_target_list(stdout);
      return 0;
    } else if (strncmp(a, "--cpu=", 6) == 0) {
      o.cpu = a + 6;
    } else if (strncmp(a, "--features=", 11) == 0) {
      o.features = a + 11;
    } else if (strncmp(a, "--backend=", 10) == 0) {
      o.backend = a + 10;
      if (strcmp(o.backend, "c") != 0 && strcmp(o.backend, "llvm") != 0)
        return usage_error("unknown backend '%s' (c, llvm)", o.backend);
      if (strcmp(o.backend, "llvm") == 0 && !dl_backend_llvm())
        return usage_error("%s", "this dlcc was built without LLVM");
    } else if (strncmp(a, "--weights-sidecar-threshold=", 28) == 0) {
      const char *v = a + 28;
      char *end;
      errno = 0;
      unsigned long long n = strtoull(v, &end, 10);
      if (!*v || *end || errno || v[0] == '-')
        return usage_error("bad byte count in '%s'", a);
      o.sidecar_threshold = n ? (uint64_t)n : 1; /* 0 -> everything */
    } else if (strcmp(a, "--freeze-input") == 0 ||
               strncmp(a, "--freeze-input=", 15) == 0) {
      const char *v = a[14] == '=' ? a + 15 : (i + 1 < argc ? argv[++i] : "");
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || !eq[1])
        return usage_error("--freeze-input takes NAME=FILE, not '%s'", v);
      if (o.nfreeze == MAX_REPEAT)
        return usage_error("too many uses of '%s'", "--freeze-input");
      if ((size_t)(eq - v) >= sizeof freeze_buf[0])
        return usage_error("input name too long in '%s'", v);
      memcpy(freeze_buf[o.nfreeze], v, (size_t)(eq - v));
      freeze_buf[o.nfreeze][eq - v] = '\0';
      freeze_names[o.nfreeze] = freeze_buf[o.nfreeze];
      freeze_files[o.nfreeze++] = eq + 1;
    } else if (strcmp(a, "--no-header") == 0) {
      o.no_header = true;
    } else if (strncmp(a, "--passes=", 9) == 0) {
      o.passes = a + 9;
    } else if (strncmp(a, "--disable-pass=", 15) == 0) {
      if (o.ndisable_passes == MAX_REPEAT)
        return usage_error("too many '%s' flags", "--disable-pass");
      disable[o.ndisable_passes++] = a + 15;
    } else if (strcmp(a, "--list-passes") == 0) {
      list_passes();
      return 0;
    } else if (strcmp(a, "--verify-each-pass") == 0) {
      o.verify_each_pass = true;
    } else if (strncmp(a, "--print-ir-after=", 17) == 0) {
      if (o.nprint_ir_after == MAX_REPEAT)
        return usage_error("too many '%s' flags", "--print-ir-after");
      print_after[o.nprint_ir_after++] = a + 17;
    } else if (strcmp(a, "--print-ir-after-all") == 0) {
      o.print_ir_after_all = true;
    } else if (strncmp(a, "--dump-dot=", 11) == 0) {
      o.dump_dot = a + 11;
      if (!*o.dump_dot)
        return usage_error("missing argument to '%s'", a);
    } else if (strcmp(a, "--stats") == 0) {
      o.stats = true;
    } else if (strncmp(a, "--stats-sym=", 12) == 0) {
      const char *v = a + 12, *eq = strchr(v, '=');
      char *end;
      if (!eq || eq == v || (size_t)(eq - v) >= sizeof ssym_buf[0])
        return usage_error("--stats-sym takes NAME=N, not '%s'", v);
      errno = 0;
      long long n = strtoll(eq + 1, &end, 10);
      if (!eq[1] || *end || errno || n < 0)
        return usage_error("bad symbol value in '%s'", a);
      if (o.nstats_syms == MAX_REPEAT)
        return usage_error("too many uses of '%s'", "--stats-sym");
      memcpy(ssym_buf[o.nstats_syms], v, (size_t)(eq - v));
      ssym_buf[o.nstats_syms][eq - v] = '\0';
      ssym_names[o.nstats_syms] = ssym_buf[o.nstats_syms];
      ssym_values[o.nstats_syms++] = (int64_t)n;
    } else if (strcmp(a, "-") != 0 && a[0] == '-') {
      return usage_error("unknown option '%s'", a);
    } else {
      if (o.input)
        return usage_error("more than one input file ('%s')", a);
      o.input = a;
    }
  }
  if (!o.input)
    return usage_error("%s", "no input file");

  DlCtx ctx;
  dl_ctx_init(&ctx, o.input);
  DlStatus st = dlcc_compile(&ctx, &o);
  if (st != DL_OK) {
    if (ctx.ndiags == 0)
      fprintf(stderr, "dlcc: error: %s: compilation failed (%s)\n", o.input,
              dl_status_name(st));
    dl_print_diags(&ctx, stderr);
  }
  dl_ctx_free(&ctx);
  /* 3 tells scripts "valid model, not supported yet" apart from errors. */
  if (st == DL_OK)
    return 0;
  return st == DL_ERR_USAGE ? 2 : st == DL_ERR_UNSUPPORTED ? 3 : 1;
}
