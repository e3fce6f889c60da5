/*
 * module.c - loading a dlcc module: dlopen, the descriptor and its checks,
 * and the memory-mapped sidecar weights.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_internal.h"
#include "rt_module.h"

/* Bounds that keep a corrupt descriptor from driving huge allocations. */
enum { MAX_IOS = 1 << 16, MAX_SYMS = 1 << 16 };

static int check_io(const dlcc_module_desc *d, const dlcc_io_desc *io,
                    const char *kind, int32_t i, const char *path, char *errbuf,
                    size_t errlen) {
  if (!io->name)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                        "%s: %s %d has no name", path, kind, (int)i);
  if (dlcc_rt_dtype_size(io->dtype) == 0)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                        "%s: %s '%s' has unknown dtype %d", path, kind,
                        io->name, (int)io->dtype);
  if (io->ndim < 0 || io->ndim > DLCC_MAX_RANK)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                        "%s: %s '%s' has rank %d (max %d)", path, kind,
                        io->name, (int)io->ndim, DLCC_MAX_RANK);
  for (int32_t k = 0; k < io->ndim; k++) {
    if (io->dims[k] < 0 && -(io->dims[k] + 1) >= d->num_syms)
      return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                          "%s: %s '%s' dim %d names symbol %lld of %d", path,
                          kind, io->name, (int)k, (long long)-(io->dims[k] + 1),
                          (int)d->num_syms);
  }
  return DLCC_OK;
}

static int check_desc(const dlcc_module_desc *d, const char *path, char *errbuf,
                      size_t errlen) {
  if (d->abi_version != DLCC_ABI_VERSION)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                        "%s: module ABI version %d, this runtime supports %d",
                        path, (int)d->abi_version, DLCC_ABI_VERSION);
  if (d->num_inputs < 0 || d->num_inputs > MAX_IOS || d->num_outputs < 0 ||
      d->num_outputs > MAX_IOS || d->num_syms < 0 || d->num_syms > MAX_SYMS)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                        "%s: descriptor has bad counts (%d inputs, %d "
                        "outputs, %d symbols)",
                        path, (int)d->num_inputs, (int)d->num_outputs,
                        (int)d->num_syms);
  if ((d->num_inputs && !d->inputs) || (d->num_outputs && !d->outputs) ||
      (d->num_syms && !d->sym_names) || !d->bind || !d->workspace_size ||
      !d->output_shape || !d->run)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                        "%s: descriptor has missing tables or entry points",
                        path);
  for (int32_t i = 0; i < d->num_syms; i++)
    if (!d->sym_names[i])
      return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                          "%s: symbol %d has no name", path, (int)i);
  for (int32_t i = 0; i < d->num_inputs; i++) {
    int st = check_io(d, &d->inputs[i], "input", i, path, errbuf, errlen);
    if (st)
      return st;
  }
  for (int32_t i = 0; i < d->num_outputs; i++) {
    int st = check_io(d, &d->outputs[i], "output", i, path, errbuf, errlen);
    if (st)
      return st;
  }
  return DLCC_OK;
}

static int map_weights(dlcc_rt_module *m, const char *path, char *errbuf,
                       size_t errlen) {
  uint64_t want = m->desc->sidecar_weights_bytes;
  size_t plen = strlen(path);
  char *wpath = malloc(plen + sizeof ".weights");
  struct stat st;
  int fd;
  if (!wpath)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_NOMEM, "%s: out of memory",
                        path);
  memcpy(wpath, path, plen);
  memcpy(wpath + plen, ".weights", sizeof ".weights");
  fd = open(wpath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    dlcc_rt__err(errbuf, errlen, DLCC_ERR_WEIGHTS,
                 "%s: module needs its weights file: %s", wpath, strerror(e));
    free(wpath);
    return DLCC_ERR_WEIGHTS;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    dlcc_rt__err(errbuf, errlen, DLCC_ERR_WEIGHTS,
                 "%s: weights file is not a readable regular file", wpath);
    close(fd);
    free(wpath);
    return DLCC_ERR_WEIGHTS;
  }
  if ((uint64_t)st.st_size != want) {
    dlcc_rt__err(errbuf, errlen, DLCC_ERR_WEIGHTS,
                 "%s: weights file has %lld bytes, the module expects %llu",
                 wpath, (long long)st.st_size, (unsigned long long)want);
    close(fd);
    free(wpath);
    return DLCC_ERR_WEIGHTS;
  }
  if (want > (uint64_t)SIZE_MAX) {
    dlcc_rt__err(errbuf, errlen, DLCC_ERR_WEIGHTS,
                 "%s: weights file too large for this address space", wpath);
    close(fd);
    free(wpath);
    return DLCC_ERR_WEIGHTS;
  }
  m->weights = mmap(NULL, (size_t)want, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m->weights == MAP_FAILED) {
    int e = errno;
    m->weights = NULL;
    dlcc_rt__err(errbuf, errlen, DLCC_ERR_WEIGHTS, "%s: mmap: %s", wpath,
                 strerror(e));
    free(wpath);
    return DLCC_ERR_WEIGHTS;
  }
  m->weights_len = (size_t)want;
  free(wpath);
  return DLCC_OK;
}

int dlcc_rt_load(const char *path, dlcc_rt_module **out, char *errbuf,
                 size_t errlen) {
  dlcc_rt_module *m;
  dlcc_module_v1_fn fn;
  char *open_path = NULL;
  void *sym;
  int st;
  if (errbuf && errlen)
    errbuf[0] = 0;
  if (out)
    *out = NULL;
  if (!path || !out)
    return dlcc_rt__err(errbuf, errlen, DLCC_ERR_ARGUMENT,
                        "dlcc_rt_load: NULL argument");
  m = calloc(1, sizeof *m);
  if (!m)
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_NOMEM, "%s: out of memory",
                        path);
  /* A bare file name would make dlopen search the library path: load the
   * file the caller named instead. */
  if (!strchr(path, '/')) {
    size_t n = strlen(path);
    open_path = malloc(n + 3);
    if (!open_path) {
      free(m);
      return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_NOMEM,
                          "%s: out of memory", path);
    }
    memcpy(open_path, "./", 2);
    memcpy(open_path + 2, path, n + 1);
  }
  m->handle = dlopen(open_path ? open_path : path, RTLD_NOW | RTLD_LOCAL);
  free(open_path);
  if (!m->handle) {
    const char *e = dlerror();
    free(m);
    return dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD, "%s: dlopen: %s",
                        path, e ? e : "unknown error");
  }
  dlerror();
  sym = dlsym(m->handle, DLCC_MODULE_SYMBOL);
  if (!sym) {
    dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                 "%s: not a dlcc module (no symbol %s)", path,
                 DLCC_MODULE_SYMBOL);
    dlclose(m->handle);
    free(m);
    return DLCC_RT_ERR_LOAD;
  }
  /* ISO C forbids object-to-function pointer casts; POSIX allows this. */
  memcpy(&fn, &sym, sizeof fn);
  m->desc = fn();
  if (!m->desc) {
    dlcc_rt__err(errbuf, errlen, DLCC_RT_ERR_LOAD,
                 "%s: %s returned no descriptor", path, DLCC_MODULE_SYMBOL);
    dlclose(m->handle);
    free(m);
    return DLCC_RT_ERR_LOAD;
  }
  st = check_desc(m->desc, path, errbuf, errlen);
  if (st == DLCC_OK && m->desc->sidecar_weights_bytes > 0)
    st = map_weights(m, path, errbuf, errlen);
  if (st != DLCC_OK) {
    dlclose(m->handle);
    free(m);
    return st;
  }
  *out = m;
  return DLCC_OK;
}

void dlcc_rt_unload(dlcc_rt_module *mod) {
  if (!mod)
    return;
  if (mod->weights)
    munmap((void *)mod->weights, mod->weights_len);
  if (mod->handle)
    dlclose(mod->handle);
  free(mod);
}

const dlcc_module_desc *dlcc_rt_desc(const dlcc_rt_module *mod) {
  return mod ? mod->desc : NULL;
}

const void *dlcc_rt_weights(const dlcc_rt_module *mod) {
  return mod ? mod->weights : NULL;
}

int32_t dlcc_rt_find_input(const dlcc_rt_module *mod, const char *name) {
  if (!mod || !name)
    return -1;
  for (int32_t i = 0; i < mod->desc->num_inputs; i++)
    if (strcmp(mod->desc->inputs[i].name, name) == 0)
      return i;
  return -1;
}

int32_t dlcc_rt_find_output(const dlcc_rt_module *mod, const char *name) {
  if (!mod || !name)
    return -1;
  for (int32_t i = 0; i < mod->desc->num_outputs; i++)
    if (strcmp(mod->desc->outputs[i].name, name) == 0)
      return i;
  return -1;
}

int dlcc_rt_format_io(const dlcc_rt_module *mod, int is_output, int32_t i,
                      char *buf, size_t len) {
  const dlcc_io_desc *io;
  char tmp[32];
  int total;
  if (!mod || i < 0 ||
      i >= (is_output ? mod->desc->num_outputs : mod->desc->num_inputs)) {
    if (buf && len)
      buf[0] = 0;
    return 0;
  }
  io = is_output ? &mod->desc->outputs[i] : &mod->desc->inputs[i];
  total = snprintf(buf, len, "%s[", dlcc_rt_dtype_name(io->dtype));
  for (int32_t k = 0; k < io->ndim; k++) {
    const char *s;
    if (io->dims[k] >= 0) {
      snprintf(tmp, sizeof tmp, "%lld", (long long)io->dims[k]);
      s = tmp;
    } else {
      s = mod->desc->sym_names[-(io->dims[k] + 1)];
    }
    total += snprintf(buf && (size_t)total < len ? buf + total : NULL,
                      buf && (size_t)total < len ? len - (size_t)total : 0,
                      "%s%s", k ? "," : "", s);
  }
  total += snprintf(buf && (size_t)total < len ? buf + total : NULL,
                    buf && (size_t)total < len ? len - (size_t)total : 0, "]");
  return total;
}
