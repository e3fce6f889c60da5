/*
 * fold_check.c - runs a model's whole graph through constant folding.
 *
 *   test_kir_fold MODEL.onnx OUTDIR
 *
 * Every graph input must already be an initializer (run_fold_check.py
 * rewrites the ONNX node cases that way), so inference folds every node
 * through the kernel interpreter.  Writes each graph output's raw data to
 * OUTDIR/out_<i>.bin and prints "<i> <dtype> <rank> <dims...>" per output.
 * Exit status: 0 folded, 2 compile error (message on stderr), 3 an output
 * was not folded, 1 usage or I/O.
 */
#include "frontend/onnx_import.h"
#include "ops/ops.h"

#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.onnx OUTDIR\n", argv[0]);
    return 1;
  }
  DlCtx ctx;
  dl_ctx_init(&ctx, argv[1]);
  DlGraph *g = NULL;
  DlStatus s = dl_import_onnx(&ctx, argv[1], &g);
  if (s == DL_OK)
    s = dl_infer_graph(g);
  int rc = 0;
  if (s != DL_OK) {
    dl_print_diags(&ctx, stderr);
    rc = 2;
  }
  for (int i = 0; rc == 0 && i < g->noutputs; i++) {
    DlValue *v = g->values[g->outputs[i]];
    int64_t n = dl_value_numel_const(v);
    if (!v->data || n < 0) {
      fprintf(stderr, "output %d ('%s') was not folded\n", i, v->name);
      rc = 3;
      break;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/out_%d.bin", argv[2], i);
    FILE *f = fopen(path, "wb");
    size_t esz = dl_dtype_size(v->dtype);
    if (!f || fwrite(v->data, esz, (size_t)n, f) != (size_t)n) {
      fprintf(stderr, "cannot write %s\n", path);
      rc = 1;
    }
    if (f)
      fclose(f);
    printf("%d %s %d", i, dl_dtype_name(v->dtype), v->rank);
    for (int d = 0; d < v->rank; d++)
      printf(" %lld", (long long)dl_dim_eval(&v->dims[d], NULL));
    printf("\n");
  }
  dl_ctx_free(&ctx);
  return rc;
}
