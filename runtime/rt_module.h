/*
 * rt_module.h - the runtime's loaded-module record (internal).
 */
#ifndef DLCC_RT_MODULE_H
#define DLCC_RT_MODULE_H

#include <stddef.h>

#include "dlcc/dlcc_runtime.h"

struct dlcc_rt_module {
  void *handle;                 /* from dlopen */
  const dlcc_module_desc *desc; /* from dlcc_module_v1() */
  const void *weights;          /* mapped sidecar, or NULL */
  size_t weights_len;
};

#endif
