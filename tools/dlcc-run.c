/*
 * dlcc-run - run a compiled dlcc module on tensor files.
 *
 *   dlcc-run model.so --input NAME=FILE ... [--input-dir DIR]
 *            [--output-dir DIR] [--npy] [--bench N] [--warmup N]
 *
 * Inputs are .npy or TensorProto .pb files (by extension), given by input
 * name, or taken from DIR/input_<i>.pb by position (the layout of the ONNX
 * test suite).  Outputs go to DIR/output_<i>.pb (and .npy with --npy), or
 * a short summary of each is printed (all values up to 16, else the first 8).
 * --bench N times N runs after the warm-up runs and prints one line:
 * median_ms=.. min_ms=.. mean_ms=.. runs=N
 *
 * Exit status: 0 success, 1 an error (message "dlcc-run: <file>: ..."),
 * 2 bad command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dlcc/dlcc_runtime.h"

typedef struct Options {
  const char *model;
  const char **in_specs; /* NAME=FILE */
  int n_in_specs;
  const char *input_dir;
  const char *output_dir;
  int npy;
  long bench;
  long warmup;
} Options;

static void usage(FILE *f) {
  fprintf(f,
          "usage: dlcc-run MODEL.so [--input NAME=FILE]... [--input-dir DIR]\n"
          "                [--output-dir DIR] [--npy] [--bench N] "
          "[--warmup N]\n"
          "  --input NAME=FILE  input NAME from FILE (.npy, else TensorProto "
          ".pb)\n"
          "  --input-dir DIR    inputs from DIR/input_<i>.pb by position\n"
          "  --output-dir DIR   write DIR/output_<i>.pb (default: print a "
          "summary)\n"
          "  --npy              also write DIR/output_<i>.npy\n"
          "  --bench N          time N runs, print median_ms= min_ms= "
          "mean_ms= runs=\n"
          "  --warmup N         untimed runs before --bench (default 3)\n");
}

static int bad_usage(const char *msg, const char *arg) {
  fprintf(stderr, "dlcc-run: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  usage(stderr);
  return 2;
}

static int parse_count(const char *s, long min, long *out) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > 100000000L)
    return 0;
  *out = v;
  return 1;
}

/* Returns 0 on success, else the exit status. */
static int parse_args(int argc, char **argv, Options *o) {
  o->in_specs = calloc((size_t)argc, sizeof *o->in_specs);
  o->warmup = -1;
  if (!o->in_specs)
    return 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    char flag[32];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    }
    if (a[0] != '-' || a[1] == 0) {
      if (o->model)
        return bad_usage("more than one model given", a);
      o->model = a;
      continue;
    }
    /* --flag=value or --flag value */
    {
      const char *eq = strchr(a, '=');
      size_t n = eq ? (size_t)(eq - a) : strlen(a);
      if (n >= sizeof flag)
        return bad_usage("unknown option", a);
      memcpy(flag, a, n);
      flag[n] = 0;
      if (eq)
        val = eq + 1;
    }
    if (strcmp(flag, "--npy") == 0) {
      if (val)
        return bad_usage("--npy takes no value", a);
      o->npy = 1;
      continue;
    }
    if (strcmp(flag, "--input") && strcmp(flag, "--input-dir") &&
        strcmp(flag, "--output-dir") && strcmp(flag, "--bench") &&
        strcmp(flag, "--warmup"))
      return bad_usage("unknown option", a);
    if (!val) {
      if (i + 1 >= argc)
        return bad_usage("missing value for", flag);
      val = argv[++i];
    }
    if (strcmp(flag, "--input") == 0) {
      const char *eq = strchr(val, '=');
      if (!eq || eq == val || !eq[1])
        return bad_usage("--input wants NAME=FILE", val);
      o->in_specs[o->n_in_specs++] = val;
    } else if (strcmp(flag, "--input-dir") == 0) {
      o->input_dir = val;
    } else if (strcmp(flag, "--output-dir") == 0) {
      o->output_dir = val;
    } else if (strcmp(flag, "--bench") == 0) {
      if (!parse_count(val, 1, &o->bench))
        return bad_usage("--bench wants a count >= 1", val);
    } else {
      if (!parse_count(val, 0, &o->warmup))
        return bad_usage("--warmup wants a count >= 0", val);
    }
  }
  if (!o->model)
    return bad_usage("no model given", NULL);
  if (o->npy && !o->output_dir)
    return bad_usage("--npy needs --output-dir", NULL);
  if (o->warmup >= 0 && !o->bench)
    return bad_usage("--warmup needs --bench", NULL);
  if (o->warmup < 0)
    o->warmup = 3;
  return 0;
}

static char *path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p)
    return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f,
           man = h & 0x3ff, bits;
  float f;
  if (exp == 0) {
    f = (float)man / 16777216.0f; /* man * 2^-24 */
    return sign ? -f : f;
  }
  if (exp == 31)
    bits = sign | 0x7f800000u | (man << 13);
  else
    bits = sign | ((exp + 112) << 23) | (man << 13);
  memcpy(&f, &bits, 4);
  return f;
}

static void print_value(const dlcc_rt_tensor *t, uint64_t i) {
  const char *p = (const char *)t->data;
  switch (t->dtype) {
  case DLCC_FLOAT32: {
    float v;
    memcpy(&v, p + i * 4, 4);
    printf("%g", (double)v);
    break;
  }
  case DLCC_FLOAT64: {
    double v;
    memcpy(&v, p + i * 8, 8);
    printf("%g", v);
    break;
  }
  case DLCC_FLOAT16: {
    uint16_t v;
    memcpy(&v, p + i * 2, 2);
    printf("%g", (double)half_to_float(v));
    break;
  }
  case DLCC_INT8:
    printf("%d", (int)((const int8_t *)p)[i]);
    break;
  case DLCC_UINT8:
  case DLCC_BOOL:
    printf("%u", (unsigned)((const uint8_t *)p)[i]);
    break;
  case DLCC_INT16: {
    int16_t v;
    memcpy(&v, p + i * 2, 2);
    printf("%d", (int)v);
    break;
  }
  case DLCC_UINT16: {
    uint16_t v;
    memcpy(&v, p + i * 2, 2);
    printf("%u", (unsigned)v);
    break;
  }
  case DLCC_INT32: {
    int32_t v;
    memcpy(&v, p + i * 4, 4);
    printf("%ld", (long)v);
    break;
  }
  case DLCC_UINT32: {
    uint32_t v;
    memcpy(&v, p + i * 4, 4);
    printf("%lu", (unsigned long)v);
    break;
  }
  case DLCC_INT64: {
    int64_t v;
    memcpy(&v, p + i * 8, 8);
    printf("%lld", (long long)v);
    break;
  }
  case DLCC_UINT64: {
    uint64_t v;
    memcpy(&v, p + i * 8, 8);
    printf("%llu", (unsigned long long)v);
    break;
  }
  default:
    printf("?");
  }
}

static void print_summary(const char *name, const dlcc_rt_tensor *t) {
  uint64_t n = dlcc_rt_tensor_numel(t), show = n < 16 ? n : 8;
  printf("%s: %s[", name, dlcc_rt_dtype_name(t->dtype));
  for (int32_t k = 0; k < t->ndim; k++)
    printf("%s%lld", k ? "," : "", (long long)t->shape[k]);
  printf("] =");
  for (uint64_t i = 0; i < show; i++) {
    putchar(' ');
    print_value(t, i);
  }
  if (n > show)
    printf(" ... (%llu values)", (unsigned long long)n);
  if (n == 0)
    printf(" (empty)");
  putchar('\n');
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Reads the inputs named on the command line and from --input-dir;
 * file_of[i] remembers where input i came from. */
static int read_inputs(const Options *o, dlcc_rt_module *mod,
                       dlcc_rt_tensor *in, char **file_of) {
  const dlcc_module_desc *d = dlcc_rt_desc(mod);
  char err[1024];
  for (int k = 0; k < o->n_in_specs; k++) {
    const char *spec = o->in_specs[k], *eq = strchr(spec, '=');
    size_t n = (size_t)(eq - spec);
    char *name = malloc(n + 1);
    int32_t i;
    if (!name)
      return 1;
    memcpy(name, spec, n);
    name[n] = 0;
    i = dlcc_rt_find_input(mod, name);
    if (i < 0) {
      fprintf(stderr,
              "dlcc-run: %s: the module has no input '%s' (inputs:", o->model,
              name);
      for (int32_t j = 0; j < d->num_inputs; j++)
        fprintf(stderr, " %s", d->inputs[j].name);
      fprintf(stderr, ")\n");
      free(name);
      return 1;
    }
    free(name);
    if (file_of[i]) {
      fprintf(stderr, "dlcc-run: %s: input '%s' given twice\n", eq + 1,
              d->inputs[i].name);
      return 1;
    }
    file_of[i] = strdup(eq + 1);
    if (!file_of[i])
      return 1;
    if (dlcc_rt_tensor_read(eq + 1, &in[i], err, sizeof err)) {
      fprintf(stderr, "dlcc-run: %s\n", err);
      return 1;
    }
  }
  for (int32_t i = 0; i < d->num_inputs; i++) {
    char fname[64];
    if (file_of[i])
      continue;
    if (!o->input_dir) {
      char sig[256];
      dlcc_rt_format_io(mod, 0, i, sig, sizeof sig);
      fprintf(stderr, "dlcc-run: %s: no value for input '%s' %s\n", o->model,
              d->inputs[i].name, sig);
      return 1;
    }
    snprintf(fname, sizeof fname, "input_%d.pb", (int)i);
    file_of[i] = path_join(o->input_dir, fname);
    if (!file_of[i])
      return 1;
    if (dlcc_rt_pb_read(file_of[i], &in[i], NULL, err, sizeof err)) {
      fprintf(stderr, "dlcc-run: %s\n", err);
      return 1;
    }
  }
  /* Name the file when a dtype or rank does not fit. */
  for (int32_t i = 0; i < d->num_inputs; i++) {
    const dlcc_io_desc *io = &d->inputs[i];
    if (in[i].dtype != io->dtype || in[i].ndim != io->ndim) {
      char sig[256];
      dlcc_rt_format_io(mod, 0, i, sig, sizeof sig);
      fprintf(stderr, "dlcc-run: %s: %s tensor of rank %d, input '%s' is %s\n",
              file_of[i], dlcc_rt_dtype_name(in[i].dtype), (int)in[i].ndim,
              io->name, sig);
      return 1;
    }
  }
  return 0;
}

static int write_outputs(const Options *o, dlcc_rt_module *mod,
                         const dlcc_rt_tensor *out) {
  const dlcc_module_desc *d = dlcc_rt_desc(mod);
  char err[1024];
  struct stat sb;
  if (mkdir(o->output_dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "dlcc-run: %s: %s\n", o->output_dir, strerror(errno));
    return 1;
  }
  if (stat(o->output_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "dlcc-run: %s: not a directory\n", o->output_dir);
    return 1;
  }
  for (int32_t i = 0; i < d->num_outputs; i++) {
    char fname[64];
    char *path;
    int st;
    for (int npy = 0; npy <= o->npy; npy++) {
      snprintf(fname, sizeof fname, "output_%d.%s", (int)i, npy ? "npy" : "pb");
      path = path_join(o->output_dir, fname);
      if (!path)
        return 1;
      st = npy ? dlcc_rt_npy_write(path, &out[i], err, sizeof err)
               : dlcc_rt_pb_write(path, &out[i], d->outputs[i].name, err,
                                  sizeof err);
      free(path);
      if (st) {
        fprintf(stderr, "dlcc-run: %s\n", err);
        return 1;
      }
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  Options o;
  dlcc_rt_module *mod = NULL;
  dlcc_rt_session *s = NULL;
  const dlcc_module_desc *d;
  dlcc_rt_tensor *in = NULL, *out = NULL;
  dlcc_tensor *views = NULL;
  char **file_of = NULL;
  double *times = NULL;
  char err[1024];
  int rc = 1, st;

  memset(&o, 0, sizeof o);
  st = parse_args(argc, argv, &o);
  if (st) {
    free(o.in_specs);
    return st;
  }
  if (dlcc_rt_load(o.model, &mod, err, sizeof err)) {
    fprintf(stderr, "dlcc-run: %s\n", err);
    free(o.in_specs);
    return 1;
  }
  d = dlcc_rt_desc(mod);
  in = calloc((size_t)d->num_inputs + 1, sizeof *in);
  out = calloc((size_t)d->num_outputs + 1, sizeof *out);
  views = calloc((size_t)d->num_inputs + 1, sizeof *views);
  file_of = calloc((size_t)d->num_inputs + 1, sizeof *file_of);
  times = calloc((size_t)o.bench + 1, sizeof *times);
  s = dlcc_rt_session_new(mod);
  if (!in || !out || !views || !file_of || !times || !s) {
    fprintf(stderr, "dlcc-run: %s: out of memory\n", o.model);
    goto done;
  }
  if (read_inputs(&o, mod, in, file_of))
    goto done;
  for (int32_t i = 0; i < d->num_inputs; i++)
    views[i] = dlcc_rt_tensor_view(&in[i]);

  {
    long total = o.bench ? o.warmup + o.bench : 1;
    for (long r = 0; r < total; r++) {
      double t0 = now_ms();
      st = dlcc_rt_run(s, views, d->num_inputs, out, d->num_outputs);
      if (st) {
        fprintf(stderr, "dlcc-run: %s: %s\n", o.model,
                dlcc_rt_session_error(s));
        goto done;
      }
      if (o.bench && r >= o.warmup)
        times[r - o.warmup] = now_ms() - t0;
    }
  }
  if (o.output_dir) {
    if (write_outputs(&o, mod, out))
      goto done;
  } else {
    for (int32_t i = 0; i < d->num_outputs; i++)
      print_summary(d->outputs[i].name, &out[i]);
  }
  if (o.bench) {
    double sum = 0, median;
    for (long r = 0; r < o.bench; r++)
      sum += times[r];
    qsort(times, (size_t)o.bench, sizeof *times, cmp_double);
    median = o.bench % 2 ? times[o.bench / 2]
                         : (times[o.bench / 2 - 1] + times[o.bench / 2]) / 2;
    printf("median_ms=%.4f min_ms=%.4f mean_ms=%.4f runs=%ld\n", median,
           times[0], sum / (double)o.bench, o.bench);
  }
  rc = 0;

done:
  if (in)
    for (int32_t i = 0; i < d->num_inputs; i++)
      dlcc_rt_tensor_free(&in[i]);
  if (out)
    for (int32_t i = 0; i < d->num_outputs; i++)
      dlcc_rt_tensor_free(&out[i]);
  if (file_of)
    for (int32_t i = 0; i < d->num_inputs; i++)
      free(file_of[i]);
  free(file_of);
  free(in);
  free(out);
  free(views);
  free(times);
  dlcc_rt_session_free(s);
  dlcc_rt_unload(mod);
  free(o.in_specs);
  return rc;
}
