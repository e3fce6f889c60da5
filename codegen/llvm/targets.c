/*
 * targets.c - the --target table (see targets.h).  No LLVM dependency: the
 * C backend uses it too, to pick a cross C compiler.
 */
#include "codegen/llvm/targets.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct TargetRow {
  const char *alias;
  const char *triple;
  const char *cpu;
  const char *features;
  const char *cross_cc;
  const char *what;
} TargetRow;

static const TargetRow rows[] = {
    {"host", NULL, NULL, NULL, NULL,
     "the machine dlcc runs on (default; host CPU and features)"},
    {"x86_64", "x86_64-unknown-linux-gnu", "x86-64-v2", NULL, "cc",
     "x86-64 Linux, x86-64-v2 (SSE4.2, POPCNT)"},
    {"x86_64-v3", "x86_64-unknown-linux-gnu", "x86-64-v3", NULL, "cc",
     "x86-64 Linux, x86-64-v3 (AVX2, FMA)"},
    {"x86_64-v4", "x86_64-unknown-linux-gnu", "x86-64-v4", NULL, "cc",
     "x86-64 Linux, x86-64-v4 (AVX-512)"},
    {"aarch64", "aarch64-unknown-linux-gnu", "generic", "+neon",
     "aarch64-linux-gnu-gcc", "64-bit Arm Linux, generic Armv8-A"},
    {"arm64", "aarch64-unknown-linux-gnu", "generic", "+neon",
     "aarch64-linux-gnu-gcc", "same as aarch64"},
    {"rpi4", "aarch64-unknown-linux-gnu", "cortex-a72", NULL,
     "aarch64-linux-gnu-gcc",
     "Raspberry Pi 4 / 400 / CM4, 64-bit OS (Cortex-A72)"},
    {"rpi5", "aarch64-unknown-linux-gnu", "cortex-a76", NULL,
     "aarch64-linux-gnu-gcc", "Raspberry Pi 5, 64-bit OS (Cortex-A76)"},
    {"armv7", "armv7a-unknown-linux-gnueabihf", "cortex-a7", "+neon,+vfp4",
     "arm-linux-gnueabihf-gcc",
     "32-bit Arm Linux, hard float, NEON (Cortex-A7)"},
    {"rpi2", "armv7a-unknown-linux-gnueabihf", "cortex-a7", "+neon,+vfp4",
     "arm-linux-gnueabihf-gcc", "Raspberry Pi 2, 32-bit OS (Cortex-A7)"},
    {"rpi3", "armv7a-unknown-linux-gnueabihf", "cortex-a53", "+neon",
     "arm-linux-gnueabihf-gcc", "Raspberry Pi 3, 32-bit OS (Cortex-A53)"},
    {"rpizero2", "armv7a-unknown-linux-gnueabihf", "cortex-a53", "+neon",
     "arm-linux-gnueabihf-gcc",
     "Raspberry Pi Zero 2 W, 32-bit OS (Cortex-A53)"},
    {"apple-m1", "arm64-apple-macosx11.0.0", "apple-m1", NULL, NULL,
     "macOS on Apple M1: Mach-O .dylib"},
    {"apple-m2", "arm64-apple-macosx11.0.0", "apple-m2", NULL, NULL,
     "macOS on Apple M2: Mach-O .dylib"},
    {"apple-m3", "arm64-apple-macosx11.0.0", "apple-m3", NULL, NULL,
     "macOS on Apple M3: Mach-O .dylib"},
    {"apple-m4", "arm64-apple-macosx11.0.0", "apple-m4", NULL, NULL,
     "macOS on Apple M4: Mach-O .dylib"},
};

static bool starts_with(const char *s, const char *p) {
  return strncmp(s, p, strlen(p)) == 0;
}

DlStatus dl_target_resolve(DlCtx *ctx, const char *target, const char *cpu,
                           const char *features, DlTarget *out) {
  memset(out, 0, sizeof *out);
  if (!target || !*target)
    target = "host";
  out->name = target;
  bool found = false;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0] && !found; i++) {
    if (strcmp(rows[i].alias, target) != 0)
      continue;
    found = true;
    out->triple = rows[i].triple;
    out->cpu = rows[i].cpu;
    out->features = rows[i].features;
    out->cross_cc = rows[i].cross_cc;
  }
  if (!found) {
    /* A full triple: arch-vendor-os[-env]. */
    if (!strchr(target, '-') || strchr(target, ' '))
      return dl_error(ctx, DL_ERR_INVALID,
                      "target '%s' not supported by this build (see dlcc "
                      "--list-targets; or give a full LLVM triple such as "
                      "aarch64-unknown-linux-gnu)",
                      target);
    out->triple = target;
    if (starts_with(target, "aarch64") && strstr(target, "linux"))
      out->cross_cc = "aarch64-linux-gnu-gcc";
    else if (starts_with(target, "arm") && strstr(target, "linux") &&
             strstr(target, "hf"))
      out->cross_cc = "arm-linux-gnueabihf-gcc";
  }
  if (out->triple &&
      (strstr(out->triple, "apple") || strstr(out->triple, "darwin") ||
       strstr(out->triple, "macos")))
    out->macho = true;
  if (cpu && *cpu)
    out->cpu = cpu;
  if (features && *features)
    out->features = features;
  return DL_OK;
}

bool dl_target_is_host(const DlTarget *t) {
  return t->triple == NULL;
}

void dl_target_list(FILE *f) {
  fprintf(f, "%-10s %-32s %-11s %s\n", "target", "LLVM triple", "cpu",
          "meaning");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    fprintf(f, "%-10s %-32s %-11s %s\n", rows[i].alias,
            rows[i].triple ? rows[i].triple : "(host)",
            rows[i].cpu ? rows[i].cpu : "(host)", rows[i].what);
  fputs(
      "\nAny other LLVM triple is accepted as --target=<triple>; --cpu=<name>\n"
      "and --features=<+a,-b> refine any target.  Linux targets give an ELF\n"
      ".so needing only libc/libm; Apple targets a Mach-O .dylib.\n",
      f);
}

static bool on_path(const char *prog) {
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/bin:/bin";
  while (*path) {
    const char *c = strchr(path, ':');
    size_t n = c ? (size_t)(c - path) : strlen(path);
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
    if (access(buf, X_OK) == 0)
      return true;
    path += n + (c ? 1 : 0);
  }
  return false;
}

DlStatus dl_target_c_compiler(DlCtx *ctx, const DlTarget *t, char **cc) {
  *cc = NULL;
  if (dl_target_is_host(t))
    return DL_OK;
  if (t->macho)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "target '%s': the C backend cannot link Mach-O modules; "
                    "use --backend=llvm (or --emit=c)",
                    t->name);
  if (!t->cross_cc)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "target '%s': no known C cross compiler; use "
                    "--backend=llvm (or --emit=c)",
                    t->name);
  if (!on_path(t->cross_cc))
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "target '%s': the C backend needs the cross compiler '%s', "
                    "which is not installed; use --backend=llvm (or --emit=c)",
                    t->name, t->cross_cc);
  const char *flag = "";
  if (t->cpu && strcmp(t->cpu, "generic") != 0)
    flag = strncmp(t->cpu, "x86-64", 6) == 0 ? " -march=" : " -mcpu=";
  *cc = dl_arena_printf(
      &ctx->arena, "%s%s%s%s", t->cross_cc, flag, *flag ? t->cpu : "",
      strstr(t->cross_cc, "gnueabihf") ? " -mfpu=neon-vfpv4 -mfloat-abi=hard"
                                       : "");
  return *cc ? DL_OK : dl_error(ctx, DL_ERR_NOMEM, "out of memory");
}

#ifndef DLCC_HAVE_LLVM
const DlBackend *dl_backend_llvm(void) {
  return NULL; /* built without LLVM */
}
#endif
