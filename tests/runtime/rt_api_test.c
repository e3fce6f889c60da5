/*
 * rt_api_test - tests of the runtime library's module and session API
 * against the hand-written addone module (tests/runtime/addone_module.c).
 *
 *   rt_api_test ADDONE.so SIDECAR.so BADABI.so WORKDIR
 *
 * Checks outputs, output allocation and reuse, caller buffers, every
 * rejected-input path, sidecar weights (missing, wrong size, right) and
 * many threads sharing one module with a session each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlcc/dlcc_runtime.h"

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* Runs addone on an [n,4] input x[i] = i * scale, checks y. */
static int run_check(dlcc_rt_session *s, int64_t n, float scale, const float *w,
                     dlcc_rt_tensor out[2]) {
  int64_t shape[2] = {n, 4};
  float *x = malloc((size_t)(n * 4 + 1) * sizeof *x);
  dlcc_tensor in = {x, shape, 2, DLCC_FLOAT32};
  int st, ok = 1;
  for (int64_t i = 0; i < n * 4; i++)
    x[i] = (float)i * scale;
  st = dlcc_rt_run(s, &in, 1, out, 2);
  if (st) {
    fprintf(stderr, "run failed: %s\n", dlcc_rt_session_error(s));
    free(x);
    return 0;
  }
  ok = out[0].ndim == 2 && out[0].shape[0] == n && out[0].shape[1] == 4 &&
       out[0].dtype == DLCC_FLOAT32 && out[0].nbytes == (uint64_t)n * 16 &&
       out[1].ndim == 0 && out[1].dtype == DLCC_INT64 &&
       *(int64_t *)out[1].data == n;
  for (int64_t i = 0; ok && i < n * 4; i++)
    ok = ((float *)out[0].data)[i] == x[i] * (w ? w[i % 4] : 1.0f) + 1.0f;
  free(x);
  return ok;
}

typedef struct {
  dlcc_rt_module *mod;
  int id, ok;
} Worker;

static void *worker(void *arg) {
  Worker *wk = arg;
  dlcc_rt_session *s = dlcc_rt_session_new(wk->mod);
  dlcc_rt_tensor out[2];
  memset(out, 0, sizeof out);
  wk->ok = s != NULL;
  for (int r = 0; r < 300 && wk->ok; r++)
    wk->ok = run_check(s, 1 + (wk->id * 7 + r) % 23, (float)wk->id, NULL, out);
  dlcc_rt_tensor_free(&out[0]);
  dlcc_rt_tensor_free(&out[1]);
  dlcc_rt_session_free(s);
  return NULL;
}

static void test_basic(const char *path) {
  char err[512];
  dlcc_rt_module *m;
  dlcc_rt_session *s;
  dlcc_rt_tensor out[2];
  const dlcc_module_desc *d;
  char sig[64];
  void *first;

  CHECK(dlcc_rt_load(path, &m, err, sizeof err) == DLCC_OK);
  if (!m) {
    fprintf(stderr, "%s\n", err);
    failures++;
    return;
  }
  d = dlcc_rt_desc(m);
  CHECK(d->num_inputs == 1 && d->num_outputs == 2 && d->num_syms == 1);
  CHECK(dlcc_rt_weights(m) == NULL);
  CHECK(dlcc_rt_find_input(m, "x") == 0 && dlcc_rt_find_input(m, "y") == -1);
  CHECK(dlcc_rt_find_output(m, "n") == 1);
  dlcc_rt_format_io(m, 0, 0, sig, sizeof sig);
  CHECK(strcmp(sig, "float32[N,4]") == 0);
  dlcc_rt_format_io(m, 1, 1, sig, sizeof sig);
  CHECK(strcmp(sig, "int64[]") == 0);

  s = dlcc_rt_session_new(m);
  CHECK(s != NULL);
  memset(out, 0, sizeof out);
  /* allocation, then reuse and growth of runtime-owned outputs */
  CHECK(run_check(s, 3, 1, NULL, out));
  CHECK(out[0].owned == 1 && out[0].capacity >= 48);
  CHECK(((uintptr_t)out[0].data & 63) == 0);
  first = out[0].data;
  CHECK(run_check(s, 2, 0.5f, NULL, out));
  CHECK(out[0].data == first);
  CHECK(run_check(s, 100, 2, NULL, out));
  CHECK(out[0].capacity >= 1600);
  CHECK(dlcc_rt_session_syms(s)[0] == 100);
  CHECK(dlcc_rt_session_workspace_bytes(s) >= 1600);
  CHECK(run_check(s, 0, 1, NULL, out)); /* empty batch */
  dlcc_rt_tensor_free(&out[0]);
  dlcc_rt_tensor_free(&out[1]);
  CHECK(out[0].data == NULL && out[0].owned == 0);

  /* caller-provided buffers */
  {
    float ybuf[8];
    int64_t nbuf;
    int64_t shape[2] = {3, 4};
    float x[12] = {0};
    dlcc_tensor in = {x, shape, 2, DLCC_FLOAT32};
    memset(out, 0, sizeof out);
    out[0].data = ybuf;
    out[0].capacity = sizeof ybuf; /* too small for [3,4] */
    out[1].data = &nbuf;
    out[1].capacity = sizeof nbuf;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_ARGUMENT);
    CHECK(strstr(dlcc_rt_session_error(s), "'y'") != NULL);
    shape[0] = 2;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_OK);
    CHECK(out[0].data == ybuf && out[0].owned == 0 && nbuf == 2);
    CHECK(ybuf[7] == 1.0f);
    CHECK(dlcc_rt_session_error(s)[0] == 0);
  }

  /* prepare: shapes without running */
  {
    int64_t shape[2] = {7, 4};
    dlcc_tensor in = {NULL, shape, 2, DLCC_FLOAT32};
    float dummy;
    memset(out, 0, sizeof out);
    in.data = &dummy;
    CHECK(dlcc_rt_prepare(s, &in, 1, out, 2) == DLCC_OK);
    CHECK(out[0].shape[0] == 7 && out[0].nbytes == 112 && out[0].data == NULL);
  }

  /* rejected inputs: a status and a message, never a crash */
  {
    int64_t shape[9] = {3, 4, 1, 1, 1, 1, 1, 1, 1};
    float x[12] = {0};
    dlcc_tensor in = {x, shape, 2, DLCC_FLOAT32};
    memset(out, 0, sizeof out);
    CHECK(dlcc_rt_run(NULL, &in, 1, out, 2) == DLCC_ERR_ARGUMENT);
    CHECK(dlcc_rt_run(s, &in, 0, out, 2) == DLCC_ERR_ARGUMENT);
    CHECK(dlcc_rt_run(s, NULL, 1, out, 2) == DLCC_ERR_ARGUMENT);
    CHECK(dlcc_rt_run(s, &in, 1, out, 1) == DLCC_ERR_ARGUMENT);
    CHECK(dlcc_rt_run(s, &in, 1, NULL, 2) == DLCC_ERR_ARGUMENT);
    in.dtype = DLCC_INT64;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_DTYPE);
    CHECK(strstr(dlcc_rt_session_error(s), "float32[N,4]") != NULL);
    in.dtype = 99;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_DTYPE);
    in.dtype = DLCC_FLOAT32;
    shape[1] = 5;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_SHAPE);
    CHECK(strstr(dlcc_rt_session_error(s), "dim 1 must be 4") != NULL);
    shape[1] = 4;
    shape[0] = -3;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_SHAPE);
    shape[0] = 3;
    in.ndim = 3;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_SHAPE);
    in.ndim = 9;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_ARGUMENT);
    in.ndim = -1;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_ARGUMENT);
    in.ndim = 2;
    in.shape = NULL;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_ARGUMENT);
    in.shape = shape;
    in.data = NULL;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_ARGUMENT);
    shape[0] = (int64_t)1 << 61;
    in.data = x;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_ERR_SHAPE);
    CHECK(out[0].data == NULL && out[1].data == NULL);
    shape[0] = 3;
    CHECK(dlcc_rt_run(s, &in, 1, out, 2) == DLCC_OK);
    dlcc_rt_tensor_free(&out[0]);
    dlcc_rt_tensor_free(&out[1]);
  }
  dlcc_rt_session_free(s);

  /* one module, many threads, a session each */
  {
    pthread_t th[6];
    Worker wk[6];
    for (int i = 0; i < 6; i++) {
      wk[i].mod = m;
      wk[i].id = i;
      wk[i].ok = 0;
      CHECK(pthread_create(&th[i], NULL, worker, &wk[i]) == 0);
    }
    for (int i = 0; i < 6; i++) {
      pthread_join(th[i], NULL);
      CHECK(wk[i].ok);
    }
  }
  dlcc_rt_unload(m);
}

static void test_sidecar(const char *path) {
  char err[512], wpath[4096];
  dlcc_rt_module *m;
  const float w[4] = {2, -1, 0.5f, 3};
  FILE *f;
  snprintf(wpath, sizeof wpath, "%s.weights", path);
  remove(wpath);
  CHECK(dlcc_rt_load(path, &m, err, sizeof err) == DLCC_ERR_WEIGHTS);
  CHECK(m == NULL && strstr(err, ".weights") != NULL);
  f = fopen(wpath, "wb");
  CHECK(f && fwrite(w, sizeof(float), 3, f) == 3);
  if (f)
    fclose(f);
  CHECK(dlcc_rt_load(path, &m, err, sizeof err) == DLCC_ERR_WEIGHTS);
  CHECK(strstr(err, "12 bytes") != NULL);
  f = fopen(wpath, "wb");
  CHECK(f && fwrite(w, sizeof(float), 4, f) == 4);
  if (f)
    fclose(f);
  CHECK(dlcc_rt_load(path, &m, err, sizeof err) == DLCC_OK);
  if (m) {
    dlcc_rt_session *s = dlcc_rt_session_new(m);
    dlcc_rt_tensor out[2];
    memset(out, 0, sizeof out);
    CHECK(dlcc_rt_weights(m) != NULL);
    CHECK(run_check(s, 5, 1, w, out));
    dlcc_rt_tensor_free(&out[0]);
    dlcc_rt_tensor_free(&out[1]);
    dlcc_rt_session_free(s);
    dlcc_rt_unload(m);
  }
}

static void test_bad_modules(const char *badabi, const char *workdir) {
  char err[512], path[4096];
  dlcc_rt_module *m = (dlcc_rt_module *)&m;
  FILE *f;
  CHECK(dlcc_rt_load(badabi, &m, err, sizeof err) == DLCC_RT_ERR_LOAD);
  CHECK(m == NULL && strstr(err, "ABI") != NULL);
  snprintf(path, sizeof path, "%s/not_a_module.so", workdir);
  f = fopen(path, "w");
  if (f) {
    fputs("not an ELF file\n", f);
    fclose(f);
  }
  CHECK(dlcc_rt_load(path, &m, err, sizeof err) == DLCC_RT_ERR_LOAD);
  CHECK(strstr(err, path) != NULL);
  snprintf(path, sizeof path, "%s/missing.so", workdir);
  CHECK(dlcc_rt_load(path, &m, err, sizeof err) == DLCC_RT_ERR_LOAD);
  CHECK(dlcc_rt_load(NULL, &m, err, sizeof err) == DLCC_ERR_ARGUMENT);
  CHECK(dlcc_rt_load(path, &m, NULL, 0) == DLCC_RT_ERR_LOAD);
  dlcc_rt_unload(NULL);
  dlcc_rt_session_free(NULL);
  dlcc_rt_tensor_free(NULL);
  CHECK(dlcc_rt_session_new(NULL) == NULL);
  CHECK(strcmp(dlcc_rt_strerror(DLCC_ERR_SHAPE),
               "input shape does not match the module") == 0);
  CHECK(dlcc_rt_dtype_size(DLCC_FLOAT16) == 2 &&
        strcmp(dlcc_rt_dtype_name(DLCC_UINT64), "uint64") == 0);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: rt_api_test ADDONE.so SIDECAR.so BADABI.so DIR\n");
    return 2;
  }
  test_basic(argv[1]);
  test_sidecar(argv[2]);
  test_bad_modules(argv[3], argv[4]);
  if (failures)
    fprintf(stderr, "rt_api_test: %d failures\n", failures);
  else
    printf("rt_api_test: all checks passed\n");
  return failures ? 1 : 0;
}
