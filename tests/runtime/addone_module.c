/*
 * addone_module.c - a hand-written module implementing the dlcc module ABI,
 * used to test the runtime library and dlcc-run without the compiler.
 *
 *   inputs:  x float32[N,4]
 *   outputs: y float32[N,4] = x * w + 1   (w = 1 unless weights are given)
 *            n int64[]      = N
 *
 * Built with -DADDONE_SIDECAR it keeps w (4 floats) in a sidecar weights
 * file; with -DADDONE_BAD_ABI it reports a wrong ABI version.
 */
#include <string.h>

#include "dlcc/dlcc_module.h"

static const char *const sym_names[] = {"N"};
static const dlcc_io_desc inputs[] = {
    {"x", DLCC_FLOAT32, 2, {-1, 4}},
};
static const dlcc_io_desc outputs[] = {
    {"y", DLCC_FLOAT32, 2, {-1, 4}},
    {"n", DLCC_INT64, 0, {0}},
};

static int32_t bind(const dlcc_tensor *in, int64_t *syms) {
  if (!in || !syms)
    return DLCC_ERR_ARGUMENT;
  if (in[0].dtype != DLCC_FLOAT32)
    return DLCC_ERR_DTYPE;
  if (in[0].ndim != 2 || in[0].shape[1] != 4 || in[0].shape[0] < 0)
    return DLCC_ERR_SHAPE;
  syms[0] = in[0].shape[0];
  return DLCC_OK;
}

static uint64_t workspace_size(const int64_t *syms) {
  return (uint64_t)syms[0] * 4 * sizeof(float);
}

static int32_t output_shape(int32_t i, const int64_t *syms, int64_t *dims) {
  if (i == 0) {
    dims[0] = syms[0];
    dims[1] = 4;
    return DLCC_OK;
  }
  return i == 1 ? DLCC_OK : DLCC_ERR_ARGUMENT;
}

static int32_t run(const dlcc_tensor *in, dlcc_tensor *out, void *ws,
                   uint64_t ws_bytes, const void *weights) {
  int64_t n;
  const float *x;
  float *t = ws, *y;
  float w[4] = {1, 1, 1, 1};
  int64_t syms[1];
  int32_t st = bind(in, syms);
  if (st)
    return st;
  n = syms[0];
  if (!ws || ws_bytes < workspace_size(syms))
    return DLCC_ERR_WORKSPACE;
#ifdef ADDONE_SIDECAR
  if (!weights)
    return DLCC_ERR_WEIGHTS;
  memcpy(w, weights, sizeof w);
#else
  (void)weights;
#endif
  x = in[0].data;
  y = out[0].data;
  /* Goes through the workspace so a wrong workspace shows up. */
  for (int64_t i = 0; i < n * 4; i++)
    t[i] = x[i] * w[i % 4];
  for (int64_t i = 0; i < n * 4; i++)
    y[i] = t[i] + 1.0f;
  *(int64_t *)out[1].data = n;
  return DLCC_OK;
}

static const dlcc_module_desc desc = {
#ifdef ADDONE_BAD_ABI
    DLCC_ABI_VERSION + 1,
#else
    DLCC_ABI_VERSION,
#endif
    "addone",
    1,
    2,
    1,
    inputs,
    outputs,
    sym_names,
#ifdef ADDONE_SIDECAR
    4 * sizeof(float),
#else
    0,
#endif
    bind,
    workspace_size,
    output_shape,
    run};

__attribute__((visibility("default"))) const dlcc_module_desc *
dlcc_module_v1(void) {
  return &desc;
}
