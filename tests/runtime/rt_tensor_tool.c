/*
 * rt_tensor_tool - a test driver for the runtime's tensor file readers and
 * writers.
 *
 *   rt_tensor_tool read FILE          prints "dtype [shape] name" or fails
 *   rt_tensor_tool convert IN OUT     reads IN, writes OUT (.npy or .pb)
 *
 * Exit status 0 on success, 1 with "rt_tensor_tool: <message>" on error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlcc/dlcc_runtime.h"

static int is_npy(const char *p) {
  size_t n = strlen(p);
  return n >= 4 && strcmp(p + n - 4, ".npy") == 0;
}

int main(int argc, char **argv) {
  dlcc_rt_tensor t;
  char err[1024];
  char *name = NULL;
  int st;
  if (argc < 3 || (strcmp(argv[1], "read") && strcmp(argv[1], "convert")) ||
      (strcmp(argv[1], "convert") == 0 && argc != 4)) {
    fprintf(stderr, "usage: rt_tensor_tool read FILE | convert IN OUT\n");
    return 2;
  }
  if (is_npy(argv[2]))
    st = dlcc_rt_npy_read(argv[2], &t, err, sizeof err);
  else
    st = dlcc_rt_pb_read(argv[2], &t, &name, err, sizeof err);
  if (st) {
    fprintf(stderr, "rt_tensor_tool: %s\n", err);
    return 1;
  }
  if (strcmp(argv[1], "read") == 0) {
    printf("%s [", dlcc_rt_dtype_name(t.dtype));
    for (int32_t k = 0; k < t.ndim; k++)
      printf("%s%lld", k ? "," : "", (long long)t.shape[k]);
    printf("] %s\n", name ? name : "");
  } else {
    st = is_npy(argv[3]) ? dlcc_rt_npy_write(argv[3], &t, err, sizeof err)
                         : dlcc_rt_pb_write(argv[3], &t, name ? name : "t", err,
                                            sizeof err);
    if (st)
      fprintf(stderr, "rt_tensor_tool: %s\n", err);
  }
  free(name);
  dlcc_rt_tensor_free(&t);
  return st ? 1 : 0;
}
