/*
 * load_runtime - loads any dlcc module by path through the runtime library
 * and prints its signature; given tensor files (.npy or .pb, one per input
 * in order) it also runs the module and prints the outputs.
 *
 *   cc -Iinclude examples/load_runtime/main.c -Lbuild/lib -ldlcc_runtime
 *   ./a.out digits.so examples/digits/images/digit_3_label_2.npy
 */
#include <stdio.h>
#include <stdlib.h>

#include "dlcc/dlcc_runtime.h"

static void print_values(const dlcc_rt_tensor *t) {
  uint64_t n = dlcc_rt_tensor_numel(t), show = n < 64 ? n : 64;
  for (uint64_t i = 0; i < show; i++) {
    switch (t->dtype) {
    case DLCC_FLOAT32:
      printf(" %.9g", (double)((const float *)t->data)[i]);
      break;
    case DLCC_FLOAT64:
      printf(" %.17g", ((const double *)t->data)[i]);
      break;
    case DLCC_INT64:
      printf(" %lld", (long long)((const int64_t *)t->data)[i]);
      break;
    case DLCC_INT32:
      printf(" %ld", (long)((const int32_t *)t->data)[i]);
      break;
    case DLCC_BOOL:
    case DLCC_UINT8:
      printf(" %u", (unsigned)((const uint8_t *)t->data)[i]);
      break;
    default:
      printf(" ?");
    }
  }
  if (n > show)
    printf(" ... (%llu values)", (unsigned long long)n);
  printf("\n");
}

int main(int argc, char **argv) {
  char err[1024], sig[256];
  dlcc_rt_module *mod;
  dlcc_rt_session *s;
  const dlcc_module_desc *d;
  dlcc_rt_tensor *in, *out;
  dlcc_tensor *views;
  int rc = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s MODULE.so [INPUT_FILE...]\n", argv[0]);
    return 2;
  }
  if (dlcc_rt_load(argv[1], &mod, err, sizeof err) != DLCC_OK) {
    fprintf(stderr, "%s: %s\n", argv[0], err);
    return 1;
  }
  d = dlcc_rt_desc(mod);
  printf("module %s: %d inputs, %d outputs, %s weights\n", d->name,
         (int)d->num_inputs, (int)d->num_outputs,
         d->sidecar_weights_bytes ? "sidecar" : "embedded");
  for (int32_t i = 0; i < d->num_inputs; i++) {
    dlcc_rt_format_io(mod, 0, i, sig, sizeof sig);
    printf("  input  %d: %s %s\n", (int)i, d->inputs[i].name, sig);
  }
  for (int32_t i = 0; i < d->num_outputs; i++) {
    dlcc_rt_format_io(mod, 1, i, sig, sizeof sig);
    printf("  output %d: %s %s\n", (int)i, d->outputs[i].name, sig);
  }
  if (argc == 2) {
    dlcc_rt_unload(mod);
    return 0;
  }
  if (argc - 2 != d->num_inputs) {
    fprintf(stderr, "%s: %d input files given, the module takes %d\n", argv[0],
            argc - 2, (int)d->num_inputs);
    dlcc_rt_unload(mod);
    return 1;
  }

  in = calloc((size_t)d->num_inputs + 1, sizeof *in);
  views = calloc((size_t)d->num_inputs + 1, sizeof *views);
  out = calloc((size_t)d->num_outputs + 1, sizeof *out);
  s = dlcc_rt_session_new(mod);
  if (!in || !views || !out || !s) {
    fprintf(stderr, "%s: out of memory\n", argv[0]);
    rc = 1;
    goto done;
  }
  for (int32_t i = 0; i < d->num_inputs; i++) {
    if (dlcc_rt_tensor_read(argv[2 + i], &in[i], err, sizeof err)) {
      fprintf(stderr, "%s: %s\n", argv[0], err);
      rc = 1;
      goto done;
    }
    views[i] = dlcc_rt_tensor_view(&in[i]);
  }
  /* Outputs with data NULL are allocated by the runtime. */
  if (dlcc_rt_run(s, views, d->num_inputs, out, d->num_outputs)) {
    fprintf(stderr, "%s: %s\n", argv[0], dlcc_rt_session_error(s));
    rc = 1;
    goto done;
  }
  for (int32_t i = 0; i < d->num_outputs; i++) {
    printf("%s %s[", d->outputs[i].name, dlcc_rt_dtype_name(out[i].dtype));
    for (int32_t k = 0; k < out[i].ndim; k++)
      printf("%s%lld", k ? "," : "", (long long)out[i].shape[k]);
    printf("]:");
    print_values(&out[i]);
  }

done:
  if (in)
    for (int32_t i = 0; i < d->num_inputs; i++)
      dlcc_rt_tensor_free(&in[i]);
  if (out)
    for (int32_t i = 0; i < d->num_outputs; i++)
      dlcc_rt_tensor_free(&out[i]);
  free(in);
  free(out);
  free(views);
  dlcc_rt_session_free(s);
  dlcc_rt_unload(mod);
  return rc;
}
