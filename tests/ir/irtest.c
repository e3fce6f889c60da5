/*
 * irtest - golden tests for the textual IR.
 *
 *   irtest FILE...           run each test; exit 1 on any mismatch
 *   irtest --update FILE...  rewrite each file's expected section
 *
 * A test file looks like:
 *
 *   // RUN: roundtrip        (or: // RUN: infer)
 *   graph "main" opset 17 { ... }
 *   // EXPECT:
 *   graph "main" opset 17 { ... }
 *
 * roundtrip: parse, verify, print; the printed text must also parse back
 * and print identically.  infer: parse, verify, dl_infer_graph, verify with
 * types, print.  passes=a,b,...: like infer, then the named graph passes
 * in that order (passes/pass.h) with the verifier after each, then print
 * (tests/passes/).  An optional "O3" word after the mode sets -O3 (for
 * rules that only fire there): "// RUN: passes=simplify O3".  When a step
 * fails the output is the diagnostics instead
 * ("dlcc: error: ..." lines), so expected failures are tests too.
 */
#include "ir/ir.h"
#include "passes/pass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (len + 1 >= cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    if (n == 0)
      break;
    len += n;
  }
  fclose(f);
  if (buf)
    buf[len] = 0;
  return buf;
}

/* Output text: the printed graph, or the diagnostics. */
static char *diags_text(DlCtx *ctx) {
  char *s = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&s, &n);
  if (!m)
    return NULL;
  dl_print_diags(ctx, m);
  fclose(m);
  return s;
}

static char *run_test(const char *base, const char *mode, int level,
                      const char *input, bool *unstable) {
  DlCtx ctx;
  dl_ctx_init(&ctx, base);
  bool passes = strncmp(mode, "passes=", 7) == 0;
  ctx.opt.opt_level = level;
  ctx.opt.verify_each_pass = true;
  DlGraph *g = NULL;
  char *result = NULL;
  *unstable = false;
  DlStatus st = dl_ir_parse(&ctx, input, &g);
  if (st == DL_OK)
    st = dl_verify(g, false);
  if (st == DL_OK && (strcmp(mode, "infer") == 0 || passes)) {
    st = dl_infer_graph(g);
    if (st == DL_OK)
      st = dl_verify(g, true);
  }
  if (st == DL_OK && passes) {
    DlPassOptions po = {0};
    po.level = level;
    po.passes = mode + 7;
    st = dl_run_passes(g, &po, NULL, NULL);
  }
  if (st == DL_OK) {
    char *text = dl_ir_to_string(g);
    if (text) {
      result = strdup(text);
      /* the printed form must read back and print the same */
      DlGraph *g2 = NULL;
      if (dl_ir_parse(&ctx, text, &g2) != DL_OK) {
        *unstable = true;
        fprintf(stderr, "%s: printed IR does not parse back:\n", base);
        dl_print_diags(&ctx, stderr);
      } else {
        char *text2 = dl_ir_to_string(g2);
        if (!text2 || strcmp(text, text2) != 0) {
          *unstable = true;
          fprintf(stderr, "%s: printed IR is not stable; second print:\n%s",
                  base, text2 ? text2 : "(null)\n");
        }
      }
    }
  }
  if (!result)
    result = diags_text(&ctx);
  dl_ctx_free(&ctx);
  return result;
}

/* Splits text into lines (in place); returns the count. */
static int split_lines(char *s, char ***out) {
  int n = 0, cap = 16;
  char **v = malloc(sizeof(char *) * (size_t)cap);
  while (v && *s) {
    if (n == cap) {
      char **nv = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
      if (!nv)
        break;
      v = nv;
    }
    v[n++] = s;
    char *nl = strchr(s, '\n');
    if (!nl)
      break;
    *nl = 0;
    s = nl + 1;
  }
  *out = v;
  return v ? n : 0;
}

/* Prints a line diff (longest common subsequence) of expected vs actual. */
static void print_diff(const char *path, const char *exp, const char *act) {
  char *e = strdup(exp), *a = strdup(act);
  char **el = NULL, **al = NULL;
  int ne = split_lines(e, &el), na = split_lines(a, &al);
  printf("--- %s (expected)\n+++ %s (actual)\n", path, path);
  int *L = NULL;
  if ((size_t)(ne + 1) * (size_t)(na + 1) < (1u << 24))
    L = calloc((size_t)(ne + 1) * (size_t)(na + 1), sizeof(int));
  if (!L) {
    for (int i = 0; i < ne; i++)
      printf("-%s\n", el[i]);
    for (int i = 0; i < na; i++)
      printf("+%s\n", al[i]);
  } else {
#define LCS(i, j) L[(size_t)(i) * (size_t)(na + 1) + (size_t)(j)]
    for (int i = ne - 1; i >= 0; i--)
      for (int j = na - 1; j >= 0; j--)
        LCS(i, j) = strcmp(el[i], al[j]) == 0
                        ? LCS(i + 1, j + 1) + 1
                        : (LCS(i + 1, j) > LCS(i, j + 1) ? LCS(i + 1, j)
                                                         : LCS(i, j + 1));
    int i = 0, j = 0;
    while (i < ne || j < na) {
      if (i < ne && j < na && strcmp(el[i], al[j]) == 0) {
        printf(" %s\n", el[i]);
        i++, j++;
      } else if (i < ne && (j == na || LCS(i + 1, j) >= LCS(i, j + 1))) {
        printf("-%s\n", el[i++]);
      } else {
        printf("+%s\n", al[j++]);
      }
    }
#undef LCS
    free(L);
  }
  free(el);
  free(al);
  free(e);
  free(a);
}

static const char *EXPECT_MARK = "// EXPECT:";

static int do_file(const char *path, bool update) {
  char *text = read_file(path);
  if (!text) {
    fprintf(stderr, "irtest: cannot read %s\n", path);
    return 1;
  }
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char mode[256] = "", level[8] = "";
  int nf = sscanf(text, "// RUN: %255s %7[O0-3]", mode, level);
  if (nf < 1 || (strcmp(mode, "roundtrip") != 0 && strcmp(mode, "infer") != 0 &&
                 strncmp(mode, "passes=", 7) != 0)) {
    fprintf(stderr,
            "irtest: %s: first line must be '// RUN: roundtrip', "
            "'// RUN: infer' or '// RUN: passes=a,b'\n",
            path);
    free(text);
    return 1;
  }
  /* the marker must start a line */
  char *mark = NULL;
  for (char *s = strstr(text, EXPECT_MARK); s; s = strstr(s + 1, EXPECT_MARK))
    if (s == text || s[-1] == '\n') {
      mark = s;
      break;
    }
  const char *expected = "";
  if (mark) {
    char *nl = strchr(mark, '\n');
    expected = nl ? nl + 1 : mark + strlen(mark);
    *mark = 0; /* input ends here */
  }
  bool unstable = false;
  int lvl = nf == 2 && level[0] == 'O' ? level[1] - '0' : 2;
  char *actual = run_test(base, mode, lvl, text, &unstable);
  if (!actual) {
    fprintf(stderr, "irtest: %s: out of memory\n", path);
    free(text);
    return 1;
  }
  int rc = 0;
  if (update) {
    FILE *f = fopen(path, "wb");
    if (!f) {
      fprintf(stderr, "irtest: cannot write %s\n", path);
      rc = 1;
    } else {
      fputs(text, f);
      if (text[0] && text[strlen(text) - 1] != '\n')
        fputc('\n', f);
      fprintf(f, "%s\n%s", EXPECT_MARK, actual);
      if (fclose(f) != 0)
        rc = 1;
    }
  } else if (strcmp(expected, actual) != 0) {
    printf("FAIL %s\n", path);
    print_diff(base, expected, actual);
    rc = 1;
  } else if (unstable) {
    printf("FAIL %s (print/parse not stable)\n", path);
    rc = 1;
  } else {
    printf("ok   %s\n", path);
  }
  free(actual);
  free(text);
  return rc;
}

int main(int argc, char **argv) {
  bool update = false;
  int rc = 0, nfiles = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--update") == 0) {
      update = true;
      continue;
    }
    nfiles++;
    rc |= do_file(argv[i], update);
  }
  if (nfiles == 0) {
    fprintf(stderr, "usage: irtest [--update] FILE...\n");
    return 2;
  }
  return rc;
}
