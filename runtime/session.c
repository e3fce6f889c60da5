/*
 * session.c - running a loaded module: input checks with named messages,
 * symbol binding, the reusable workspace and output allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "rt_module.h"

struct dlcc_rt_session {
  dlcc_rt_module *mod;
  int64_t *syms;     /* num_syms entries, at least one */
  int32_t *sym_from; /* which input bound each symbol (checks only) */
  dlcc_tensor *outs; /* views handed to run() */
  void *ws;
  uint64_t ws_bytes;
  char err[512];
};

dlcc_rt_session *dlcc_rt_session_new(dlcc_rt_module *mod) {
  dlcc_rt_session *s;
  size_t nsyms, nouts;
  if (!mod)
    return NULL;
  nsyms = mod->desc->num_syms > 0 ? (size_t)mod->desc->num_syms : 1;
  nouts = mod->desc->num_outputs > 0 ? (size_t)mod->desc->num_outputs : 1;
  s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->mod = mod;
  s->syms = calloc(nsyms, sizeof *s->syms);
  s->sym_from = calloc(nsyms, sizeof *s->sym_from);
  s->outs = calloc(nouts, sizeof *s->outs);
  if (!s->syms || !s->sym_from || !s->outs) {
    dlcc_rt_session_free(s);
    return NULL;
  }
  return s;
}

void dlcc_rt_session_free(dlcc_rt_session *s) {
  if (!s)
    return;
  free(s->syms);
  free(s->sym_from);
  free(s->outs);
  free(s->ws);
  free(s);
}

const char *dlcc_rt_session_error(const dlcc_rt_session *s) {
  return s ? s->err : "no session";
}

const int64_t *dlcc_rt_session_syms(const dlcc_rt_session *s) {
  return s ? s->syms : NULL;
}

uint64_t dlcc_rt_session_workspace_bytes(const dlcc_rt_session *s) {
  return s ? s->ws_bytes : 0;
}

#define SERR(s, st, ...)                                                       \
  dlcc_rt__err((s)->err, sizeof(s)->err, (st), __VA_ARGS__)

/* Checks inputs against the signature, giving messages that name the input
 * and the dim; the module's bind() still has the last word. */
static int check_inputs(dlcc_rt_session *s, const dlcc_tensor *inputs,
                        int32_t num_inputs) {
  const dlcc_module_desc *d = s->mod->desc;
  char sig[256], got[256];
  if (num_inputs != d->num_inputs)
    return SERR(s, DLCC_ERR_ARGUMENT, "%d inputs given, the module takes %d",
                (int)num_inputs, (int)d->num_inputs);
  if (num_inputs > 0 && !inputs)
    return SERR(s, DLCC_ERR_ARGUMENT, "inputs is NULL");
  for (int32_t j = 0; j < d->num_syms; j++) {
    s->syms[j] = -1;
    s->sym_from[j] = -1;
  }
  for (int32_t i = 0; i < num_inputs; i++) {
    const dlcc_io_desc *io = &d->inputs[i];
    const dlcc_tensor *t = &inputs[i];
    uint64_t numel, bytes;
    dlcc_rt_format_io(s->mod, 0, i, sig, sizeof sig);
    if (t->dtype != io->dtype)
      return SERR(s, DLCC_ERR_DTYPE,
                  "input '%s': dtype %s, the module expects %s", io->name,
                  dlcc_rt_dtype_name(t->dtype), sig);
    if (t->ndim < 0 || t->ndim > DLCC_MAX_RANK || (t->ndim > 0 && !t->shape))
      return SERR(s, DLCC_ERR_ARGUMENT, "input '%s': bad rank %d or no shape",
                  io->name, (int)t->ndim);
    dlcc_rt__format_shape(t->shape, t->ndim, got, sizeof got);
    if (t->ndim != io->ndim)
      return SERR(s, DLCC_ERR_SHAPE,
                  "input '%s': shape %s has rank %d, the module expects %s",
                  io->name, got, (int)t->ndim, sig);
    for (int32_t k = 0; k < t->ndim; k++) {
      int64_t v = t->shape[k];
      if (v < 0)
        return SERR(s, DLCC_ERR_SHAPE, "input '%s': negative dim in %s",
                    io->name, got);
      if (io->dims[k] >= 0) {
        if (v != io->dims[k])
          return SERR(s, DLCC_ERR_SHAPE,
                      "input '%s': shape %s, the module expects %s (dim %d "
                      "must be %lld)",
                      io->name, got, sig, (int)k, (long long)io->dims[k]);
      } else {
        int32_t sym = (int32_t)(-(io->dims[k] + 1));
        if (s->syms[sym] < 0) {
          s->syms[sym] = v;
          s->sym_from[sym] = i;
        } else if (s->syms[sym] != v) {
          return SERR(s, DLCC_ERR_SHAPE,
                      "input '%s': dim %d is %lld but symbol %s is %lld "
                      "(from input '%s')",
                      io->name, (int)k, (long long)v, d->sym_names[sym],
                      (long long)s->syms[sym],
                      d->inputs[s->sym_from[sym]].name);
        }
      }
    }
    if (!dlcc_rt__shape_bytes(t->shape, t->ndim, dlcc_rt_dtype_size(t->dtype),
                              &numel, &bytes))
      return SERR(s, DLCC_ERR_SHAPE, "input '%s': shape %s is too large",
                  io->name, got);
    if (numel > 0 && !t->data)
      return SERR(s, DLCC_ERR_ARGUMENT, "input '%s': data is NULL", io->name);
  }
  return DLCC_OK;
}

/* Checks and binds the inputs, then computes the output shapes. */
static int bind_and_shape(dlcc_rt_session *s, const dlcc_tensor *inputs,
                          int32_t num_inputs, dlcc_rt_tensor *outputs,
                          int32_t num_outputs) {
  const dlcc_module_desc *d = s->mod->desc;
  int st;
  s->err[0] = 0;
  if (num_outputs != d->num_outputs)
    return SERR(s, DLCC_ERR_ARGUMENT, "%d outputs given, the module has %d",
                (int)num_outputs, (int)d->num_outputs);
  if (num_outputs > 0 && !outputs)
    return SERR(s, DLCC_ERR_ARGUMENT, "outputs is NULL");
  st = check_inputs(s, inputs, num_inputs);
  if (st)
    return st;
  st = d->bind(inputs, s->syms);
  if (st)
    return SERR(s, st, "module %s rejected the inputs: %s", d->name,
                dlcc_rt_strerror(st));
  for (int32_t i = 0; i < num_outputs; i++) {
    const dlcc_io_desc *io = &d->outputs[i];
    dlcc_rt_tensor *o = &outputs[i];
    int64_t dims[DLCC_MAX_RANK];
    uint64_t numel, bytes;
    char got[256];
    memset(dims, 0, sizeof dims);
    st = d->output_shape(i, s->syms, dims);
    if (st)
      return SERR(s, st, "output '%s': no shape for these inputs: %s", io->name,
                  dlcc_rt_strerror(st));
    dlcc_rt__format_shape(dims, io->ndim, got, sizeof got);
    if (!dlcc_rt__shape_bytes(dims, io->ndim, dlcc_rt_dtype_size(io->dtype),
                              &numel, &bytes))
      return SERR(s, DLCC_ERR_SHAPE, "output '%s': bad shape %s", io->name,
                  got);
    memcpy(o->shape, dims, sizeof dims);
    o->ndim = io->ndim;
    o->dtype = io->dtype;
    o->nbytes = bytes;
  }
  return DLCC_OK;
}

int dlcc_rt_prepare(dlcc_rt_session *s, const dlcc_tensor *inputs,
                    int32_t num_inputs, dlcc_rt_tensor *outputs,
                    int32_t num_outputs) {
  if (!s)
    return DLCC_ERR_ARGUMENT;
  return bind_and_shape(s, inputs, num_inputs, outputs, num_outputs);
}

int dlcc_rt_run(dlcc_rt_session *s, const dlcc_tensor *inputs,
                int32_t num_inputs, dlcc_rt_tensor *outputs,
                int32_t num_outputs) {
  const dlcc_module_desc *d;
  uint64_t ws;
  int st;
  if (!s)
    return DLCC_ERR_ARGUMENT;
  d = s->mod->desc;
  st = bind_and_shape(s, inputs, num_inputs, outputs, num_outputs);
  if (st)
    return st;
  /* The workspace grows to the largest size seen and is then reused. */
  ws = d->workspace_size(s->syms);
  if (ws > s->ws_bytes || !s->ws) {
    void *p = dlcc_rt__alloc(ws);
    if (!p)
      return SERR(s, DLCC_RT_ERR_NOMEM,
                  "cannot allocate a workspace of %llu bytes",
                  (unsigned long long)ws);
    free(s->ws);
    s->ws = p;
    s->ws_bytes = ws;
  }
  for (int32_t i = 0; i < num_outputs; i++) {
    dlcc_rt_tensor *o = &outputs[i];
    if (o->data && o->capacity < o->nbytes && o->owned) {
      free(o->data);
      o->data = NULL;
      o->owned = 0;
      o->capacity = 0;
    }
    if (!o->data) {
      o->data = dlcc_rt__alloc(o->nbytes);
      if (!o->data)
        return SERR(s, DLCC_RT_ERR_NOMEM,
                    "output '%s': cannot allocate %llu bytes",
                    d->outputs[i].name, (unsigned long long)o->nbytes);
      o->owned = 1;
      o->capacity = o->nbytes;
    } else if (o->capacity < o->nbytes) {
      return SERR(s, DLCC_ERR_ARGUMENT,
                  "output '%s': buffer holds %llu bytes, %llu needed",
                  d->outputs[i].name, (unsigned long long)o->capacity,
                  (unsigned long long)o->nbytes);
    }
    s->outs[i] = dlcc_rt_tensor_view(o);
  }
  st = d->run(inputs, s->outs, s->ws, s->ws_bytes,
              d->sidecar_weights_bytes ? s->mod->weights : NULL);
  if (st)
    return SERR(s, st, "module %s failed: %s (status %d)", d->name,
                dlcc_rt_strerror(st), (int)st);
  return DLCC_OK;
}
