/*
 * rt_internal.h - helpers shared by the runtime library's files (not
 * installed, not part of the API).
 */
#ifndef DLCC_RT_INTERNAL_H
#define DLCC_RT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "dlcc/dlcc_runtime.h"

#if defined(__GNUC__)
#define DLCC_RT_HIDDEN __attribute__((visibility("hidden")))
#define DLCC_RT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DLCC_RT_HIDDEN
#define DLCC_RT_PRINTF(a, b)
#endif

/* Writes a message into buf (if any) and returns status. */
DLCC_RT_HIDDEN int dlcc_rt__err(char *buf, size_t len, int status,
                                const char *fmt, ...) DLCC_RT_PRINTF(4, 5);

/* 64-byte aligned allocation of at least max(bytes, 1) bytes; NULL when
 * bytes does not fit size_t or memory is short.  Free with free(). */
DLCC_RT_HIDDEN void *dlcc_rt__alloc(uint64_t bytes);

/* numel * elem_size over shape; returns 0 on overflow (beyond 2^62) or a
 * negative dim, else 1 with *numel and *bytes set. */
DLCC_RT_HIDDEN int dlcc_rt__shape_bytes(const int64_t *shape, int32_t ndim,
                                        size_t elem_size, uint64_t *numel,
                                        uint64_t *bytes);

/* "[1,3,224,224]" */
DLCC_RT_HIDDEN void dlcc_rt__format_shape(const int64_t *shape, int32_t ndim,
                                          char *buf, size_t len);

#endif
