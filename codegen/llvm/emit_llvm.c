/*
 * emit_llvm.c - the LLVM backend: renders the same KProgram and storage plan
 * as the C backend into LLVM IR through the LLVM C API, optimizes it for the
 * target triple/CPU/features, writes an object file and links it with LLD
 * into a shared object (ELF .so, or a Mach-O .dylib for Apple targets).
 *
 * The module has the ABI of include/dlcc/dlcc_module.h and the same
 * behaviour as the C backend's: one internal function per kernel (buffers
 * noalias unless the plan gives two of them the same storage), the
 * prefixed entry points <P>_bind/_workspace_size/_output_shape/_run, and the
 * descriptor returned by the one exported symbol dlcc_module_v1.  Locals live
 * in allocas that the optimizer promotes.  Math uses LLVM intrinsics where
 * they lower inline (sqrt, fabs, floor, ceil, rint) and libm otherwise
 * (expf, logf, tanhf, erff, sinf, cosf, powf, fmodf).
 *
 * Linking needs no sysroot: the libc/libm dependencies are recorded by
 * linking against stub shared objects, generated here, whose only content
 * is their soname.
 */
#include "codegen/llvm/targets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/c/emit_c.h"
#include "dlcc/dlcc_module.h"

/* ---- state -------------------------------------------------------------- */

typedef struct LEmit {
  DlCtx *ctx;
  DlStatus st;
  LLVMContextRef lc;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  LLVMTargetDataRef td;
  LLVMTypeRef i1, i8, i16, i32, i64, f16, f32, f64, ptr, voidt, intptr;
  LLVMTypeRef tensor_t, io_t, desc_t;
  /* current kernel */
  const Kernel *k;
  LLVMValueRef fn;
  LLVMValueRef *bufs; /* kernel params */
  LLVMValueRef symp;
  LLVMValueRef *vars; /* allocas */
  LLVMValueRef h2f, f2h, bf2f, f2bf, powi;
  bool contract; /* fuse a*b+c into FMAs (-O2 and up, like the C backend) */
} LEmit;

static void lbad(LEmit *e, const char *what) {
  if (e->st == DL_OK)
    e->st = dl_error(e->ctx, DL_ERR_UNSUPPORTED, "LLVM backend: kernel %s: %s",
                     e->k ? e->k->name : "?", what);
}

static bool is_flt(DlDType t) {
  return t == DL_F32 || t == DL_F64 || t == DL_F16 || t == DL_BF16;
}
static bool is_unsigned(DlDType t) {
  return t == DL_U8 || t == DL_U16 || t == DL_U32 || t == DL_U64 ||
         t == DL_BOOL;
}
static int int_bits(DlDType t) {
  switch (t) {
  case DL_I8:
  case DL_U8:
  case DL_BOOL:
    return 8;
  case DL_I16:
  case DL_U16:
    return 16;
  case DL_I32:
  case DL_U32:
    return 32;
  case DL_I64:
  case DL_U64:
    return 64;
  default:
    return 0;
  }
}

/* Register type of a dtype (half/bfloat are computed in float). */
static LLVMTypeRef rtype(LEmit *e, DlDType t) {
  switch (t) {
  case DL_F32:
  case DL_F16:
  case DL_BF16:
    return e->f32;
  case DL_F64:
    return e->f64;
  default:
    switch (int_bits(t)) {
    case 8:
      return e->i8;
    case 16:
      return e->i16;
    case 32:
      return e->i32;
    case 64:
      return e->i64;
    }
  }
  return NULL;
}
/* Storage type in buffers. */
static LLVMTypeRef stype(LEmit *e, DlDType t) {
  if (t == DL_F16 || t == DL_BF16)
    return e->i16;
  return rtype(e, t);
}

static LLVMValueRef ci64(LEmit *e, int64_t v) {
  return LLVMConstInt(e->i64, (unsigned long long)v, 1);
}
static LLVMValueRef ci32(LEmit *e, int64_t v) {
  return LLVMConstInt(e->i32, (unsigned long long)v, 1);
}

static LLVMValueRef get_fn(LEmit *e, const char *name, LLVMTypeRef ret,
                           LLVMTypeRef *params, unsigned n) {
  LLVMValueRef f = LLVMGetNamedFunction(e->m, name);
  if (!f)
    f = LLVMAddFunction(e->m, name, LLVMFunctionType(ret, params, n, 0));
  return f;
}
static LLVMValueRef call(LEmit *e, LLVMValueRef f, LLVMValueRef *args,
                         unsigned n) {
  return LLVMBuildCall2(e->b, LLVMGlobalGetValueType(f), f, args, n, "");
}
static LLVMValueRef intrin1(LEmit *e, const char *base, LLVMTypeRef t,
                            LLVMValueRef a) {
  unsigned id = LLVMLookupIntrinsicID(base, strlen(base));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->m, id, &t, 1);
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->lc, id, &t, 1), f, &a, 1,
                        "");
}
static LLVMValueRef libm1(LEmit *e, const char *fn, bool single,
                          LLVMValueRef a) {
  char name[32];
  snprintf(name, sizeof name, "%s%s", fn, single ? "f" : "");
  LLVMTypeRef t = single ? e->f32 : e->f64;
  LLVMValueRef f = get_fn(e, name, t, &t, 1);
  return call(e, f, &a, 1);
}
static LLVMValueRef libm2(LEmit *e, const char *fn, bool single, LLVMValueRef a,
                          LLVMValueRef b) {
  char name[32];
  snprintf(name, sizeof name, "%s%s", fn, single ? "f" : "");
  LLVMTypeRef t = single ? e->f32 : e->f64;
  LLVMTypeRef ps[2] = {t, t};
  LLVMValueRef f = get_fn(e, name, t, ps, 2);
  LLVMValueRef args[2] = {a, b};
  return call(e, f, args, 2);
}

/* Builds a new internal function and positions the builder at its entry. */
static LLVMValueRef begin_fn(LEmit *e, const char *name, LLVMTypeRef ret,
                             LLVMTypeRef *ps, unsigned n, bool exported) {
  LLVMValueRef f = LLVMAddFunction(e->m, name, LLVMFunctionType(ret, ps, n, 0));
  if (exported) {
    LLVMSetLinkage(f, LLVMExternalLinkage);
    LLVMSetVisibility(f, LLVMDefaultVisibility);
  } else {
    LLVMSetLinkage(f, LLVMInternalLinkage);
  }
  unsigned kind = LLVMGetEnumAttributeKindForName("nounwind", 8);
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(e->lc, kind, 0));
  LLVMPositionBuilderAtEnd(e->b,
                           LLVMAppendBasicBlockInContext(e->lc, f, "entry"));
  return f;
}

/* ---- conversions (the C backend's semantics) ---------------------------- */

/* C conversion of v from dtype `from` to dtype `to` (register types). */
static LLVMValueRef conv(LEmit *e, LLVMValueRef v, DlDType from, DlDType to) {
  LLVMTypeRef ft = rtype(e, from), tt = rtype(e, to);
  if (!ft || !tt) {
    lbad(e, "unsupported dtype in a conversion");
    return LLVMGetUndef(tt ? tt : e->i64);
  }
  if (to == DL_BOOL && from != DL_BOOL) {
    LLVMValueRef c =
        is_flt(from)
            ? LLVMBuildFCmp(e->b, LLVMRealUNE, v, LLVMConstReal(ft, 0), "")
            : LLVMBuildICmp(e->b, LLVMIntNE, v, LLVMConstInt(ft, 0, 0), "");
    return LLVMBuildZExt(e->b, c, e->i8, "");
  }
  if (ft == tt)
    return v;
  if (is_flt(from) && is_flt(to))
    return ft == e->f32 ? LLVMBuildFPExt(e->b, v, tt, "")
                        : LLVMBuildFPTrunc(e->b, v, tt, "");
  if (!is_flt(from) && is_flt(to))
    return is_unsigned(from) ? LLVMBuildUIToFP(e->b, v, tt, "")
                             : LLVMBuildSIToFP(e->b, v, tt, "");
  if (is_flt(from)) {
    /* NaN -> 0, saturate to the 64-bit range, then wrap (interpreter). */
    LLVMValueRef r;
    if (to == DL_U64) {
      LLVMValueRef zero = LLVMConstReal(ft, 0);
      LLVMValueRef neg = LLVMBuildFCmp(e->b, LLVMRealOLE, v, zero, "");
      LLVMValueRef big =
          LLVMBuildFCmp(e->b, LLVMRealOGT, v, LLVMConstReal(ft, -9.2e18), "");
      LLVMValueRef s = intrin1(e, "llvm.fptosi.sat", e->i64, v);
      LLVMTypeRef ts[2] = {e->i64, ft};
      unsigned id = LLVMLookupIntrinsicID("llvm.fptoui.sat", 15);
      LLVMValueRef fu = LLVMGetIntrinsicDeclaration(e->m, id, ts, 2);
      LLVMValueRef u = LLVMBuildCall2(
          e->b, LLVMIntrinsicGetType(e->lc, id, ts, 2), fu, &v, 1, "");
      LLVMValueRef negv = LLVMBuildSelect(e->b, big, s, ci64(e, 0), "");
      r = LLVMBuildSelect(e->b, neg, negv, u, "");
    } else {
      LLVMTypeRef ts[2] = {e->i64, ft};
      unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
      LLVMValueRef fs = LLVMGetIntrinsicDeclaration(e->m, id, ts, 2);
      r = LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->lc, id, ts, 2), fs, &v,
                         1, "");
    }
    return tt == e->i64 ? r : LLVMBuildTrunc(e->b, r, tt, "");
  }
  /* int -> int */
  if (int_bits(from) > int_bits(to))
    return LLVMBuildTrunc(e->b, v, tt, "");
  return is_unsigned(from) ? LLVMBuildZExt(e->b, v, tt, "")
                           : LLVMBuildSExt(e->b, v, tt, "");
}

/* The C usual arithmetic conversions, for two operand dtypes. */
static DlDType common_type(DlDType a, DlDType b) {
  if (is_flt(a) || is_flt(b)) {
    if (a == DL_F64 || b == DL_F64)
      return DL_F64;
    return DL_F32;
  }
  int ba = int_bits(a), bb = int_bits(b);
  if (ba < 32) {
    a = DL_I32;
    ba = 32;
  }
  if (bb < 32) {
    b = DL_I32;
    bb = 32;
  }
  if (ba == bb)
    return (is_unsigned(a) || is_unsigned(b)) ? (ba == 64 ? DL_U64 : DL_U32)
                                              : a;
  return ba > bb ? a : b;
}

/* ---- f16 / bf16 helpers (same bit manipulation as the C backend) -------- */

static LLVMValueRef mk_h2f(LEmit *e) {
  LLVMBasicBlockRef save = LLVMGetInsertBlock(e->b);
  LLVMValueRef f = begin_fn(e, "dl_h2f", e->f32, &e->i16, 1, false);
  LLVMBuilderRef b = e->b;
  LLVMValueRef h = LLVMBuildZExt(b, LLVMGetParam(f, 0), e->i32, "");
  LLVMValueRef s =
      LLVMBuildShl(b, LLVMBuildAnd(b, h, ci32(e, 0x8000), ""), ci32(e, 16), "");
  LLVMValueRef ex =
      LLVMBuildAnd(b, LLVMBuildLShr(b, h, ci32(e, 10), ""), ci32(e, 0x1f), "");
  LLVMValueRef m = LLVMBuildAnd(b, h, ci32(e, 0x3ff), "");
  /* subnormal: (float)m * 2^-24 with the sign or'ed in */
  LLVMValueRef sub =
      LLVMBuildFMul(b, LLVMBuildUIToFP(b, m, e->f32, ""),
                    LLVMConstReal(e->f32, 5.9604644775390625e-8), "");
  sub = LLVMBuildOr(b, LLVMBuildBitCast(b, sub, e->i32, ""), s, "");
  LLVMValueRef m13 = LLVMBuildShl(b, m, ci32(e, 13), "");
  LLVMValueRef inf =
      LLVMBuildOr(b, LLVMBuildOr(b, s, ci32(e, 0x7f800000), ""), m13, "");
  LLVMValueRef nrm = LLVMBuildOr(
      b,
      LLVMBuildOr(b, s,
                  LLVMBuildShl(b, LLVMBuildAdd(b, ex, ci32(e, 112), ""),
                               ci32(e, 23), ""),
                  ""),
      m13, "");
  LLVMValueRef u = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntEQ, ex, ci32(e, 0), ""), sub,
      LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, ex, ci32(e, 31), ""), inf,
                      nrm, ""),
      "");
  LLVMBuildRet(b, LLVMBuildBitCast(b, u, e->f32, ""));
  LLVMPositionBuilderAtEnd(e->b, save);
  return f;
}

static LLVMValueRef mk_f2h(LEmit *e) {
  LLVMBasicBlockRef save = LLVMGetInsertBlock(e->b);
  LLVMValueRef f = begin_fn(e, "dl_f2h", e->i16, &e->f32, 1, false);
  LLVMBuilderRef b = e->b;
  LLVMValueRef u = LLVMBuildBitCast(b, LLVMGetParam(f, 0), e->i32, "");
  LLVMValueRef s = LLVMBuildAnd(b, LLVMBuildLShr(b, u, ci32(e, 16), ""),
                                ci32(e, 0x8000), "");
  LLVMValueRef a = LLVMBuildAnd(b, u, ci32(e, 0x7fffffff), "");
  LLVMValueRef nan = LLVMBuildOr(b, s, ci32(e, 0x7e00), "");
  LLVMValueRef inf = LLVMBuildOr(b, s, ci32(e, 0x7c00), "");
  LLVMValueRef v = LLVMBuildBitCast(b, a, e->f32, "");
  LLVMValueRef r =
      intrin1(e, "llvm.rint", e->f32,
              LLVMBuildFMul(b, v, LLVMConstReal(e->f32, 16777216.0), ""));
  LLVMValueRef sub = LLVMBuildOr(b, s, LLVMBuildFPToUI(b, r, e->i32, ""), "");
  LLVMValueRef rr = LLVMBuildAdd(
      b, LLVMBuildAdd(b, a, ci32(e, 0xfff), ""),
      LLVMBuildAnd(b, LLVMBuildLShr(b, a, ci32(e, 13), ""), ci32(e, 1), ""),
      "");
  LLVMValueRef nrm =
      LLVMBuildOr(b, s,
                  LLVMBuildLShr(b, LLVMBuildSub(b, rr, ci32(e, 0x38000000), ""),
                                ci32(e, 13), ""),
                  "");
  LLVMValueRef res = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntUGT, a, ci32(e, 0x7f800000), ""), nan,
      LLVMBuildSelect(
          b, LLVMBuildICmp(b, LLVMIntUGE, a, ci32(e, 0x477ff000), ""), inf,
          LLVMBuildSelect(
              b, LLVMBuildICmp(b, LLVMIntULT, a, ci32(e, 0x38800000), ""), sub,
              nrm, ""),
          ""),
      "");
  LLVMBuildRet(b, LLVMBuildTrunc(b, res, e->i16, ""));
  LLVMPositionBuilderAtEnd(e->b, save);
  return f;
}

static LLVMValueRef mk_bf2f(LEmit *e) {
  LLVMBasicBlockRef save = LLVMGetInsertBlock(e->b);
  LLVMValueRef f = begin_fn(e, "dl_bf2f", e->f32, &e->i16, 1, false);
  LLVMValueRef u =
      LLVMBuildShl(e->b, LLVMBuildZExt(e->b, LLVMGetParam(f, 0), e->i32, ""),
                   ci32(e, 16), "");
  LLVMBuildRet(e->b, LLVMBuildBitCast(e->b, u, e->f32, ""));
  LLVMPositionBuilderAtEnd(e->b, save);
  return f;
}

static LLVMValueRef mk_f2bf(LEmit *e) {
  LLVMBasicBlockRef save = LLVMGetInsertBlock(e->b);
  LLVMValueRef f = begin_fn(e, "dl_f2bf", e->i16, &e->f32, 1, false);
  LLVMBuilderRef b = e->b;
  LLVMValueRef u = LLVMBuildBitCast(b, LLVMGetParam(f, 0), e->i32, "");
  LLVMValueRef isnan =
      LLVMBuildICmp(b, LLVMIntUGT, LLVMBuildAnd(b, u, ci32(e, 0x7fffffff), ""),
                    ci32(e, 0x7f800000), "");
  LLVMValueRef q =
      LLVMBuildOr(b, LLVMBuildLShr(b, u, ci32(e, 16), ""), ci32(e, 0x40), "");
  LLVMValueRef r = LLVMBuildLShr(
      b,
      LLVMBuildAdd(
          b, LLVMBuildAdd(b, u, ci32(e, 0x7fff), ""),
          LLVMBuildAnd(b, LLVMBuildLShr(b, u, ci32(e, 16), ""), ci32(e, 1), ""),
          ""),
      ci32(e, 16), "");
  LLVMBuildRet(
      b, LLVMBuildTrunc(b, LLVMBuildSelect(b, isnan, q, r, ""), e->i16, ""));
  LLVMPositionBuilderAtEnd(e->b, save);
  return f;
}

/* int64 power by squaring (dl_powi of the C backend). */
static LLVMValueRef mk_powi(LEmit *e) {
  LLVMBasicBlockRef save = LLVMGetInsertBlock(e->b);
  LLVMTypeRef ps[2] = {e->i64, e->i64};
  LLVMValueRef f = begin_fn(e, "dl_powi", e->i64, ps, 2, false);
  LLVMBuilderRef b = e->b;
  LLVMValueRef base = LLVMGetParam(f, 0), ex = LLVMGetParam(f, 1);
  LLVMBasicBlockRef negb = LLVMAppendBasicBlockInContext(e->lc, f, "neg");
  LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(e->lc, f, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->lc, f, "body");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->lc, f, "done");
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(b);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, ex, ci64(e, 0), ""), negb,
                  loop);
  LLVMPositionBuilderAtEnd(b, negb);
  LLVMValueRef odd = LLVMBuildICmp(
      b, LLVMIntNE, LLVMBuildSRem(b, ex, ci64(e, 2), ""), ci64(e, 0), "");
  LLVMValueRef m1 = LLVMBuildSelect(b, odd, ci64(e, -1), ci64(e, 1), "");
  LLVMValueRef r = LLVMBuildSelect(
      b, LLVMBuildICmp(b, LLVMIntEQ, base, ci64(e, 1), ""), ci64(e, 1),
      LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, base, ci64(e, -1), ""), m1,
                      ci64(e, 0), ""),
      "");
  LLVMBuildRet(b, r);
  LLVMPositionBuilderAtEnd(b, loop);
  LLVMValueRef pr = LLVMBuildPhi(b, e->i64, "r");
  LLVMValueRef pb = LLVMBuildPhi(b, e->i64, "b");
  LLVMValueRef pe = LLVMBuildPhi(b, e->i64, "e");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, pe, ci64(e, 0), ""), done,
                  body);
  LLVMPositionBuilderAtEnd(b, body);
  LLVMValueRef bit = LLVMBuildICmp(
      b, LLVMIntNE, LLVMBuildAnd(b, pe, ci64(e, 1), ""), ci64(e, 0), "");
  LLVMValueRef nr =
      LLVMBuildSelect(b, bit, LLVMBuildMul(b, pr, pb, ""), pr, "");
  LLVMValueRef nb = LLVMBuildMul(b, pb, pb, "");
  LLVMValueRef ne = LLVMBuildAShr(b, pe, ci64(e, 1), "");
  LLVMBuildBr(b, loop);
  LLVMValueRef iv[2];
  LLVMBasicBlockRef ib[2] = {entry, body};
  iv[0] = ci64(e, 1);
  iv[1] = nr;
  LLVMAddIncoming(pr, iv, ib, 2);
  iv[0] = base;
  iv[1] = nb;
  LLVMAddIncoming(pb, iv, ib, 2);
  iv[0] = ex;
  iv[1] = ne;
  LLVMAddIncoming(pe, iv, ib, 2);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRet(b, pr);
  LLVMPositionBuilderAtEnd(e->b, save);
  return f;
}

/* ---- expressions ----------------------------------------------------------
 */

static LLVMValueRef expr(LEmit *e, const KExpr *x);

/* Whether evaluating x unconditionally is safe (no loads, no division). */
static bool speculatable(const KExpr *x) {
  if (!x)
    return true;
  if (x->kind == KE_LOAD)
    return false;
  if (x->kind == KE_BINARY && (x->op == KB_DIV || x->op == KB_MOD) &&
      !is_flt(x->a ? x->a->dtype : x->dtype))
    return false;
  return speculatable(x->a) && speculatable(x->b) && speculatable(x->c);
}

static LLVMValueRef to_i1(LEmit *e, LLVMValueRef v, DlDType t) {
  if (is_flt(t))
    return LLVMBuildFCmp(e->b, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0),
                         "");
  return LLVMBuildICmp(e->b, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0),
                       "");
}

/* cond ? a : b with a and b (converted to dtype t) evaluated only when
 * taken if they are not speculatable. */
static LLVMValueRef lazy_select(LEmit *e, LLVMValueRef c, const KExpr *a,
                                const KExpr *b, DlDType t) {
  if (speculatable(a) && speculatable(b)) {
    LLVMValueRef va = conv(e, expr(e, a), a->dtype, t);
    LLVMValueRef vb = conv(e, expr(e, b), b->dtype, t);
    return LLVMBuildSelect(e->b, c, va, vb, "");
  }
  LLVMBasicBlockRef bt = LLVMAppendBasicBlockInContext(e->lc, e->fn, "sel.t");
  LLVMBasicBlockRef bf = LLVMAppendBasicBlockInContext(e->lc, e->fn, "sel.f");
  LLVMBasicBlockRef bj = LLVMAppendBasicBlockInContext(e->lc, e->fn, "sel.j");
  LLVMBuildCondBr(e->b, c, bt, bf);
  LLVMPositionBuilderAtEnd(e->b, bt);
  LLVMValueRef va = conv(e, expr(e, a), a->dtype, t);
  LLVMBasicBlockRef et = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, bj);
  LLVMPositionBuilderAtEnd(e->b, bf);
  LLVMValueRef vb = conv(e, expr(e, b), b->dtype, t);
  LLVMBasicBlockRef ef = LLVMGetInsertBlock(e->b);
  LLVMBuildBr(e->b, bj);
  LLVMPositionBuilderAtEnd(e->b, bj);
  LLVMValueRef phi = LLVMBuildPhi(e->b, rtype(e, t), "");
  LLVMValueRef vals[2] = {va, vb};
  LLVMBasicBlockRef blocks[2] = {et, ef};
  LLVMAddIncoming(phi, vals, blocks, 2);
  return phi;
}

static LLVMValueRef unary(LEmit *e, const KExpr *x) {
  DlDType t = x->a->dtype;
  LLVMValueRef a = expr(e, x->a);
  if (is_flt(t)) {
    bool single = t != DL_F64;
    LLVMTypeRef ft = rtype(e, t);
    LLVMValueRef r;
    switch (x->op) {
    case KU_NEG:
      r = LLVMBuildFNeg(e->b, a, "");
      break;
    case KU_NOT:
      return conv(e,
                  LLVMBuildZExt(e->b,
                                LLVMBuildFCmp(e->b, LLVMRealOEQ, a,
                                              LLVMConstReal(ft, 0), ""),
                                e->i32, ""),
                  DL_I32, x->dtype);
    case KU_ABS:
      r = intrin1(e, "llvm.fabs", ft, a);
      break;
    case KU_SQRT:
      r = intrin1(e, "llvm.sqrt", ft, a);
      break;
    case KU_FLOOR:
      r = intrin1(e, "llvm.floor", ft, a);
      break;
    case KU_CEIL:
      r = intrin1(e, "llvm.ceil", ft, a);
      break;
    case KU_ROUND:
      r = intrin1(e, "llvm.rint", ft, a);
      break;
    case KU_EXP:
      r = libm1(e, "exp", single, a);
      break;
    case KU_LOG:
      r = libm1(e, "log", single, a);
      break;
    case KU_TANH:
      r = libm1(e, "tanh", single, a);
      break;
    case KU_ERF:
      r = libm1(e, "erf", single, a);
      break;
    case KU_SIN:
      r = libm1(e, "sin", single, a);
      break;
    case KU_COS:
      r = libm1(e, "cos", single, a);
      break;
    default:
      lbad(e, "unknown unary op");
      return LLVMGetUndef(rtype(e, x->dtype));
    }
    return conv(e, r, t, x->dtype);
  }
  LLVMTypeRef it = rtype(e, t);
  LLVMValueRef zero = LLVMConstInt(it, 0, 0);
  switch (x->op) {
  case KU_NEG:
    return conv(e, LLVMBuildSub(e->b, zero, a, ""), t, x->dtype);
  case KU_ABS:
    if (is_unsigned(t))
      return conv(e, a, t, x->dtype);
    return conv(e,
                LLVMBuildSelect(e->b,
                                LLVMBuildICmp(e->b, LLVMIntSLT, a, zero, ""),
                                LLVMBuildSub(e->b, zero, a, ""), a, ""),
                t, x->dtype);
  case KU_NOT:
    return conv(e,
                LLVMBuildZExt(e->b, LLVMBuildICmp(e->b, LLVMIntEQ, a, zero, ""),
                              e->i32, ""),
                DL_I32, x->dtype);
  case KU_FLOOR:
  case KU_CEIL:
  case KU_ROUND:
    return conv(e, a, t, x->dtype);
  default:
    lbad(e, "float unary op on an integer");
    return LLVMGetUndef(rtype(e, x->dtype));
  }
}

static LLVMValueRef fminmax(LEmit *e, bool mn, LLVMValueRef a, LLVMValueRef b) {
  /* a != a ? a : b != b ? b : a < b ? a : b (NaN-propagating) */
  LLVMValueRef an = LLVMBuildFCmp(e->b, LLVMRealUNO, a, a, "");
  LLVMValueRef bn = LLVMBuildFCmp(e->b, LLVMRealUNO, b, b, "");
  LLVMValueRef lt =
      LLVMBuildFCmp(e->b, mn ? LLVMRealOLT : LLVMRealOGT, a, b, "");
  LLVMValueRef r = LLVMBuildSelect(e->b, lt, a, b, "");
  r = LLVMBuildSelect(e->b, bn, b, r, "");
  return LLVMBuildSelect(e->b, an, a, r, "");
}

static LLVMValueRef binary(LEmit *e, const KExpr *x) {
  DlDType ta = x->a->dtype, tb = x->b->dtype;
  /* logical ops: C && / || evaluate the right side only when needed */
  if (x->op == KB_AND || x->op == KB_OR) {
    LLVMValueRef ca = to_i1(e, expr(e, x->a), ta);
    LLVMValueRef r;
    if (speculatable(x->b)) {
      LLVMValueRef cb = to_i1(e, expr(e, x->b), tb);
      r = x->op == KB_AND ? LLVMBuildAnd(e->b, ca, cb, "")
                          : LLVMBuildOr(e->b, ca, cb, "");
    } else {
      LLVMBasicBlockRef from = LLVMGetInsertBlock(e->b);
      LLVMBasicBlockRef rb = LLVMAppendBasicBlockInContext(e->lc, e->fn, "rhs");
      LLVMBasicBlockRef jb = LLVMAppendBasicBlockInContext(e->lc, e->fn, "lj");
      if (x->op == KB_AND)
        LLVMBuildCondBr(e->b, ca, rb, jb);
      else
        LLVMBuildCondBr(e->b, ca, jb, rb);
      LLVMPositionBuilderAtEnd(e->b, rb);
      LLVMValueRef cb = to_i1(e, expr(e, x->b), tb);
      LLVMBasicBlockRef re = LLVMGetInsertBlock(e->b);
      LLVMBuildBr(e->b, jb);
      LLVMPositionBuilderAtEnd(e->b, jb);
      r = LLVMBuildPhi(e->b, e->i1, "");
      LLVMValueRef vals[2] = {LLVMConstInt(e->i1, x->op == KB_OR, 0), cb};
      LLVMBasicBlockRef bbs[2] = {from, re};
      LLVMAddIncoming(r, vals, bbs, 2);
    }
    return conv(e, LLVMBuildZExt(e->b, r, e->i32, ""), DL_I32, x->dtype);
  }
  if (x->op == KB_XOR) {
    LLVMValueRef ca = to_i1(e, expr(e, x->a), ta);
    LLVMValueRef cb = to_i1(e, expr(e, x->b), tb);
    return conv(e,
                LLVMBuildZExt(e->b, LLVMBuildXor(e->b, ca, cb, ""), e->i32, ""),
                DL_I32, x->dtype);
  }
  DlDType ct = common_type(ta, tb);
  LLVMValueRef a = conv(e, expr(e, x->a), ta, ct);
  LLVMValueRef b = conv(e, expr(e, x->b), tb, ct);
  bool fl = is_flt(ct), u = is_unsigned(ct), single = ct != DL_F64;
  LLVMValueRef r = NULL;
  LLVMRealPredicate fp = 0;
  LLVMIntPredicate ip = 0;
  switch (x->op) {
  case KB_ADD:
    r = fl ? LLVMBuildFAdd(e->b, a, b, "") : LLVMBuildAdd(e->b, a, b, "");
    break;
  case KB_SUB:
    r = fl ? LLVMBuildFSub(e->b, a, b, "") : LLVMBuildSub(e->b, a, b, "");
    break;
  case KB_MUL:
    r = fl ? LLVMBuildFMul(e->b, a, b, "") : LLVMBuildMul(e->b, a, b, "");
    break;
  default:
    break;
  }
  if (r && fl && e->contract && LLVMIsAInstruction(r) &&
      LLVMCanValueUseFastMathFlags(r))
    LLVMSetFastMathFlags(r, LLVMFastMathAllowContract);
  switch (x->op) {
  case KB_ADD:
  case KB_SUB:
  case KB_MUL:
    break;
  case KB_DIV:
    r = fl  ? LLVMBuildFDiv(e->b, a, b, "")
        : u ? LLVMBuildUDiv(e->b, a, b, "")
            : LLVMBuildSDiv(e->b, a, b, "");
    break;
  case KB_MOD:
    r = fl  ? libm2(e, "fmod", single, a, b)
        : u ? LLVMBuildURem(e->b, a, b, "")
            : LLVMBuildSRem(e->b, a, b, "");
    break;
  case KB_MIN:
  case KB_MAX: {
    bool mn = x->op == KB_MIN;
    if (fl) {
      r = fminmax(e, mn, a, b);
    } else {
      LLVMValueRef c = LLVMBuildICmp(e->b,
                                     mn ? (u ? LLVMIntULT : LLVMIntSLT)
                                        : (u ? LLVMIntUGT : LLVMIntSGT),
                                     a, b, "");
      r = LLVMBuildSelect(e->b, c, a, b, "");
    }
    break;
  }
  case KB_POW:
    if (fl) {
      r = libm2(e, "pow", single, a, b);
    } else {
      if (!e->powi)
        e->powi = mk_powi(e);
      LLVMValueRef args[2] = {conv(e, a, ct, DL_I64), conv(e, b, ct, DL_I64)};
      r = call(e, e->powi, args, 2);
      return conv(e, r, DL_I64, x->dtype);
    }
    break;
  case KB_LT:
    fp = LLVMRealOLT;
    ip = u ? LLVMIntULT : LLVMIntSLT;
    break;
  case KB_LE:
    fp = LLVMRealOLE;
    ip = u ? LLVMIntULE : LLVMIntSLE;
    break;
  case KB_GT:
    fp = LLVMRealOGT;
    ip = u ? LLVMIntUGT : LLVMIntSGT;
    break;
  case KB_GE:
    fp = LLVMRealOGE;
    ip = u ? LLVMIntUGE : LLVMIntSGE;
    break;
  case KB_EQ:
    fp = LLVMRealOEQ;
    ip = LLVMIntEQ;
    break;
  case KB_NE:
    fp = LLVMRealUNE;
    ip = LLVMIntNE;
    break;
  default:
    lbad(e, "unknown binary op");
    return LLVMGetUndef(rtype(e, x->dtype) ? rtype(e, x->dtype) : e->i64);
  }
  if (!r) {
    LLVMValueRef c = fl ? LLVMBuildFCmp(e->b, fp, a, b, "")
                        : LLVMBuildICmp(e->b, ip, a, b, "");
    return conv(e, LLVMBuildZExt(e->b, c, e->i32, ""), DL_I32, x->dtype);
  }
  return conv(e, r, ct, x->dtype);
}

static LLVMValueRef expr(LEmit *e, const KExpr *x) {
  if (!x) {
    lbad(e, "missing expression");
    return LLVMGetUndef(e->i64);
  }
  if (e->st)
    return LLVMGetUndef(rtype(e, x->dtype) ? rtype(e, x->dtype) : e->i64);
  LLVMTypeRef t = rtype(e, x->dtype);
  if (!t) {
    lbad(e, "unsupported dtype in expression");
    return LLVMGetUndef(e->i64);
  }
  switch (x->kind) {
  case KE_INT:
    if (is_flt(x->dtype))
      return LLVMConstReal(t, (double)x->i);
    if (x->dtype == DL_BOOL)
      return LLVMConstInt(t, x->i != 0, 0);
    return LLVMConstInt(t, (unsigned long long)x->i, 1);
  case KE_FLOAT:
    if (is_flt(x->dtype)) {
      double v = x->f;
      if (x->dtype != DL_F64)
        v = (double)(float)v;
      return LLVMConstReal(t, v);
    }
    if (x->dtype == DL_BOOL)
      return LLVMConstInt(t, x->f != 0, 0);
    return LLVMConstInt(t, (unsigned long long)(int64_t)x->f, 1);
  case KE_VAR:
    if (x->i < 0 || x->i >= e->k->nvars || !e->vars[x->i]) {
      lbad(e, "use of an undeclared variable");
      return LLVMGetUndef(t);
    }
    return conv(e,
                LLVMBuildLoad2(e->b, rtype(e, e->k->vars[x->i].dtype),
                               e->vars[x->i], ""),
                e->k->vars[x->i].dtype, x->dtype);
  case KE_SYM: {
    LLVMValueRef idx = ci64(e, x->i);
    LLVMValueRef p = LLVMBuildGEP2(e->b, e->i64, e->symp, &idx, 1, "");
    return conv(e, LLVMBuildLoad2(e->b, e->i64, p, ""), DL_I64, x->dtype);
  }
  case KE_LOAD: {
    if (x->i < 0 || x->i >= e->k->nbufs) {
      lbad(e, "load from a buffer out of range");
      return LLVMGetUndef(t);
    }
    DlDType bt = e->k->bufs[x->i].dtype;
    LLVMTypeRef st = stype(e, bt);
    if (!st) {
      lbad(e, "unsupported buffer dtype");
      return LLVMGetUndef(t);
    }
    LLVMValueRef idx = conv(e, expr(e, x->a), x->a->dtype, DL_I64);
    LLVMValueRef p = LLVMBuildGEP2(e->b, st, e->bufs[x->i], &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(e->b, st, p, "");
    if (bt == DL_F16) {
      if (!e->h2f)
        e->h2f = mk_h2f(e);
      v = call(e, e->h2f, &v, 1);
    } else if (bt == DL_BF16) {
      if (!e->bf2f)
        e->bf2f = mk_bf2f(e);
      v = call(e, e->bf2f, &v, 1);
    }
    return conv(e, v, bt, x->dtype);
  }
  case KE_UNARY:
    if (!x->a) {
      lbad(e, "unary without operand");
      return LLVMGetUndef(t);
    }
    return unary(e, x);
  case KE_BINARY:
    if (!x->a || !x->b) {
      lbad(e, "binary without operands");
      return LLVMGetUndef(t);
    }
    return binary(e, x);
  case KE_SELECT: {
    if (!x->a || !x->b || !x->c) {
      lbad(e, "select without operands");
      return LLVMGetUndef(t);
    }
    LLVMValueRef c = to_i1(e, expr(e, x->a), x->a->dtype);
    return lazy_select(e, c, x->b, x->c, x->dtype);
  }
  case KE_CAST:
    if (!x->a) {
      lbad(e, "cast without operand");
      return LLVMGetUndef(t);
    }
    return conv(e, expr(e, x->a), x->a->dtype, x->dtype);
  default:
    lbad(e, "unknown expression kind");
    return LLVMGetUndef(t);
  }
}

/* ---- statements and kernels ------------------------------------------------
 */

static LLVMValueRef var_slot(LEmit *e, int var) {
  if (var < 0 || var >= e->k->nvars || !rtype(e, e->k->vars[var].dtype)) {
    lbad(e, "bad local variable");
    return NULL;
  }
  if (!e->vars[var]) {
    /* allocas go to the entry block so that mem2reg/SROA promote them */
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(e->lc);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(e->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
      LLVMPositionBuilderBefore(eb, first);
    else
      LLVMPositionBuilderAtEnd(eb, entry);
    e->vars[var] = LLVMBuildAlloca(eb, rtype(e, e->k->vars[var].dtype), "");
    LLVMDisposeBuilder(eb);
  }
  return e->vars[var];
}

static void stmt(LEmit *e, const KStmt *s) {
  if (!s || e->st)
    return;
  const Kernel *k = e->k;
  switch (s->kind) {
  case KS_BLOCK:
    for (int i = 0; i < s->n; i++)
      stmt(e, s->items[i]);
    break;
  case KS_FOR: {
    LLVMValueRef slot = var_slot(e, s->var);
    if (!slot)
      return;
    if (!s->extent || !s->body) {
      lbad(e, "loop without extent or body");
      return;
    }
    DlDType vt = k->vars[s->var].dtype;
    LLVMValueRef n = conv(e, expr(e, s->extent), s->extent->dtype, DL_I64);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->lc, e->fn, "for");
    LLVMBasicBlockRef body =
        LLVMAppendBasicBlockInContext(e->lc, e->fn, "body");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->lc, e->fn, "end");
    LLVMBuildBr(e->b, head);
    LLVMPositionBuilderAtEnd(e->b, head);
    LLVMValueRef iv = LLVMBuildPhi(e->b, e->i64, "i");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, iv, n, ""), body,
                    exit);
    LLVMPositionBuilderAtEnd(e->b, body);
    LLVMBuildStore(e->b, conv(e, iv, DL_I64, vt), slot);
    stmt(e, s->body);
    LLVMValueRef nx = LLVMBuildNSWAdd(e->b, iv, ci64(e, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
    LLVMBuildBr(e->b, head);
    LLVMValueRef vals[2] = {ci64(e, 0), nx};
    LLVMBasicBlockRef bbs[2] = {pre, latch};
    LLVMAddIncoming(iv, vals, bbs, 2);
    LLVMPositionBuilderAtEnd(e->b, exit);
    break;
  }
  case KS_IF: {
    if (!s->cond) {
      lbad(e, "if without condition");
      return;
    }
    LLVMValueRef c = to_i1(e, expr(e, s->cond), s->cond->dtype);
    LLVMBasicBlockRef bt = LLVMAppendBasicBlockInContext(e->lc, e->fn, "then");
    LLVMBasicBlockRef bf =
        s->els ? LLVMAppendBasicBlockInContext(e->lc, e->fn, "else") : NULL;
    LLVMBasicBlockRef bj = LLVMAppendBasicBlockInContext(e->lc, e->fn, "fi");
    LLVMBuildCondBr(e->b, c, bt, bf ? bf : bj);
    LLVMPositionBuilderAtEnd(e->b, bt);
    stmt(e, s->body);
    LLVMBuildBr(e->b, bj);
    if (bf) {
      LLVMPositionBuilderAtEnd(e->b, bf);
      stmt(e, s->els);
      LLVMBuildBr(e->b, bj);
    }
    LLVMPositionBuilderAtEnd(e->b, bj);
    break;
  }
  case KS_DECL:
  case KS_ASSIGN: {
    LLVMValueRef slot = var_slot(e, s->var);
    if (!slot || !s->value) {
      lbad(e, "bad assignment");
      return;
    }
    LLVMValueRef v = expr(e, s->value);
    LLVMBuildStore(e->b, conv(e, v, s->value->dtype, k->vars[s->var].dtype),
                   slot);
    break;
  }
  case KS_STORE: {
    if (s->buf < 0 || s->buf >= k->nbufs || !s->value || !s->index) {
      lbad(e, "store to a buffer out of range");
      return;
    }
    DlDType bt = k->bufs[s->buf].dtype;
    LLVMTypeRef st = stype(e, bt);
    LLVMValueRef idx = conv(e, expr(e, s->index), s->index->dtype, DL_I64);
    LLVMValueRef v = conv(e, expr(e, s->value), s->value->dtype,
                          bt == DL_F16 || bt == DL_BF16 ? DL_F32 : bt);
    if (bt == DL_F16) {
      if (!e->f2h)
        e->f2h = mk_f2h(e);
      v = call(e, e->f2h, &v, 1);
    } else if (bt == DL_BF16) {
      if (!e->f2bf)
        e->f2bf = mk_f2bf(e);
      v = call(e, e->f2bf, &v, 1);
    }
    LLVMValueRef p = LLVMBuildGEP2(e->b, st, e->bufs[s->buf], &idx, 1, "");
    LLVMBuildStore(e->b, v, p);
    break;
  }
  default:
    lbad(e, "unknown statement kind");
  }
}

static LLVMValueRef kernel(LEmit *e, const KPlan *plan, const Kernel *k) {
  DlArena *a = &e->ctx->arena;
  e->k = k;
  LLVMTypeRef *ps = dl_arena_alloc(a, (size_t)(k->nbufs + 1) * sizeof *ps);
  e->bufs = dl_arena_alloc(a, (size_t)(k->nbufs + 1) * sizeof *e->bufs);
  e->vars = dl_arena_alloc(a, (size_t)(k->nvars + 1) * sizeof *e->vars);
  if (!ps || !e->bufs || !e->vars) {
    e->st = dl_error(e->ctx, DL_ERR_NOMEM, "out of memory");
    return NULL;
  }
  for (int i = 0; i <= k->nbufs; i++)
    ps[i] = e->ptr;
  LLVMValueRef f =
      begin_fn(e, k->name, e->voidt, ps, (unsigned)k->nbufs + 1, false);
  e->fn = f;
  unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
  unsigned nc = LLVMGetEnumAttributeKindForName("nocapture", 9);
  unsigned ro = LLVMGetEnumAttributeKindForName("readonly", 8);
  for (int i = 0; i < k->nbufs; i++) {
    e->bufs[i] = LLVMGetParam(f, (unsigned)i);
    if (!stype(e, k->bufs[i].dtype)) {
      lbad(e, "unsupported buffer dtype");
      return NULL;
    }
    bool shared = false;
    for (int j = 0; j < k->nbufs && !shared; j++)
      shared = j != i && kplan_bufs_share(plan, k, i, j);
    if (!shared)
      LLVMAddAttributeAtIndex(f, (unsigned)i + 1,
                              LLVMCreateEnumAttribute(e->lc, na, 0));
    LLVMAddAttributeAtIndex(f, (unsigned)i + 1,
                            LLVMCreateEnumAttribute(e->lc, nc, 0));
    if (!k->bufs[i].written && !shared)
      LLVMAddAttributeAtIndex(f, (unsigned)i + 1,
                              LLVMCreateEnumAttribute(e->lc, ro, 0));
  }
  e->symp = LLVMGetParam(f, (unsigned)k->nbufs);
  stmt(e, k->body);
  LLVMBuildRetVoid(e->b);
  e->k = NULL;
  return f;
}

/* ---- entry points ----------------------------------------------------------
 */

/* Emits: if (cond) return code;  (code of the function's return type) */
static void ret_if(LEmit *e, LLVMValueRef cond, LLVMValueRef code) {
  LLVMBasicBlockRef fb = LLVMAppendBasicBlockInContext(e->lc, e->fn, "fail");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->lc, e->fn, "ok");
  LLVMBuildCondBr(e->b, cond, fb, ok);
  LLVMPositionBuilderAtEnd(e->b, fb);
  LLVMBuildRet(e->b, code);
  LLVMPositionBuilderAtEnd(e->b, ok);
}

static LLVMValueRef is_null(LEmit *e, LLVMValueRef p) {
  return LLVMBuildIsNull(e->b, p, "");
}

static LLVMValueRef tensor_field(LEmit *e, LLVMValueRef arr, int i, int field,
                                 LLVMTypeRef ft) {
  LLVMValueRef idx = ci64(e, i);
  LLVMValueRef t = LLVMBuildGEP2(e->b, e->tensor_t, arr, &idx, 1, "");
  LLVMValueRef p =
      LLVMBuildStructGEP2(e->b, e->tensor_t, t, (unsigned)field, "");
  return LLVMBuildLoad2(e->b, ft, p, "");
}

static LLVMValueRef load_i64(LEmit *e, LLVMValueRef base, int i) {
  LLVMValueRef idx = ci64(e, i);
  return LLVMBuildLoad2(e->b, e->i64,
                        LLVMBuildGEP2(e->b, e->i64, base, &idx, 1, ""), "");
}
static void store_i64(LEmit *e, LLVMValueRef v, LLVMValueRef base, int i) {
  LLVMValueRef idx = ci64(e, i);
  LLVMBuildStore(e->b, v, LLVMBuildGEP2(e->b, e->i64, base, &idx, 1, ""));
}

/* A dim polynomial over symbols in syms[] as an i64. */
static LLVMValueRef dim_val(LEmit *e, const DlDim *d, LLVMValueRef syms) {
  LLVMValueRef r = ci64(e, 0);
  for (int t = 0; t < d->nterms; t++) {
    const DlTerm *tm = &d->t[t];
    LLVMValueRef v = ci64(e, tm->coef);
    for (int k = 0; k < tm->nsym; k++)
      v = LLVMBuildMul(e->b, v, load_i64(e, syms, tm->sym[k]), "");
    r = LLVMBuildAdd(e->b, r, v, "");
  }
  return r;
}

static bool dim_single_sym(const DlDim *d, int *sym) {
  if (d->nterms == 1 && d->t[0].coef == 1 && d->t[0].nsym == 1) {
    *sym = d->t[0].sym[0];
    return true;
  }
  return false;
}

static LLVMValueRef build_bind(LEmit *e, KProgram *p, KPlan *plan,
                               const DlcSyms *s, const char *P) {
  DlGraph *g = p->g;
  LLVMTypeRef ps[2] = {e->ptr, e->ptr};
  char *name = dl_arena_printf(&e->ctx->arena, "%s_bind", P);
  LLVMValueRef f = begin_fn(e, name, e->i32, ps, 2, true);
  e->fn = f;
  LLVMValueRef in = LLVMGetParam(f, 0), syms = LLVMGetParam(f, 1);
  bool *bound = dl_arena_alloc(&e->ctx->arena, (size_t)(s->nbase + 1));
  LLVMValueRef bad = is_null(e, in);
  if (s->total)
    bad = LLVMBuildOr(e->b, bad, is_null(e, syms), "");
  ret_if(e, bad, ci32(e, 1));
  for (int i = 0; i < g->ninputs; i++) {
    const DlValue *v = g->values[g->inputs[i]];
    ret_if(e,
           LLVMBuildICmp(e->b, LLVMIntNE, tensor_field(e, in, i, 3, e->i32),
                         ci32(e, (int)v->dtype), ""),
           ci32(e, 3));
    ret_if(e,
           LLVMBuildICmp(e->b, LLVMIntNE, tensor_field(e, in, i, 2, e->i32),
                         ci32(e, v->rank), ""),
           ci32(e, 2));
    if (!v->rank)
      continue;
    LLVMValueRef shape = tensor_field(e, in, i, 1, e->ptr);
    ret_if(e, is_null(e, shape), ci32(e, 1));
    for (int d = 0; d < v->rank; d++) {
      int64_t c;
      int sym;
      if (dl_dim_is_const(&v->dims[d], &c)) {
        ret_if(e,
               LLVMBuildICmp(e->b, LLVMIntNE, load_i64(e, shape, d), ci64(e, c),
                             ""),
               ci32(e, 2));
      } else if (dim_single_sym(&v->dims[d], &sym) && bound && !bound[sym]) {
        bound[sym] = true;
        LLVMValueRef x = load_i64(e, shape, d);
        ret_if(e, LLVMBuildICmp(e->b, LLVMIntSLT, x, ci64(e, 0), ""),
               ci32(e, 2));
        store_i64(e, x, syms, sym);
      }
    }
  }
  for (int k = 0; k < s->nbase; k++) {
    if (bound && bound[k])
      continue;
    if (kplan_sym_used(p, plan, k)) {
      LLVMBuildRet(e->b, ci32(e, 2)); /* symbol is not an input dim */
      return f;
    }
    store_i64(e, ci64(e, 0), syms, k);
  }
  for (int i = 0; i < g->ninputs; i++) {
    const DlValue *v = g->values[g->inputs[i]];
    for (int d = 0; d < v->rank; d++) {
      if (dl_dim_is_const(&v->dims[d], NULL))
        continue;
      LLVMValueRef shape = tensor_field(e, in, i, 1, e->ptr);
      ret_if(e,
             LLVMBuildICmp(e->b, LLVMIntNE, load_i64(e, shape, d),
                           dim_val(e, &v->dims[d], syms), ""),
             ci32(e, 2));
    }
  }
  for (int k = 0; k < s->nderived; k++)
    store_i64(e, dim_val(e, &s->derived[k], syms), syms, s->nbase + k);
  LLVMBuildRet(e->b, ci32(e, 0));
  return f;
}

/* internal P_slots(sym, off) -> total bytes, and exported workspace_size */
static LLVMValueRef build_slots(LEmit *e, KPlan *plan, const char *P,
                                LLVMValueRef *ws_fn) {
  LLVMTypeRef ps[2] = {e->ptr, e->ptr};
  char *name = dl_arena_printf(&e->ctx->arena, "%s_slots", P);
  LLVMValueRef f = begin_fn(e, name, e->i64, ps, 2, false);
  e->fn = f;
  LLVMValueRef sym = LLVMGetParam(f, 0), off = LLVMGetParam(f, 1);
  LLVMValueRef o = ci64(e, 0);
  for (int i = 0; i < plan->nslots; i++) {
    const KSlot *sl = &plan->slots[i];
    store_i64(e, o, off, i);
    /* the slot's size: the largest of the sizes placed in it */
    LLVMValueRef bytes = dim_val(e, &sl->sizes[0], sym);
    for (int j = 1; j < sl->nsizes; j++) {
      LLVMValueRef t = dim_val(e, &sl->sizes[j], sym);
      bytes = LLVMBuildSelect(
          e->b, LLVMBuildICmp(e->b, LLVMIntUGT, t, bytes, ""), t, bytes, "");
    }
    o = LLVMBuildAnd(
        e->b,
        LLVMBuildAdd(e->b, LLVMBuildAdd(e->b, o, bytes, ""), ci64(e, 63), ""),
        ci64(e, ~(int64_t)63), "");
  }
  LLVMBuildRet(e->b, o);

  name = dl_arena_printf(&e->ctx->arena, "%s_workspace_size", P);
  LLVMValueRef w = begin_fn(e, name, e->i64, &e->ptr, 1, true);
  e->fn = w;
  LLVMTypeRef at = LLVMArrayType2(e->i64, plan->nslots ? plan->nslots : 1);
  LLVMValueRef buf = LLVMBuildAlloca(e->b, at, "off");
  LLVMValueRef args[2] = {LLVMGetParam(w, 0), buf};
  LLVMBuildRet(e->b, call(e, f, args, 2));
  *ws_fn = w;
  return f;
}

static LLVMValueRef build_output_shape(LEmit *e, DlGraph *g, const char *P) {
  LLVMTypeRef ps[3] = {e->i32, e->ptr, e->ptr};
  char *name = dl_arena_printf(&e->ctx->arena, "%s_output_shape", P);
  LLVMValueRef f = begin_fn(e, name, e->i32, ps, 3, true);
  e->fn = f;
  LLVMValueRef i = LLVMGetParam(f, 0), syms = LLVMGetParam(f, 1),
               dims = LLVMGetParam(f, 2);
  ret_if(e, is_null(e, dims), ci32(e, 1));
  LLVMBasicBlockRef def = LLVMAppendBasicBlockInContext(e->lc, f, "default");
  LLVMValueRef sw = LLVMBuildSwitch(e->b, i, def, (unsigned)g->noutputs);
  for (int o = 0; o < g->noutputs; o++) {
    const DlValue *v = g->values[g->outputs[o]];
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(e->lc, f, "case");
    LLVMAddCase(sw, ci32(e, o), bb);
    LLVMPositionBuilderAtEnd(e->b, bb);
    bool checked = false;
    for (int d = 0; d < v->rank; d++) {
      if (!dl_dim_is_const(&v->dims[d], NULL) && !checked) {
        ret_if(e, is_null(e, syms), ci32(e, 1));
        checked = true;
      }
      store_i64(e, dim_val(e, &v->dims[d], syms), dims, d);
    }
    LLVMBuildRet(e->b, ci32(e, 0));
  }
  LLVMPositionBuilderAtEnd(e->b, def);
  LLVMBuildRet(e->b, ci32(e, 1));
  return f;
}

typedef enum WMode { W_NONE, W_EMBED, W_SIDECAR } WMode;

static LLVMValueRef build_run(LEmit *e, KProgram *p, KPlan *plan,
                              const DlcSyms *s, const char *P, WMode wm,
                              LLVMValueRef bind, LLVMValueRef slots,
                              LLVMValueRef wglob, LLVMValueRef *kfns) {
  DlGraph *g = p->g;
  LLVMTypeRef ps[5] = {e->ptr, e->ptr, e->ptr, e->i64, e->ptr};
  char *name = dl_arena_printf(&e->ctx->arena, "%s_run", P);
  LLVMValueRef f = begin_fn(e, name, e->i32, ps, 5, true);
  e->fn = f;
  LLVMValueRef in = LLVMGetParam(f, 0), out = LLVMGetParam(f, 1),
               ws = LLVMGetParam(f, 2), wsb = LLVMGetParam(f, 3),
               weights = LLVMGetParam(f, 4);
  LLVMValueRef sym = LLVMBuildAlloca(
      e->b, LLVMArrayType2(e->i64, s->total ? s->total : 1), "sym");
  LLVMValueRef off = LLVMBuildAlloca(
      e->b, LLVMArrayType2(e->i64, plan->nslots ? plan->nslots : 1), "off");
  ret_if(e, LLVMBuildOr(e->b, is_null(e, in), is_null(e, out), ""), ci32(e, 1));
  LLVMValueRef bargs[2] = {in, sym};
  LLVMValueRef st = call(e, bind, bargs, 2);
  ret_if(e, LLVMBuildICmp(e->b, LLVMIntNE, st, ci32(e, 0), ""), st);
  LLVMValueRef *ind = dl_arena_alloc(
      &e->ctx->arena, (size_t)(g->ninputs + g->noutputs + 1) * sizeof *ind);
  for (int i = 0; i < g->ninputs; i++) {
    ind[i] = tensor_field(e, in, i, 0, e->ptr);
    ret_if(e, is_null(e, ind[i]), ci32(e, 1));
  }
  LLVMValueRef *outd = ind + g->ninputs;
  for (int o = 0; o < g->noutputs; o++) {
    outd[o] = tensor_field(e, out, o, 0, e->ptr);
    ret_if(e, is_null(e, outd[o]), ci32(e, 1));
  }
  LLVMValueRef sargs[2] = {sym, off};
  LLVMValueRef need = call(e, slots, sargs, 2);
  LLVMValueRef wsbad = LLVMBuildOr(
      e->b,
      LLVMBuildOr(e->b, is_null(e, ws),
                  LLVMBuildICmp(e->b, LLVMIntULT, wsb, need, ""), ""),
      LLVMBuildICmp(e->b, LLVMIntNE,
                    LLVMBuildAnd(e->b, LLVMBuildPtrToInt(e->b, ws, e->i64, ""),
                                 ci64(e, 63), ""),
                    ci64(e, 0), ""),
      "");
  ret_if(e,
         LLVMBuildAnd(e->b,
                      LLVMBuildICmp(e->b, LLVMIntNE, need, ci64(e, 0), ""),
                      wsbad, ""),
         ci32(e, 4));
  LLVMValueRef w = weights;
  if (wm == W_EMBED)
    w = LLVMBuildSelect(e->b, is_null(e, weights), wglob, weights, "");
  else if (wm == W_SIDECAR)
    ret_if(e, is_null(e, weights), ci32(e, 5));
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    LLVMValueRef *args =
        dl_arena_alloc(&e->ctx->arena, (size_t)(k->nbufs + 1) * sizeof *args);
    for (int b = 0; b < k->nbufs; b++) {
      const KStorage *sto = &plan->storage[k->bufs[b].value];
      LLVMValueRef idx;
      switch (sto->kind) {
      case KST_INPUT:
        args[b] = ind[sto->index];
        break;
      case KST_OUTPUT:
        args[b] = outd[sto->index];
        break;
      case KST_WEIGHT:
        idx = ci64(e, (int64_t)sto->offset);
        args[b] = LLVMBuildGEP2(e->b, e->i8, w, &idx, 1, "");
        break;
      case KST_WORK:
        idx = load_i64(e, off, sto->index);
        args[b] = LLVMBuildGEP2(e->b, e->i8, ws, &idx, 1, "");
        break;
      default:
        args[b] = LLVMConstPointerNull(e->ptr);
      }
    }
    args[k->nbufs] = sym;
    call(e, kfns[ki], args, (unsigned)k->nbufs + 1);
  }
  LLVMBuildRet(e->b, ci32(e, 0));
  return f;
}

static LLVMValueRef cstring(LEmit *e, const char *s) {
  LLVMValueRef init = LLVMConstStringInContext(e->lc, s ? s : "",
                                               (unsigned)strlen(s ? s : ""), 0);
  LLVMValueRef g = LLVMAddGlobal(e->m, LLVMTypeOf(init), ".str");
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

static LLVMValueRef private_const(LEmit *e, LLVMValueRef init, const char *nm) {
  LLVMValueRef g = LLVMAddGlobal(e->m, LLVMTypeOf(init), nm);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMInternalLinkage);
  return g;
}

static LLVMValueRef io_array(LEmit *e, const DlcSyms *s, DlGraph *g, int n,
                             const int *ids, const char *nm) {
  if (!n)
    return LLVMConstPointerNull(e->ptr);
  LLVMValueRef *el = dl_arena_alloc(&e->ctx->arena, (size_t)n * sizeof *el);
  for (int i = 0; i < n; i++) {
    const DlValue *v = g->values[ids[i]];
    LLVMValueRef dims[DLCC_MAX_RANK];
    for (int d = 0; d < DLCC_MAX_RANK; d++)
      dims[d] = ci64(e, d < v->rank ? dlc_desc_dim(s, &v->dims[d]) : 0);
    LLVMValueRef f[4] = {cstring(e, v->name), ci32(e, (int)v->dtype),
                         ci32(e, v->rank),
                         LLVMConstArray2(e->i64, dims, DLCC_MAX_RANK)};
    el[i] = LLVMConstNamedStruct(e->io_t, f, 4);
  }
  return private_const(e, LLVMConstArray2(e->io_t, el, (uint64_t)n), nm);
}

static void build_desc(LEmit *e, KProgram *p, KPlan *plan, const DlcSyms *s,
                       const char *P, WMode wm, LLVMValueRef *fns) {
  DlGraph *g = p->g;
  LLVMValueRef names = LLVMConstPointerNull(e->ptr);
  if (s->total) {
    LLVMValueRef *el =
        dl_arena_alloc(&e->ctx->arena, (size_t)s->total * sizeof *el);
    for (int i = 0; i < s->total; i++)
      el[i] = cstring(e, s->names[i]);
    names = private_const(e, LLVMConstArray2(e->ptr, el, (uint64_t)s->total),
                          "sym_names");
  }
  LLVMValueRef f[12] = {
      ci32(e, 1),
      cstring(e, P),
      ci32(e, g->ninputs),
      ci32(e, g->noutputs),
      ci32(e, s->total),
      io_array(e, s, g, g->ninputs, g->inputs, "inputs"),
      io_array(e, s, g, g->noutputs, g->outputs, "outputs"),
      names,
      LLVMConstInt(e->i64, wm == W_SIDECAR ? plan->weights_bytes : 0, 0),
      fns[0],
      fns[1],
      fns[2]};
  LLVMValueRef all[13];
  memcpy(all, f, sizeof f);
  all[12] = fns[3];
  LLVMValueRef desc =
      private_const(e, LLVMConstNamedStruct(e->desc_t, all, 13), "desc");
  LLVMValueRef fn = begin_fn(e, "dlcc_module_v1", e->ptr, NULL, 0, true);
  (void)fn;
  LLVMBuildRet(e->b, desc);
}

static void init_types(LEmit *e) {
  LLVMContextRef c = e->lc;
  e->i1 = LLVMInt1TypeInContext(c);
  e->i8 = LLVMInt8TypeInContext(c);
  e->i16 = LLVMInt16TypeInContext(c);
  e->i32 = LLVMInt32TypeInContext(c);
  e->i64 = LLVMInt64TypeInContext(c);
  e->f16 = LLVMHalfTypeInContext(c);
  e->f32 = LLVMFloatTypeInContext(c);
  e->f64 = LLVMDoubleTypeInContext(c);
  e->ptr = LLVMPointerTypeInContext(c, 0);
  e->voidt = LLVMVoidTypeInContext(c);
  e->tensor_t = LLVMStructCreateNamed(c, "dlcc_tensor");
  LLVMTypeRef tf[4] = {e->ptr, e->ptr, e->i32, e->i32};
  LLVMStructSetBody(e->tensor_t, tf, 4, 0);
  e->io_t = LLVMStructCreateNamed(c, "dlcc_io_desc");
  LLVMTypeRef iof[4] = {e->ptr, e->i32, e->i32,
                        LLVMArrayType2(e->i64, DLCC_MAX_RANK)};
  LLVMStructSetBody(e->io_t, iof, 4, 0);
  e->desc_t = LLVMStructCreateNamed(c, "dlcc_module_desc");
  LLVMTypeRef df[13] = {e->i32, e->ptr, e->i32, e->i32, e->i32, e->ptr, e->ptr,
                        e->ptr, e->i64, e->ptr, e->ptr, e->ptr, e->ptr};
  LLVMStructSetBody(e->desc_t, df, 13, 0);
}

/* Builds the whole module into e->m. */
static DlStatus build_module(LEmit *e, KProgram *p, KPlan *plan, const char *P,
                             WMode wm) {
  DlcSyms s;
  DL_TRY(dlc_collect_syms(p, &s));
  init_types(e);
  LLVMValueRef wglob = NULL;
  if (wm == W_EMBED) {
    LLVMValueRef init = LLVMConstStringInContext(
        e->lc, (const char *)plan->weights, (unsigned)plan->weights_bytes, 1);
    char *nm = dl_arena_printf(&e->ctx->arena, "%s_weights", P);
    wglob = LLVMAddGlobal(e->m, LLVMTypeOf(init), nm);
    LLVMSetInitializer(wglob, init);
    LLVMSetGlobalConstant(wglob, 1);
    LLVMSetLinkage(wglob, LLVMInternalLinkage);
    LLVMSetAlignment(wglob, 64);
  }
  LLVMValueRef *kfns =
      dl_arena_alloc(&e->ctx->arena, (size_t)(p->nkernels + 1) * sizeof *kfns);
  if (!kfns)
    return dl_error(e->ctx, DL_ERR_NOMEM, "out of memory");
  for (int k = 0; k < p->nkernels && !e->st; k++)
    kfns[k] = kernel(e, plan, p->kernels[k]);
  if (e->st)
    return e->st;
  LLVMValueRef fns[4];
  fns[0] = build_bind(e, p, plan, &s, P);
  LLVMValueRef slots = build_slots(e, plan, P, &fns[1]);
  fns[2] = build_output_shape(e, p->g, P);
  fns[3] = build_run(e, p, plan, &s, P, wm, fns[0], slots, wglob, kfns);
  build_desc(e, p, plan, &s, P, wm, fns);
  if (e->st)
    return e->st;
  char *msg = NULL;
  if (LLVMVerifyModule(e->m, LLVMReturnStatusAction, &msg)) {
    DlStatus st = dl_error(e->ctx, DL_ERR_INTERNAL,
                           "LLVM backend: invalid IR: %.400s", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return st;
  }
  LLVMDisposeMessage(msg);
  return DL_OK;
}

/* ---- target machine, files and linking ----------------------------------- */

static void init_llvm(void) {
  /* LLVM's own registries of every target it was built with; idempotent. */
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
}

typedef struct TM {
  LLVMTargetMachineRef tm;
  char *triple;
  bool macho, arm32;
} TM;

static DlStatus make_tm(DlCtx *ctx, const DlEmitRequest *rq, TM *out) {
  DlTarget t;
  DL_TRY(dl_target_resolve(ctx, rq->target, rq->cpu, rq->features, &t));
  init_llvm();
  char *triple, *cpu, *feat;
  if (dl_target_is_host(&t)) {
    char *dt = LLVMGetDefaultTargetTriple();
    char *hc = LLVMGetHostCPUName();
    char *hf = LLVMGetHostCPUFeatures();
    triple = dl_arena_strdup(&ctx->arena, dt);
    cpu = dl_arena_strdup(&ctx->arena, t.cpu ? t.cpu : hc);
    feat = dl_arena_strdup(&ctx->arena, t.features ? t.features : hf);
    LLVMDisposeMessage(dt);
    LLVMDisposeMessage(hc);
    LLVMDisposeMessage(hf);
  } else {
    triple = dl_arena_strdup(&ctx->arena, t.triple);
    cpu = dl_arena_strdup(&ctx->arena, t.cpu ? t.cpu : "");
    feat = dl_arena_strdup(&ctx->arena, t.features ? t.features : "");
  }
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    DlStatus st = dl_error(ctx, DL_ERR_INVALID,
                           "target '%s' not supported by this build (%s): %s",
                           t.name, triple, err ? err : "unknown");
    LLVMDisposeMessage(err);
    return st;
  }
  int ol = rq->opt_level;
  LLVMCodeGenOptLevel cg = ol <= 0   ? LLVMCodeGenLevelNone
                           : ol == 1 ? LLVMCodeGenLevelLess
                                     : LLVMCodeGenLevelAggressive;
  out->tm = LLVMCreateTargetMachine(target, triple, cpu, feat, cg, LLVMRelocPIC,
                                    LLVMCodeModelDefault);
  if (!out->tm)
    return dl_error(ctx, DL_ERR_USAGE,
                    "target '%s': cannot create a target "
                    "machine for cpu '%s'",
                    t.name, cpu);
  out->triple = triple;
  out->macho = t.macho;
  out->arm32 =
      (strncmp(triple, "arm", 3) == 0 && strncmp(triple, "arm64", 5) != 0) ||
      strncmp(triple, "thumb", 5) == 0;
  return DL_OK;
}

static int run_cmd(char *const *argv) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* First of the given programs found on PATH (or the LLD_<kind> env var). */
static const char *find_prog(const char *env, const char *const *names) {
  const char *v = getenv(env);
  if (v && *v)
    return v;
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/bin:/bin";
  for (int i = 0; names[i]; i++) {
    const char *p = path;
    while (*p) {
      const char *c = strchr(p, ':');
      size_t n = c ? (size_t)(c - p) : strlen(p);
      char buf[4096];
      snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, names[i]);
      if (access(buf, X_OK) == 0)
        return names[i];
      p += n + (c ? 1 : 0);
    }
  }
  return NULL;
}

static DlStatus emit_object(DlCtx *ctx, TM *tm, LLVMModuleRef m, int ol,
                            const char *path) {
  LLVMSetTarget(m, tm->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm->tm);
  LLVMSetModuleDataLayout(m, td);
  LLVMDisposeTargetData(td);
  if (ol > 0) {
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    LLVMErrorRef err =
        LLVMRunPasses(m, ol == 1 ? "default<O1>" : "default<O3>", tm->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (err) {
      char *msg = LLVMGetErrorMessage(err);
      DlStatus st =
          dl_error(ctx, DL_ERR_INTERNAL, "LLVM optimizer failed: %s", msg);
      LLVMDisposeErrorMessage(msg);
      return st;
    }
  }
  char *msg = NULL;
  if (LLVMTargetMachineEmitToFile(tm->tm, m, (char *)path, LLVMObjectFile,
                                  &msg)) {
    DlStatus st = dl_error(ctx, DL_ERR_IO, "LLVM could not write '%s': %s",
                           path, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return st;
  }
  return DL_OK;
}

/* Temp name next to `path`, created empty; NULL on error (recorded). */
static char *temp_next_to(DlCtx *ctx, const char *path, const char *suffix) {
  char *name = dl_arena_printf(&ctx->arena, "%s.tmpXXXXXX%s", path, suffix);
  int fd = mkstemps(name, (int)strlen(suffix));
  if (fd < 0) {
    dl_error(ctx, DL_ERR_IO, "cannot create a temporary file next to '%s': %s",
             path, strerror(errno));
    return NULL;
  }
  fchmod(fd, 0644);
  close(fd);
  return name;
}

static DlStatus write_file(DlCtx *ctx, const char *path, const void *data,
                           uint64_t n) {
  char *tmp = temp_next_to(ctx, path, "");
  if (!tmp)
    return DL_ERR_IO;
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(data, 1, (size_t)n, f) == n;
  if (f && fclose(f) != 0)
    ok = false;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s'", path);
  }
  return DL_OK;
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

/* Links obj into the shared object `so` for an ELF target. */
static DlStatus link_elf(DlCtx *ctx, TM *tm, const char *obj, const char *so,
                         const char *soname, const char *tmpdir) {
  static const char *const lld_names[] = {"ld.lld-19", "ld.lld", NULL};
  const char *lld = find_prog("DLCC_LLD", lld_names);
  if (!lld)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "LLVM backend: ld.lld-19 (or ld.lld) not found on PATH; "
                    "install lld-19 or use --backend=c");
  /* Stub libraries carrying only a soname: they give the module its
   * DT_NEEDED entries without a sysroot. */
  char *stub_o = dl_arena_printf(&ctx->arena, "%s/stub.o", tmpdir);
  LLVMContextRef sc = LLVMContextCreate();
  LLVMModuleRef sm = LLVMModuleCreateWithNameInContext("stub", sc);
  DlStatus st = emit_object(ctx, tm, sm, 0, stub_o);
  LLVMDisposeModule(sm);
  LLVMContextDispose(sc);
  if (st)
    return st;
  const char *libs[] = {"libm.so.6", "libc.so.6",
                        tm->arm32 ? "libgcc_s.so.1" : NULL};
  char *stubs[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3 && libs[i]; i++) {
    stubs[i] = dl_arena_printf(&ctx->arena, "%s/%s", tmpdir, libs[i]);
    char *argv[] = {(char *)lld, "-shared", "-soname", (char *)libs[i],
                    stub_o,      "-o",      stubs[i],  NULL};
    if (run_cmd(argv) != 0)
      return dl_error(ctx, DL_ERR_INTERNAL, "'%s' failed making a stub %s", lld,
                      libs[i]);
  }
  char *argv[32];
  int n = 0;
  argv[n++] = (char *)lld;
  argv[n++] = "-shared";
  argv[n++] = "-soname";
  argv[n++] = (char *)soname;
  argv[n++] = "--hash-style=both";
  argv[n++] = "--build-id";
  argv[n++] = "-z";
  argv[n++] = "noexecstack";
  argv[n++] = "-z";
  argv[n++] = "relro";
  argv[n++] = "-z";
  argv[n++] = "now";
  argv[n++] = "-O1";
  argv[n++] = "--gc-sections";
  argv[n++] = "-o";
  argv[n++] = (char *)so;
  argv[n++] = (char *)obj;
  argv[n++] = "--no-as-needed";
  for (int i = 0; i < 3; i++)
    if (stubs[i])
      argv[n++] = stubs[i];
  argv[n] = NULL;
  int rc = run_cmd(argv);
  if (rc != 0)
    return dl_error(ctx, DL_ERR_INTERNAL,
                    "linker '%s' failed (status %d) "
                    "building '%s'",
                    lld, rc, so);
  return DL_OK;
}

/* A text stub of libSystem: gives the dylib its LC_LOAD_DYLIB and binds
 * the libm/libc functions two-level; others resolve by dynamic lookup. */
static const char libsystem_tbd[] =
    "--- !tapi-tbd\n"
    "tbd-version: 4\n"
    "targets: [ arm64-macos ]\n"
    "install-name: '/usr/lib/libSystem.B.dylib'\n"
    "current-version: 1311\n"
    "exports:\n"
    "  - targets: [ arm64-macos ]\n"
    "    symbols: [ _expf, _exp, _logf, _log, _tanhf, _tanh, _erff, _erf,\n"
    "               _sinf, _sin, _cosf, _cos, _powf, _pow, _fmodf, _fmod,\n"
    "               _sqrtf, _sqrt, _floorf, _floor, _ceilf, _ceil, _rintf,\n"
    "               _rint, _memcpy, _memmove, _memset, _bzero,\n"
    "               _memset_pattern16, ___bzero, _exp2f, _exp2, _log2f,\n"
    "               _log2, _log10f, _log10, _expm1f, _log1pf ]\n"
    "...\n";

static DlStatus link_macho(DlCtx *ctx, const char *obj, const char *so,
                           const char *soname, const char *tmpdir) {
  static const char *const names[] = {"ld64.lld-19", "ld64.lld", NULL};
  const char *lld = find_prog("DLCC_LLD64", names);
  if (!lld)
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "LLVM backend: ld64.lld-19 (or ld64.lld) not found on "
                    "PATH; install lld-19");
  char *tbd = dl_arena_printf(&ctx->arena, "%s/libSystem.tbd", tmpdir);
  DL_TRY(write_file(ctx, tbd, libsystem_tbd, sizeof libsystem_tbd - 1));
  char *inst = dl_arena_printf(&ctx->arena, "@rpath/%s", soname);
  char *argv[] = {(char *)lld,
                  "-dylib",
                  "-arch",
                  "arm64",
                  "-platform_version",
                  "macos",
                  "11.0",
                  "11.0",
                  "-undefined",
                  "dynamic_lookup",
                  "-install_name",
                  inst,
                  "-dead_strip",
                  "-o",
                  (char *)so,
                  (char *)obj,
                  tbd,
                  NULL};
  int rc = run_cmd(argv);
  if (rc != 0)
    return dl_error(ctx, DL_ERR_INTERNAL,
                    "linker '%s' failed (status %d) "
                    "building '%s'",
                    lld, rc, so);
  return DL_OK;
}

static void rm_tree(const char *dir, const char *const *files, int n) {
  for (int i = 0; i < n; i++) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, files[i]);
    unlink(buf);
  }
  rmdir(dir);
}

static DlStatus emit(KProgram *p, KPlan *plan, const DlEmitRequest *rq,
                     bool link) {
  DlCtx *ctx = p->g->ctx;
  TM tm = {0};
  DL_TRY(make_tm(ctx, rq, &tm));
  WMode wm = plan->weights_bytes == 0 ? W_NONE
             : plan->weights_sidecar  ? W_SIDECAR
                                      : W_EMBED;
  if (wm == W_EMBED && plan->weights_bytes > 0xffffffffu) {
    LLVMDisposeTargetMachine(tm.tm);
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "LLVM backend: embedded weights above 4 GiB; use a "
                    "sidecar (--weights-sidecar-threshold)");
  }
  LEmit e = {.ctx = ctx, .contract = rq->opt_level >= 2};
  e.lc = LLVMContextCreate();
  e.m = LLVMModuleCreateWithNameInContext(rq->prefix, e.lc);
  e.b = LLVMCreateBuilderInContext(e.lc);
  DlStatus st = build_module(&e, p, plan, rq->prefix, wm);
  char *tmpdir = NULL, *obj = NULL, *so = NULL;
  if (st == DL_OK && !link) {
    obj = temp_next_to(ctx, rq->out_path, ".o");
    st = obj ? emit_object(ctx, &tm, e.m, rq->opt_level, obj) : DL_ERR_IO;
  } else if (st == DL_OK) {
    tmpdir = dl_arena_printf(&ctx->arena, "%s.tmpXXXXXX", rq->out_path);
    if (!mkdtemp(tmpdir)) {
      st = dl_error(ctx, DL_ERR_IO,
                    "cannot create a temporary folder next "
                    "to '%s': %s",
                    rq->out_path, strerror(errno));
      tmpdir = NULL;
    }
    if (st == DL_OK) {
      obj = dl_arena_printf(&ctx->arena, "%s/module.o", tmpdir);
      so = dl_arena_printf(&ctx->arena, "%s/module.so", tmpdir);
      st = emit_object(ctx, &tm, e.m, rq->opt_level, obj);
    }
  }
  LLVMDisposeBuilder(e.b);
  LLVMDisposeModule(e.m);
  LLVMContextDispose(e.lc);
  if (st == DL_OK && link) {
    const char *soname = base_name(rq->out_path);
    st = tm.macho ? link_macho(ctx, obj, so, soname, tmpdir)
                  : link_elf(ctx, &tm, obj, so, soname, tmpdir);
  }
  if (st == DL_OK && wm == W_SIDECAR)
    st = write_file(ctx, rq->sidecar_path, plan->weights, plan->weights_bytes);
  const char *out_tmp = link ? so : obj;
  if (st == DL_OK && rename(out_tmp, rq->out_path) != 0)
    st = dl_error(ctx, DL_ERR_IO, "cannot write '%s': %s", rq->out_path,
                  strerror(errno));
  if (!link && obj)
    unlink(obj);
  if (tmpdir) {
    static const char *const files[] = {
        "module.o",  "module.so",     "stub.o",       "libm.so.6",
        "libc.so.6", "libgcc_s.so.1", "libSystem.tbd"};
    rm_tree(tmpdir, files, 7);
  }
  LLVMDisposeTargetMachine(tm.tm);
  return st;
}

/* --emit=c with the LLVM backend writes an object file. */
static DlStatus emit_source(KProgram *p, KPlan *plan, const DlEmitRequest *rq) {
  return emit(p, plan, rq, false);
}
static DlStatus emit_shared(KProgram *p, KPlan *plan, const DlEmitRequest *rq) {
  return emit(p, plan, rq, true);
}

static const DlBackend llvm_backend = {"llvm", emit_source, emit_shared};

const DlBackend *dl_backend_llvm(void) {
  return &llvm_backend;
}
