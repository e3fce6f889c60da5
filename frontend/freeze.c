/*
 * freeze.c - turning graph inputs into constants (dlcc --freeze-input).
 *
 * Some models take a shape, a set of axes or padding amounts as an ordinary
 * graph input.  A static compiler cannot plan storage for a tensor whose
 * rank or extents depend on values it never sees, so the user may fix such
 * an input at compile time: the tensor file's contents become a constant,
 * and the input disappears from the module's signature.
 */
#include "frontend/onnx_import.h"

#include <dlcc/dlcc_runtime.h>
#include <string.h>

DlStatus dl_freeze_input(DlGraph *g, const char *name, const char *path) {
  DlCtx *ctx = g->ctx;
  int pos = -1;
  for (int i = 0; i < g->ninputs; i++)
    if (strcmp(g->values[g->inputs[i]]->name, name) == 0)
      pos = i;
  if (pos < 0)
    return dl_error(ctx, DL_ERR_USAGE,
                    "--freeze-input: the model has no input named '%s'", name);
  DlValue *v = g->values[g->inputs[pos]];

  dlcc_rt_tensor t;
  char err[256];
  memset(&t, 0, sizeof t);
  if (dlcc_rt_tensor_read(path, &t, err, sizeof err) != 0)
    return dl_error(ctx, DL_ERR_IO, "--freeze-input %s: %s", name, err);
  DlStatus st = DL_OK;
  if ((DlDType)t.dtype != v->dtype) {
    st = dl_error(ctx, DL_ERR_INVALID,
                  "--freeze-input %s: %s holds %s, the input is %s", name, path,
                  dl_dtype_name((DlDType)t.dtype), dl_dtype_name(v->dtype));
    goto done;
  }
  if (t.ndim != v->rank) {
    st = dl_error(ctx, DL_ERR_INVALID,
                  "--freeze-input %s: %s has rank %d, the input has rank %d",
                  name, path, (int)t.ndim, v->rank);
    goto done;
  }
  DlDim dims[DL_MAX_RANK];
  for (int i = 0; i < v->rank; i++) {
    int64_t c;
    if (dl_dim_is_const(&v->dims[i], &c) && c != t.shape[i]) {
      st = dl_error(ctx, DL_ERR_INVALID,
                    "--freeze-input %s: %s has extent %lld in dim %d, the "
                    "input has %lld",
                    name, path, (long long)t.shape[i], i, (long long)c);
      goto done;
    }
    dims[i] = dl_dim_const(t.shape[i]);
  }
  void *data = dl_arena_alloc(&ctx->arena, t.nbytes ? t.nbytes : 1);
  if (!data) {
    st = dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    goto done;
  }
  memcpy(data, t.data, t.nbytes);
  dl_value_set_shape(v, v->rank, dims);
  v->data = data;
  v->is_input = false;
  memmove(&g->inputs[pos], &g->inputs[pos + 1],
          sizeof(int) * (size_t)(g->ninputs - pos - 1));
  g->ninputs--;
done:
  dlcc_rt_tensor_free(&t);
  return st;
}
