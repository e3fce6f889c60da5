/*
 * targets.h - code generation targets: the --target aliases (rpi4, apple-m1,
 * ...) resolved to an LLVM triple, CPU and features, and the LLVM backend.
 *
 * The target table (targets.c) is built in every configuration; the LLVM
 * backend itself (emit_llvm.c) only when CMake found LLVM (DLCC_HAVE_LLVM).
 */
#ifndef DLCC_TARGETS_H
#define DLCC_TARGETS_H

#include <stdio.h>

#include "codegen/module.h"

typedef struct DlTarget {
  const char *name;     /* alias as given, or the triple */
  const char *triple;   /* NULL: the host */
  const char *cpu;      /* NULL: generic (host: the host CPU) */
  const char *features; /* "+neon,..." or NULL */
  bool macho;           /* Mach-O .dylib (Apple) instead of an ELF .so */
  const char *cross_cc; /* C compiler for the C backend, NULL: host cc */
} DlTarget;

/* Resolves an alias or triple ("host" or NULL: the host), refined by
 * cpu/features when not NULL. */
DlStatus dl_target_resolve(DlCtx *ctx, const char *target, const char *cpu,
                           const char *features, DlTarget *out);
/* True when t means the machine dlcc runs on. */
bool dl_target_is_host(const DlTarget *t);
/* For the C backend: the cross C compiler command (with -mcpu) for a
 * non-host target into *cc, NULL for the host; an error naming the missing
 * compiler when it is not installed. */
DlStatus dl_target_c_compiler(DlCtx *ctx, const DlTarget *t, char **cc);
/* The table printed by `dlcc --list-targets`. */
void dl_target_list(FILE *f);

/* The LLVM backend (NULL when this build has no LLVM).  It reads the
 * target from DlEmitRequest.target/.cpu/.features. */
const DlBackend *dl_backend_llvm(void);

#endif
