#!/usr/bin/env python3
"""--target, --backend and the LLVM backend's linking, checked from outside.

For every Linux target alias (and a full triple): the module is an ELF shared
object of the right machine, needs only libm/libc (and libgcc_s on 32-bit
Arm), exports exactly dlcc_module_v1 and the prefixed entry points, and loads
with plain dlopen in a C program that never links libm (run natively, or
under qemu-user for Arm).  Also: --list-targets, bad targets/backends exit 2,
--backend=c with a cross gcc, --emit=c for any target, and no output or
temporary file left behind when the link fails.

Usage: test_targets.py DLCC MODEL.onnx WORKDIR
"""
import os
import shutil
import subprocess
import sys

dlcc, model, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
failed = 0
checks = 0


def check(ok, what):
    global failed, checks
    checks += 1
    print("%s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        failed += 1


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


LOADER = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
typedef struct { int32_t abi_version; const char *name; } head;
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
  const head *(*f)(void) = (const head *(*)(void))dlsym(h, "dlcc_module_v1");
  if (!f) { printf("no dlcc_module_v1\n"); return 1; }
  const head *d = f();
  printf("abi=%d name=%s\n", d->abi_version, d->name);
  return d->abi_version == 1 ? 0 : 1;
}
"""

QEMU = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64 -L /usr/aarch64-linux-gnu"),
        "arm": ("arm-linux-gnueabihf-gcc", "qemu-arm -L /usr/arm-linux-gnueabihf")}
loaders = {}


def loader(arch):
    """The dlopen check program for arch, or None if no compiler/emulator."""
    if arch in loaders:
        return loaders[arch]
    src = os.path.join(work, "loader.c")
    with open(src, "w") as f:
        f.write(LOADER)
    res = None
    if arch == "host":
        cc, prefix = os.environ.get("CC", "cc"), []
    else:
        cc, pre = QEMU[arch]
        prefix = pre.split()
    if shutil.which(cc) and (not prefix or shutil.which(prefix[0])):
        exe = os.path.join(work, "loader-" + arch)
        # no -lm on purpose: the module must bring its own libm dependency
        p = run([cc, "-O1", "-o", exe, src, "-ldl"])
        if p.returncode == 0:
            res = prefix + [exe]
    loaders[arch] = res
    return res


p = run([dlcc, "--list-targets"])
check(p.returncode == 0 and all(t in p.stdout for t in ("rpi4", "rpi5", "armv7", "apple-m1", "x86_64-v3")),
      "--list-targets lists the aliases")
p = run([dlcc, model, "--target=no-such-thing", "-o", os.path.join(work, "x.so")])
check(p.returncode != 0 and "no-such-thing" in p.stderr, "unknown target is an error naming it")
p = run([dlcc, model, "--target=nonsense", "-o", os.path.join(work, "x.so")])
check(p.returncode == 1 and "not supported by this build" in p.stderr,
      "unknown alias exits 1, 'not supported by this build'")
p = run([dlcc, model, "--backend=fortran", "-o", os.path.join(work, "x.so")])
check(p.returncode == 2, "unknown backend exits 2")

TARGETS = [("host", None), ("x86_64", "X86-64"), ("x86_64-v3", "X86-64"),
           ("aarch64", "AArch64"), ("rpi4", "AArch64"), ("rpi5", "AArch64"),
           ("aarch64-unknown-linux-gnu", "AArch64"), ("armv7", "ARM"),
           ("rpi3", "ARM"), ("rpizero2", "ARM")]
for tgt, machine in TARGETS:
    so = os.path.join(work, "m_%s.so" % tgt.replace("-", "_"))
    if os.path.exists(so):
        os.unlink(so)
    p = run([dlcc, model, "--target=" + tgt, "-o", so])
    check(p.returncode == 0 and os.path.exists(so), "--target=%s compiles (%s)" % (tgt, p.stderr.strip()[:300]))
    if p.returncode != 0:
        continue
    hdr = run(["readelf", "-h", so]).stdout
    if machine:
        check(machine in hdr and "DYN" in hdr, "--target=%s is an ELF shared object for %s" % (tgt, machine))
    dyn = run(["readelf", "-d", so]).stdout
    needed = sorted(l.split("[")[1].rstrip("]") for l in dyn.splitlines() if "(NEEDED)" in l)
    want = ["libc.so.6", "libm.so.6"] + (["libgcc_s.so.1"] if machine == "ARM" else [])
    check(needed == sorted(want), "--target=%s needs %s (has %s)" % (tgt, sorted(want), needed))
    syms = run(["nm", "-D", "--defined-only", so]).stdout.split()
    names = sorted(s for s in syms if not s.startswith("0") and len(s) > 1 and s not in "TtDdRrBbVvWw")
    stem = os.path.basename(so)[:-3]
    want = sorted(["dlcc_module_v1"] + ["%s_%s" % (stem, e) for e in ("bind", "workspace_size", "output_shape", "run")])
    check(names == want, "--target=%s exports only %s (has %s)" % (tgt, want, names))
    arch = "host" if machine in (None, "X86-64") else ("aarch64" if machine == "AArch64" else "arm")
    if tgt == "x86_64-v3":
        cpu = open("/proc/cpuinfo").read()
        if " avx2 " not in cpu or " fma " not in cpu:
            continue
    ld = loader(arch)
    if ld:
        p = run(ld + [so])
        check(p.returncode == 0, "--target=%s loads with dlopen in a process without libm (%s)" % (
            tgt, (p.stdout + p.stderr).strip()))

# C backend for a cross target: with the cross gcc, or an error naming it
so = os.path.join(work, "c_rpi4.so")
p = run([dlcc, model, "--backend=c", "--target=rpi4", "-o", so])
if shutil.which("aarch64-linux-gnu-gcc"):
    check(p.returncode == 0 and "AArch64" in run(["readelf", "-h", so]).stdout,
          "--backend=c --target=rpi4 builds with aarch64-linux-gnu-gcc")
else:
    check(p.returncode != 0 and "aarch64-linux-gnu-gcc" in p.stderr,
          "--backend=c --target=rpi4 names the missing cross compiler")
p = run([dlcc, model, "--backend=c", "--target=apple-m1", "-o", os.path.join(work, "c_m1.dylib")])
check(p.returncode != 0 and "llvm" in p.stderr, "--backend=c --target=apple-m1 is refused, pointing to llvm")
p = run([dlcc, model, "--emit=c", "--target=armv7", "-o", os.path.join(work, "src_v7.c")])
check(p.returncode == 0 and os.path.exists(os.path.join(work, "src_v7.c")), "--emit=c works for any target")

# a failing link leaves nothing behind
d = os.path.join(work, "atomic")
shutil.rmtree(d, ignore_errors=True)
os.makedirs(d)
env = dict(os.environ, DLCC_LLD="false")
p = run([dlcc, model, "--target=rpi4", "-o", os.path.join(d, "m.so")], env=env)
check(p.returncode != 0 and os.listdir(d) == [], "failed link leaves no files (%s)" % os.listdir(d))

print("%d passed, %d failed" % (checks - failed, failed))
sys.exit(1 if failed else 0)
