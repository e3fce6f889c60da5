/*
 * nn.c - convolution, pooling and normalizations with statistics: Conv,
 * MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
 * BatchNormalization (inference), LRN.
 *
 * Convolution and pooling share one window geometry (NnGeo): per spatial
 * dim the kernel extent, stride, dilation, begin/end padding and the input
 * and output sizes.  Output sizes follow the ONNX formulas for explicit
 * pads, ceil_mode and auto_pad.  A symbolic spatial dim is accepted only
 * when the output size stays a polynomial (stride 1).
 *
 * Conv lowers to register blocks (ops/gemm_block.h): CONV_MR output
 * channels x up to 16 contiguous positions of the last spatial dim kept in
 * scalar locals over the reduction (kernel taps, then input channels), so
 * a C compiler's straight-line vectorizer makes vector multiply-adds of
 * them.  Per output row the positions whose taps all lie inside the input
 * are computed once before the blocks; the few border positions take
 * single checked columns.  A 1x1 convolution with stride 1 and no padding
 * runs over whole contiguous planes (a matrix product per image).  Bias
 * and the fused epilogue apply after the plain stores of each block.
 * A Conv whose weights passes/layout.c repacked into blocks of 16 output
 * channels ("dlcc.layout" = "OIhw16o") lowers instead to blocks of a few
 * positions x 16 channels with the channels as the vector dimension
 * (conv_lower_blocked).
 * Pooling keeps the innermost loop over contiguous output positions free
 * of conditions (valid ranges computed with min/max before the loop).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/gemm_block.h"
#include "ops/ops.h"

#define NN_MAX_SP (DL_MAX_RANK - 2)

typedef struct NnGeo {
  int nsp;               /* number of spatial dims */
  int64_t k[NN_MAX_SP];  /* kernel size */
  int64_t s[NN_MAX_SP];  /* stride */
  int64_t d[NN_MAX_SP];  /* dilation */
  int64_t pb[NN_MAX_SP]; /* padding at the start */
  int64_t pe[NN_MAX_SP]; /* padding at the end */
  DlDim in[NN_MAX_SP];   /* input spatial size */
  DlDim out[NN_MAX_SP];  /* output spatial size */
} NnGeo;

/* ---- small helpers ------------------------------------------------------ */

static bool nn_value_used(const DlGraph *g, int vid) {
  if (vid < 0)
    return false;
  if (g->values[vid]->is_output)
    return true;
  for (int i = 0; i < g->nnodes; i++) {
    const DlNode *m = g->nodes[i];
    if (m->dead)
      continue;
    for (int j = 0; j < m->nin; j++)
      if (m->in[j] == vid)
        return true;
  }
  return false;
}

static bool nn_numeric(DlDType t) {
  return dl_dtype_is_float(t) || dl_dtype_is_int(t);
}

static DlStatus nn_need_float(DlGraph *g, const DlNode *n, const DlValue *v,
                              const char *what) {
  if (!dl_dtype_is_float(v->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "%s has type %s; only floating types are supported",
                         what, dl_dtype_name(v->dtype));
  return DL_OK;
}

/* Reads an INTS attribute of exactly nsp entries (or dflt for all when
 * absent); all entries must be >= minv. */
static DlStatus nn_ints_attr(DlGraph *g, const DlNode *n, const char *name,
                             int nsp, int64_t dflt, int64_t minv,
                             int64_t *out) {
  const int64_t *v = NULL;
  int cnt = dl_attr_ints(n, name, &v);
  if (cnt < 0) {
    for (int i = 0; i < nsp; i++)
      out[i] = dflt;
    return DL_OK;
  }
  if (cnt != nsp)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "%s has %d entries, input has %d spatial dims", name,
                         cnt, nsp);
  for (int i = 0; i < nsp; i++) {
    if (v[i] < minv)
      return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                           "%s[%d] is %lld, must be >= %lld", name, i,
                           (long long)v[i], (long long)minv);
    out[i] = v[i];
  }
  return DL_OK;
}

static int64_t nn_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}
static int64_t nn_ceildiv(int64_t a, int64_t b) {
  return -nn_floordiv(-a, b);
}

/*
 * Fills geo from the attributes of a conv/pool node.  kernel[] (nsp
 * entries) is already known; x has rank nsp + 2.  ceil_mode applies to
 * explicit pads only.
 */
static DlStatus nn_geometry(DlGraph *g, const DlNode *n, const DlValue *x,
                            const int64_t *kernel, bool ceil_mode, NnGeo *geo) {
  DlCtx *ctx = g->ctx;
  int nsp = x->rank - 2;
  memset(geo, 0, sizeof *geo);
  geo->nsp = nsp;
  for (int i = 0; i < nsp; i++) {
    if (kernel[i] < 1)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "kernel_shape[%d] is %lld, must be >= 1", i,
                           (long long)kernel[i]);
    geo->k[i] = kernel[i];
    geo->in[i] = x->dims[i + 2];
  }
  DL_TRY(nn_ints_attr(g, n, "strides", nsp, 1, 1, geo->s));
  DL_TRY(nn_ints_attr(g, n, "dilations", nsp, 1, 1, geo->d));
  const char *ap = dl_attr_string(n, "auto_pad", "NOTSET");
  enum { AP_NOTSET, AP_SAME_UPPER, AP_SAME_LOWER, AP_VALID } mode;
  if (!strcmp(ap, "NOTSET") || !strcmp(ap, ""))
    mode = AP_NOTSET;
  else if (!strcmp(ap, "SAME_UPPER"))
    mode = AP_SAME_UPPER;
  else if (!strcmp(ap, "SAME_LOWER"))
    mode = AP_SAME_LOWER;
  else if (!strcmp(ap, "VALID"))
    mode = AP_VALID;
  else
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "auto_pad is '%s'; expected NOTSET, SAME_UPPER, "
                         "SAME_LOWER or VALID",
                         ap);
  if (mode == AP_NOTSET) {
    const int64_t *pads = NULL;
    int cnt = dl_attr_ints(n, "pads", &pads);
    if (cnt >= 0 && cnt != 2 * nsp)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "pads has %d entries, expected %d (2 per spatial "
                           "dim; input has %d spatial dims)",
                           cnt, 2 * nsp, nsp);
    for (int i = 0; i < nsp && cnt > 0; i++) {
      geo->pb[i] = pads[i];
      geo->pe[i] = pads[i + nsp];
      if (pads[i] < 0 || pads[i + nsp] < 0)
        return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                             "negative pads are not supported");
    }
  }
  for (int i = 0; i < nsp; i++) {
    int64_t dk = (geo->k[i] - 1) * geo->d[i] + 1; /* dilated extent */
    int64_t s = geo->s[i];
    int64_t in;
    if (dl_dim_is_const(&geo->in[i], &in)) {
      int64_t o;
      if (mode == AP_NOTSET) {
        int64_t span = in + geo->pb[i] + geo->pe[i] - dk;
        if (span < 0)
          return dl_error_node(
              ctx, n, DL_ERR_INVALID,
              "spatial dim %d: kernel extent %lld exceeds padded input %lld", i,
              (long long)dk, (long long)(in + geo->pb[i] + geo->pe[i]));
        if (ceil_mode) {
          o = nn_ceildiv(span, s) + 1;
          /* the last window must start inside the input or left padding */
          if ((o - 1) * s >= in + geo->pb[i])
            o--;
        } else {
          o = span / s + 1;
        }
      } else if (mode == AP_VALID) {
        if (in < dk)
          return dl_error_node(
              ctx, n, DL_ERR_INVALID,
              "spatial dim %d: kernel extent %lld exceeds input %lld", i,
              (long long)dk, (long long)in);
        o = (in - dk) / s + 1;
      } else {
        o = nn_ceildiv(in, s);
        int64_t total = (o - 1) * s + dk - in;
        if (total < 0)
          total = 0;
        geo->pb[i] = mode == AP_SAME_UPPER ? total / 2 : total - total / 2;
        geo->pe[i] = total - geo->pb[i];
      }
      if (o < 1)
        return dl_error_node(ctx, n, DL_ERR_INVALID,
                             "spatial dim %d: output size would be %lld", i,
                             (long long)o);
      geo->out[i] = dl_dim_const(o);
      continue;
    }
    /* symbolic input size: only stride 1 keeps the output a polynomial */
    if (s != 1) {
      char buf[64];
      dl_dim_print(buf, sizeof buf, &geo->in[i], g->syms);
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "spatial dim %d is symbolic (%s) and stride is "
                           "%lld; only stride 1 is supported for symbolic "
                           "sizes",
                           i, buf, (long long)s);
    }
    int64_t delta;
    if (mode == AP_NOTSET) {
      delta = geo->pb[i] + geo->pe[i] - dk + 1;
      /* stride 1: ceil == floor; the last-window rule depends on pads only */
      if (ceil_mode && geo->pe[i] >= dk)
        delta--;
    } else if (mode == AP_VALID) {
      delta = 1 - dk;
    } else {
      delta = 0;
      int64_t total = dk - 1;
      geo->pb[i] = mode == AP_SAME_UPPER ? total / 2 : total - total / 2;
      geo->pe[i] = total - geo->pb[i];
    }
    DlDim c = dl_dim_const(delta);
    if (!dl_dim_add(&geo->in[i], &c, &geo->out[i]))
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "spatial dim %d: output size is not representable",
                           i);
  }
  return DL_OK;
}

/* kernel_shape attribute for pools: required, one entry per spatial dim. */
static DlStatus nn_pool_kernel(DlGraph *g, const DlNode *n, const DlValue *x,
                               int64_t *kernel) {
  const int64_t *ks = NULL;
  int cnt = dl_attr_ints(n, "kernel_shape", &ks);
  if (cnt < 0)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "kernel_shape attribute is required");
  if (cnt != x->rank - 2)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "kernel_shape has %d dims, input has %d spatial dims",
                         cnt, x->rank - 2);
  for (int i = 0; i < cnt; i++)
    kernel[i] = ks[i];
  return DL_OK;
}

static DlStatus nn_need_spatial(DlGraph *g, const DlNode *n, const DlValue *x,
                                int min_sp) {
  if (x->rank < 2 + min_sp || x->rank > DL_MAX_RANK)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "input has rank %d; expected [N, C, spatial...] with "
                         "at least %d spatial dim(s)",
                         x->rank, min_sp);
  return DL_OK;
}

/* ---- shared lowering pieces -------------------------------------------- */

/* trunc-division based ceil for non-negative denominators, correct when the
 * result is clamped at 0 afterwards: for a <= 0 it yields a value <= 0. */
static KExpr *ke_ceildiv_clamp(KBuilder *kb, KExpr *a, int64_t s) {
  if (s == 1)
    return a;
  return ke_div(kb, ke_add(kb, a, ke_int(kb, s - 1)), ke_int(kb, s));
}

static KExpr *ke_imax(KBuilder *kb, KExpr *a, KExpr *b) {
  return ke_bin(kb, KB_MAX, a, b);
}
static KExpr *ke_imin(KBuilder *kb, KExpr *a, KExpr *b) {
  return ke_bin(kb, KB_MIN, a, b);
}

/*
 * Range [lo, lo + cnt) of output positions o (0 <= o < out) whose input
 * position o*s - pb + kpos is inside [0, in); kpos is the tap offset
 * (k*d).  Declares two I64 locals and returns their ids.
 */
static void nn_valid_range(KBuilder *kb, const NnGeo *geo, int i, KExpr *kpos,
                           int *lo_var, int *cnt_var) {
  int64_t s = geo->s[i];
  KExpr *a = ke_sub(kb, ke_int(kb, geo->pb[i]), kpos);
  KExpr *lo = ke_imax(kb, ke_int(kb, 0), ke_ceildiv_clamp(kb, a, s));
  KExpr *b = ke_add(kb, ke_dim(kb, &geo->in[i]), a);
  KExpr *hi = ke_imin(kb, ke_dim(kb, &geo->out[i]), ke_ceildiv_clamp(kb, b, s));
  *lo_var = kb_decl(kb, "lo", DL_I64, lo);
  *cnt_var =
      kb_decl(kb, "cnt", DL_I64,
              ke_imax(kb, ke_int(kb, 0), ke_sub(kb, hi, ke_var(kb, *lo_var))));
}

/* Input position o*s - pb + kpos for spatial dim i. */
static KExpr *nn_in_pos(KBuilder *kb, const NnGeo *geo, int i, KExpr *o,
                        KExpr *kpos) {
  return ke_add(
      kb,
      ke_sub(kb, ke_mul(kb, o, ke_int(kb, geo->s[i])), ke_int(kb, geo->pb[i])),
      kpos);
}

static KExpr *nn_in_range(KBuilder *kb, KExpr *pos, const DlDim *size) {
  return ke_bin(kb, KB_AND, ke_bin(kb, KB_GE, pos, ke_int(kb, 0)),
                ke_bin(kb, KB_LT, pos, ke_dim(kb, size)));
}

/* ---- Conv ---------------------------------------------------------------- */

/* The blocked weight layout chosen by passes/layout.c (see
 * conv_weight_geo and conv_lower_blocked). */
#define CONV_LAYOUT_ATTR "dlcc.layout"
#define CONV_LAYOUT_BLOCKED "OIhw16o"
#define CONV_OUT_ATTR "dlcc.out_channels"
#define CONV_BLOCK 16

/*
 * Weight geometry of a Conv: out channels m, input channels per group cw
 * and the kernel sizes.  With the attribute "dlcc.layout" = "OIhw16o"
 * (passes/layout.c) input W is the blocked weight
 * [group * ceil(m / group / 16)][cw][k...][16] and m comes from the INT
 * attribute "dlcc.out_channels"; otherwise W is [m][cw][k...].
 */
static DlStatus conv_weight_geo(DlGraph *g, const DlNode *n, const DlValue *x,
                                const DlValue *w, int64_t group, int64_t *m,
                                int64_t *cw, int64_t *kernel, bool *blocked) {
  DlCtx *ctx = g->ctx;
  int nsp = x->rank - 2;
  const char *lay = dl_attr_string(n, CONV_LAYOUT_ATTR, NULL);
  *blocked = false;
  if (lay) {
    if (strcmp(lay, CONV_LAYOUT_BLOCKED) != 0)
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "weight layout '%s' is not supported (only %s)", lay,
                           CONV_LAYOUT_BLOCKED);
    *blocked = true;
    *m = dl_attr_int(n, CONV_OUT_ATTR, -1);
    if (*m < 1 || group < 1 || *m % group != 0)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "blocked weight needs %s >= 1 divisible by group "
                           "(got %lld)",
                           CONV_OUT_ATTR, (long long)*m);
    int64_t nb, lanes, mg = *m / group;
    int64_t want = group * ((mg + CONV_BLOCK - 1) / CONV_BLOCK);
    if (w->rank != x->rank + 1 || !dl_dim_is_const(&w->dims[0], &nb) ||
        !dl_dim_is_const(&w->dims[1], cw) ||
        !dl_dim_is_const(&w->dims[w->rank - 1], &lanes) || nb != want ||
        lanes != CONV_BLOCK)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "blocked weight must have rank %d and shape "
                           "[%lld, C/group, k..., %d]",
                           x->rank + 1, (long long)want, CONV_BLOCK);
  } else {
    if (w->rank != x->rank)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "weight has rank %d, input has rank %d", w->rank,
                           x->rank);
    if (!dl_dim_is_const(&w->dims[0], m) || !dl_dim_is_const(&w->dims[1], cw))
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "weight channel dims are symbolic");
  }
  for (int i = 0; i < nsp; i++)
    if (!dl_dim_is_const(&w->dims[i + 2], &kernel[i]))
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "weight spatial dim %d is symbolic", i);
  return DL_OK;
}

DlStatus dl_infer_Conv(DlGraph *g, DlNode *n) {
  DlCtx *ctx = g->ctx;
  DlValue *x, *w, *b = NULL;
  DL_TRY(dl_need_input(g, n, 0, &x));
  DL_TRY(dl_need_input(g, n, 1, &w));
  if (dl_in(g, n, 2))
    DL_TRY(dl_need_input(g, n, 2, &b));
  DL_TRY(nn_need_spatial(g, n, x, 1));
  DL_TRY(nn_need_float(g, n, x, "input X"));
  if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "input types differ: X %s, W %s, B %s",
                         dl_dtype_name(x->dtype), dl_dtype_name(w->dtype),
                         b ? dl_dtype_name(b->dtype) : "-");
  int nsp = x->rank - 2;
  int64_t group = dl_attr_int(n, "group", 1);
  int64_t cin, m, cw;
  if (group < 1)
    return dl_error_node(ctx, n, DL_ERR_INVALID, "group is %lld",
                         (long long)group);
  if (!dl_dim_is_const(&x->dims[1], &cin))
    return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                         "input channel dim is symbolic");
  int64_t kernel[NN_MAX_SP];
  bool blocked;
  DL_TRY(conv_weight_geo(g, n, x, w, group, &m, &cw, kernel, &blocked));
  if (cin % group != 0 || m % group != 0)
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "channels (in %lld, out %lld) not divisible by group "
                         "%lld",
                         (long long)cin, (long long)m, (long long)group);
  if (cw * group != cin)
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "weight has %lld input channels per group, input has "
                         "%lld channels and group is %lld",
                         (long long)cw, (long long)cin, (long long)group);
  const int64_t *ks = NULL;
  int kc = dl_attr_ints(n, "kernel_shape", &ks);
  if (kc >= 0) {
    if (kc != nsp)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "kernel_shape has %d dims, input has %d spatial "
                           "dims",
                           kc, nsp);
    for (int i = 0; i < nsp; i++)
      if (ks[i] != kernel[i])
        return dl_error_node(ctx, n, DL_ERR_INVALID,
                             "kernel_shape[%d] is %lld, weight has %lld", i,
                             (long long)ks[i], (long long)kernel[i]);
  }
  if (b) {
    int64_t bl;
    if (b->rank != 1 || !dl_dim_is_const(&b->dims[0], &bl) || bl != m)
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "bias must be 1-D with %lld elements", (long long)m);
  }
  NnGeo geo;
  DL_TRY(nn_geometry(g, n, x, kernel, false, &geo));
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(ctx, n, DL_ERR_INVALID, "output Y is missing");
  DlDim dims[DL_MAX_RANK];
  dims[0] = x->dims[0];
  dims[1] = dl_dim_const(m);
  for (int i = 0; i < nsp; i++)
    dims[i + 2] = geo.out[i];
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, dims);
  return DL_OK;
}

static DlStatus nn_spatial_numel(DlGraph *g, const DlNode *n, const DlValue *x,
                                 int from, DlDim *out);

/* 1x1 kernel, stride 1, no padding: the spatial dims are one contiguous
 * run of positions (a plain matrix product per image). */
static bool nn_pointwise(const NnGeo *geo) {
  for (int i = 0; i < geo->nsp; i++)
    if (geo->k[i] != 1 || geo->s[i] != 1 || geo->pb[i] || geo->pe[i])
      return false;
  return true;
}

/* Register blocks of Conv (ops/gemm_block.h): CONV_MR output channels x
 * up to 16 positions of the last spatial dim (conv_widths); single
 * positions take the borders. */
#define CONV_MR 4

typedef struct ConvCtx {
  DlGraph *g;
  DlNode *n;
  const DlValue *y;
  NnGeo geo; /* flat: one spatial dim of all positions (pointwise) */
  bool flat;
  DlDType t;
  int bx, bw, bb, by;
  int64_t cin, m, cg, kprod; /* kprod: taps per (m, c) */
  int vn, vm0, vg;           /* batch, first channel of block, group */
  int vo[NN_MAX_SP];         /* outer output positions */
  int vorow;                 /* flat output index of (n, m0, outer, 0) */
  DlDim plane, oplane;       /* spatial sizes of the input and output */
} ConvCtx;

/*
 * One block of mr channels x nr positions of the last dim from col0.  The
 * taps of the outer dims are checked against the input; `checked` also
 * checks the last dim's tap (single positions at the borders); otherwise
 * every tap of the last dim must be inside the input for all nr positions.
 */
static void conv_block(KBuilder *kb, const ConvCtx *c, int mr, KExpr *col0,
                       int nr, bool checked) {
  const NnGeo *geo = &c->geo;
  int last = geo->nsp - 1;
  int vc0 = kb_decl(kb, "c0", DL_I64, col0);
  KMicro mk;
  km_begin(kb, &mk, mr, nr, c->t);
  int nopen = 0;
  /* input row of the outer taps and the tap index within the kernel */
  KExpr *irow = ke_add(kb, ke_mul(kb, ke_var(kb, c->vn), ke_int(kb, c->cin)),
                       ke_mul(kb, ke_var(kb, c->vg), ke_int(kb, c->cg)));
  KExpr *tap = ke_int(kb, 0);
  for (int i = 0; i < last; i++) {
    int vk = kb_for(kb, ke_int(kb, geo->k[i]), "k", 0);
    nopen++;
    KExpr *kpos = ke_mul(kb, ke_var(kb, vk), ke_int(kb, geo->d[i]));
    int vp = kb_decl(kb, "ih", DL_I64,
                     nn_in_pos(kb, geo, i, ke_var(kb, c->vo[i]), kpos));
    kb_if(kb, nn_in_range(kb, ke_var(kb, vp), &geo->in[i]));
    nopen++;
    irow =
        ke_add(kb, ke_mul(kb, irow, ke_dim(kb, &geo->in[i])), ke_var(kb, vp));
    tap = ke_add(kb, ke_mul(kb, tap, ke_int(kb, geo->k[i])), ke_var(kb, vk));
  }
  /* flat input index of (n, group's first channel, outer taps, 0) */
  int virow =
      kb_decl(kb, "irow", DL_I64, ke_mul(kb, irow, ke_dim(kb, &geo->in[last])));
  int vk = kb_for(kb, ke_int(kb, geo->k[last]), "kw", 0);
  nopen++;
  KExpr *kpos = ke_mul(kb, ke_var(kb, vk), ke_int(kb, geo->d[last]));
  int vp = kb_decl(kb, "iw", DL_I64,
                   nn_in_pos(kb, geo, last, ke_var(kb, vc0), kpos));
  if (checked) {
    kb_if(kb, nn_in_range(kb, ke_var(kb, vp), &geo->in[last]));
    nopen++;
  }
  int vtap = kb_decl(
      kb, "tap", DL_I64,
      ke_add(kb, ke_mul(kb, tap, ke_int(kb, geo->k[last])), ke_var(kb, vk)));
  int vcc = kb_for(kb, ke_int(kb, c->cg), "c", 0);
  KExpr *aidx[KM_MAX_MR];
  for (int r = 0; r < mr; r++)
    aidx[r] = ke_add(
        kb,
        ke_mul(kb,
               ke_add(kb,
                      ke_mul(kb, ke_add(kb, ke_var(kb, c->vm0), ke_int(kb, r)),
                             ke_int(kb, c->cg)),
                      ke_var(kb, vcc)),
               ke_int(kb, c->kprod)),
        ke_var(kb, vtap));
  KExpr *b0 = ke_add(kb, ke_add(kb, ke_var(kb, virow), ke_var(kb, vp)),
                     ke_mul(kb, ke_var(kb, vcc), ke_dim(kb, &c->plane)));
  km_accum(kb, &mk, c->bw, aidx, c->bx, b0, geo->s[last]);
  kb_end(kb); /* c */
  kb_end_n(kb, nopen);
  /* store through the epilogue */
  /* plain stores of the accumulators (a contiguous group per row, which
   * the straight-line vectorizer starts from), then bias and epilogue in a
   * vector loop over the block's positions */
  const DlValue *y = c->y;
  int voi[KM_MAX_MR];
  for (int r = 0; r < mr; r++) {
    voi[r] = kb_decl(
        kb, "oi", DL_I64,
        ke_add(kb,
               ke_add(kb, ke_var(kb, c->vorow),
                      ke_mul(kb, ke_int(kb, r), ke_dim(kb, &c->oplane))),
               ke_var(kb, vc0)));
    for (int v = 0; v < nr; v++)
      kb_store(kb, c->by, ke_add(kb, ke_var(kb, voi[r]), ke_int(kb, v)),
               km_acc(kb, &mk, r, v));
  }
  if (c->bb < 0 && !dl_has_epilogue(c->n))
    return;
  for (int r = 0; r < mr; r++) {
    KExpr *ch = ke_add(kb, ke_var(kb, c->vm0), ke_int(kb, r));
    int vv = kb_for(kb, ke_int(kb, nr), "v", KF_VECTOR);
    KExpr *pos = ke_add(kb, ke_var(kb, vc0), ke_var(kb, vv));
    KExpr *idx[DL_MAX_RANK];
    idx[0] = ke_var(kb, c->vn);
    idx[1] = ch;
    if (c->flat) {
      /* decompose the flat position into the output's spatial dims */
      KExpr *rest = pos;
      for (int i = y->rank - 1; i >= 2; i--) {
        KExpr *dd = ke_dim(kb, &y->dims[i]);
        idx[i] = i == 2 ? rest : ke_bin(kb, KB_MOD, rest, dd);
        rest = ke_div(kb, rest, dd);
      }
    } else {
      for (int i = 0; i < last; i++)
        idx[i + 2] = ke_var(kb, c->vo[i]);
      idx[last + 2] = pos;
    }
    KExpr *oi = ke_add(kb, ke_var(kb, voi[r]), ke_var(kb, vv));
    KExpr *val = ke_load(kb, c->by, oi);
    if (c->bb >= 0)
      val = ke_add(kb, val, ke_load(kb, c->bb, ch));
    kb_store(kb, c->by, oi, dl_epilogue(kb, c->g, c->n, val, idx));
    kb_end(kb);
  }
}

/* Widths of the register blocks over the last dim, widest first. */
static const int conv_widths[] = {16, 8, 4, 1};

/*
 * Blocks over the positions [lo, hi) of the last dim (all taps inside the
 * input there), w = hi - lo wide: with the widest block width nr <= w,
 * full blocks and the rest as one block ending at hi (recomputing a few
 * positions: the stores are idempotent); narrower ranges try the next
 * width.
 */
static void conv_interior(KBuilder *kb, const ConvCtx *c, int mr, int vlo,
                          int vhi, int vw, int level) {
  int nr = conv_widths[level];
  KExpr *w = ke_var(kb, vw);
  if (nr == 1) {
    int vt = kb_for(kb, w, "jt", 0);
    conv_block(kb, c, mr, ke_add(kb, ke_var(kb, vlo), ke_var(kb, vt)), 1,
               false);
    kb_end(kb);
    return;
  }
  kb_if(kb, ke_bin(kb, KB_GE, w, ke_int(kb, nr)));
  int vj = kb_for(kb, ke_div(kb, w, ke_int(kb, nr)), "jb", 0);
  conv_block(
      kb, c, mr,
      ke_add(kb, ke_var(kb, vlo), ke_mul(kb, ke_var(kb, vj), ke_int(kb, nr))),
      nr, false);
  kb_end(kb);
  kb_if(kb, ke_bin(kb, KB_NE, ke_bin(kb, KB_MOD, w, ke_int(kb, nr)),
                   ke_int(kb, 0)));
  conv_block(kb, c, mr, ke_sub(kb, ke_var(kb, vhi), ke_int(kb, nr)), nr, false);
  kb_end(kb);
  kb_else(kb);
  conv_interior(kb, c, mr, vlo, vhi, vw, level + 1);
  kb_end(kb);
}

/*
 * Blocked lowering (weight layout OIhw16o, chosen by passes/layout.c):
 * blocks of up to CONVB_P positions of the last spatial dim (of the whole
 * plane for a pointwise conv) x CONV_BLOCK output channels kept in scalar
 * locals.  Per reduction step (tap, input channel) the CONV_BLOCK
 * contiguous weights are loaded once and each position's input value is
 * broadcast against them, so the output channels are the vector dimension
 * whatever the image width.  Channel block ob covers channels
 * lane0 .. lane0 + 15 of group ob / nbg (lane0 = (ob % nbg) * 16); lanes
 * past the group's channel count have zero weights and are not stored.
 * Activations stay NCHW: the stores of one position are strided by the
 * output plane.  Borders take single checked positions like the default
 * lowering; the interior is cut exactly into blocks of CONVB_P, 4, 2, 1
 * positions whose positions are spread over the range (block b of nb
 * takes b, b + nb, b + 2 nb, ...): with adjacent positions LLVM's SLP
 * vectorizer took the positions as the vector (4 lanes, weights
 * broadcast, spills) and the blocked 3x3 convs ran 2-4x slower.
 */
#define CONVB_P 6
static const int convb_widths[] = {CONVB_P, 4, 2, 1};

typedef struct ConvB {
  int64_t mg;   /* output channels per group */
  int vlane0;   /* first lane's channel within the group */
  int vwb;      /* flat index of the block's first weight */
  bool partial; /* mg is not a multiple of CONV_BLOCK: guard the lanes */
} ConvB;

/* One block of np positions col0 + p * pstride (p < np; pstride may be
 * NULL when np is 1) x CONV_BLOCK channels. */
static void convb_block(KBuilder *kb, const ConvCtx *c, const ConvB *cb,
                        KExpr *col0, KExpr *pstride, int np, bool checked) {
  const NnGeo *geo = &c->geo;
  int last = geo->nsp - 1;
  int vc0 = kb_decl(kb, "c0", DL_I64, col0);
  int vps = kb_decl(kb, "ps", DL_I64, pstride ? pstride : ke_int(kb, 1));
  int acc[CONVB_P * CONV_BLOCK];
  for (int i = 0; i < np * CONV_BLOCK; i++)
    acc[i] = kb_decl(kb, "acc", c->t, ke_const(kb, c->t, 0.0));
  int nopen = 0;
  KExpr *irow = ke_add(kb, ke_mul(kb, ke_var(kb, c->vn), ke_int(kb, c->cin)),
                       ke_mul(kb, ke_var(kb, c->vg), ke_int(kb, c->cg)));
  KExpr *tap = ke_int(kb, 0);
  for (int i = 0; i < last; i++) {
    int vk = kb_for(kb, ke_int(kb, geo->k[i]), "k", 0);
    nopen++;
    KExpr *kpos = ke_mul(kb, ke_var(kb, vk), ke_int(kb, geo->d[i]));
    int vp = kb_decl(kb, "ih", DL_I64,
                     nn_in_pos(kb, geo, i, ke_var(kb, c->vo[i]), kpos));
    kb_if(kb, nn_in_range(kb, ke_var(kb, vp), &geo->in[i]));
    nopen++;
    irow =
        ke_add(kb, ke_mul(kb, irow, ke_dim(kb, &geo->in[i])), ke_var(kb, vp));
    tap = ke_add(kb, ke_mul(kb, tap, ke_int(kb, geo->k[i])), ke_var(kb, vk));
  }
  int virow =
      kb_decl(kb, "irow", DL_I64, ke_mul(kb, irow, ke_dim(kb, &geo->in[last])));
  int vk = kb_for(kb, ke_int(kb, geo->k[last]), "kw", 0);
  nopen++;
  KExpr *kpos = ke_mul(kb, ke_var(kb, vk), ke_int(kb, geo->d[last]));
  int vp = kb_decl(kb, "iw", DL_I64,
                   nn_in_pos(kb, geo, last, ke_var(kb, vc0), kpos));
  if (checked) {
    kb_if(kb, nn_in_range(kb, ke_var(kb, vp), &geo->in[last]));
    nopen++;
  }
  int vtap = kb_decl(
      kb, "tap", DL_I64,
      ke_add(kb, ke_mul(kb, tap, ke_int(kb, geo->k[last])), ke_var(kb, vk)));
  int vcc = kb_for(kb, ke_int(kb, c->cg), "c", 0);
  /* the block's CONV_BLOCK weights of (c, tap), then one broadcast input
   * value per position */
  int vwi = kb_decl(
      kb, "wi", DL_I64,
      ke_add(
          kb, ke_var(kb, cb->vwb),
          ke_mul(kb,
                 ke_add(kb, ke_mul(kb, ke_var(kb, vcc), ke_int(kb, c->kprod)),
                        ke_var(kb, vtap)),
                 ke_int(kb, CONV_BLOCK))));
  int vxi = kb_decl(kb, "xi", DL_I64,
                    ke_add(kb, ke_add(kb, ke_var(kb, virow), ke_var(kb, vp)),
                           ke_mul(kb, ke_var(kb, vcc), ke_dim(kb, &c->plane))));
  int va[CONVB_P];
  for (int p = 0; p < np; p++)
    va[p] = kb_decl(kb, "a", c->t,
                    ke_load(kb, c->bx,
                            ke_add(kb, ke_var(kb, vxi),
                                   ke_mul(kb, ke_var(kb, vps),
                                          ke_int(kb, p * geo->s[last])))));
  for (int p = 0; p < np; p++)
    for (int v = 0; v < CONV_BLOCK; v++) {
      int ac = acc[p * CONV_BLOCK + v];
      KExpr *wl =
          ke_load(kb, c->bw, ke_add(kb, ke_var(kb, vwi), ke_int(kb, v)));
      kb_assign(kb, ac,
                ke_add(kb, ke_var(kb, ac), ke_mul(kb, ke_var(kb, va[p]), wl)));
    }
  kb_end(kb); /* c */
  kb_end_n(kb, nopen);
  /* plain stores (channel v of position p at orow + v * oplane + c0 + p) */
  int vbase = kb_decl(kb, "ob", DL_I64,
                      ke_add(kb, ke_var(kb, c->vorow), ke_var(kb, vc0)));
  for (int v = 0; v < CONV_BLOCK; v++) {
    if (cb->partial)
      kb_if(kb,
            ke_bin(kb, KB_LT, ke_add(kb, ke_var(kb, cb->vlane0), ke_int(kb, v)),
                   ke_int(kb, cb->mg)));
    KExpr *row = ke_add(kb, ke_var(kb, vbase),
                        ke_mul(kb, ke_int(kb, v), ke_dim(kb, &c->oplane)));
    int vrow = kb_decl(kb, "oi", DL_I64, row);
    for (int p = 0; p < np; p++)
      kb_store(kb, c->by,
               ke_add(kb, ke_var(kb, vrow),
                      ke_mul(kb, ke_var(kb, vps), ke_int(kb, p))),
               ke_var(kb, acc[p * CONV_BLOCK + v]));
    if (cb->partial)
      kb_end(kb);
  }
  if (c->bb < 0 && !dl_has_epilogue(c->n))
    return;
  /* bias and epilogue: channels of the block, positions as the vector loop */
  const DlValue *y = c->y;
  KExpr *nvalid = ke_int(kb, CONV_BLOCK);
  if (cb->partial)
    nvalid = ke_imin(kb, nvalid,
                     ke_sub(kb, ke_int(kb, cb->mg), ke_var(kb, cb->vlane0)));
  int vv = kb_for(kb, nvalid, "v", 0);
  KExpr *ch = ke_add(kb, ke_var(kb, c->vm0), ke_var(kb, vv));
  int vrow =
      kb_decl(kb, "oi", DL_I64,
              ke_add(kb, ke_var(kb, vbase),
                     ke_mul(kb, ke_var(kb, vv), ke_dim(kb, &c->oplane))));
  int vpp = kb_for(kb, ke_int(kb, np), "p", KF_VECTOR);
  KExpr *poff = ke_mul(kb, ke_var(kb, vps), ke_var(kb, vpp));
  KExpr *pos = ke_add(kb, ke_var(kb, vc0), poff);
  KExpr *idx[DL_MAX_RANK];
  idx[0] = ke_var(kb, c->vn);
  idx[1] = ch;
  if (c->flat) {
    KExpr *rest = pos;
    for (int i = y->rank - 1; i >= 2; i--) {
      KExpr *dd = ke_dim(kb, &y->dims[i]);
      idx[i] = i == 2 ? rest : ke_bin(kb, KB_MOD, rest, dd);
      rest = ke_div(kb, rest, dd);
    }
  } else {
    for (int i = 0; i < last; i++)
      idx[i + 2] = ke_var(kb, c->vo[i]);
    idx[last + 2] = pos;
  }
  KExpr *oi = ke_add(kb, ke_var(kb, vrow), poff);
  KExpr *val = ke_load(kb, c->by, oi);
  if (c->bb >= 0)
    val = ke_add(kb, val, ke_load(kb, c->bb, ch));
  kb_store(kb, c->by, oi, dl_epilogue(kb, c->g, c->n, val, idx));
  kb_end_n(kb, 2);
}

/* The blocked Conv: batch x channel blocks (parallel) x outer output
 * positions x the last dim cut into blocks. */
static DlStatus conv_lower_blocked(KBuilder *kb, ConvCtx *c, int64_t group) {
  const NnGeo *geo = &c->geo;
  int last = geo->nsp - 1;
  const DlValue *x = dl_in(c->g, c->n, 0);
  ConvB cb;
  memset(&cb, 0, sizeof cb);
  cb.mg = c->m / group;
  cb.partial = cb.mg % CONV_BLOCK != 0;
  int64_t nbg = (cb.mg + CONV_BLOCK - 1) / CONV_BLOCK;
  c->vn = kb_for(kb, ke_dim(kb, &x->dims[0]), "n", KF_PARALLEL);
  int vob = kb_for(kb, ke_int(kb, group * nbg), "ob", KF_PARALLEL);
  c->vg =
      kb_decl(kb, "g", DL_I64, ke_div(kb, ke_var(kb, vob), ke_int(kb, nbg)));
  cb.vlane0 =
      kb_decl(kb, "l0", DL_I64,
              ke_mul(kb, ke_bin(kb, KB_MOD, ke_var(kb, vob), ke_int(kb, nbg)),
                     ke_int(kb, CONV_BLOCK)));
  c->vm0 = kb_decl(kb, "m0", DL_I64,
                   ke_add(kb, ke_mul(kb, ke_var(kb, c->vg), ke_int(kb, cb.mg)),
                          ke_var(kb, cb.vlane0)));
  cb.vwb = kb_decl(
      kb, "wb", DL_I64,
      ke_mul(kb, ke_var(kb, vob), ke_int(kb, c->cg * c->kprod * CONV_BLOCK)));
  for (int i = 0; i < last; i++)
    c->vo[i] = kb_for(kb, ke_dim(kb, &geo->out[i]), "o", 0);
  KExpr *orow = ke_add(kb, ke_mul(kb, ke_var(kb, c->vn), ke_int(kb, c->m)),
                       ke_var(kb, c->vm0));
  for (int i = 0; i < last; i++)
    orow = ke_add(kb, ke_mul(kb, orow, ke_dim(kb, &geo->out[i])),
                  ke_var(kb, c->vo[i]));
  c->vorow = kb_decl(kb, "orow", DL_I64,
                     ke_mul(kb, orow, ke_dim(kb, &geo->out[last])));
  KExpr *dout = ke_dim(kb, &geo->out[last]);
  int vl0, vc0, vl1, vc1;
  nn_valid_range(kb, geo, last, ke_int(kb, 0), &vl0, &vc0);
  nn_valid_range(kb, geo, last, ke_int(kb, (geo->k[last] - 1) * geo->d[last]),
                 &vl1, &vc1);
  int vL = kb_decl(kb, "L", DL_I64, ke_imin(kb, dout, ke_var(kb, vl0)));
  int vH =
      kb_decl(kb, "H", DL_I64,
              ke_imin(kb, dout,
                      ke_imax(kb, ke_var(kb, vL),
                              ke_add(kb, ke_var(kb, vl1), ke_var(kb, vc1)))));
  int vb0 = kb_for(kb, ke_var(kb, vL), "bl", 0);
  convb_block(kb, c, &cb, ke_var(kb, vb0), NULL, 1, true);
  kb_end(kb);
  /* interior [q, H): per width wd (CONVB_P, 4, 2, 1) nb = (H - q) / wd
   * blocks whose wd positions are nb apart (block b: q + b + p * nb), so
   * the input values of one block are not adjacent and the vectorizer
   * takes the channels as the vector dimension; then q += wd * nb */
  int vq = kb_decl(kb, "q", DL_I64, ke_var(kb, vL));
  for (int li = 0; li < (int)DL_ARRAY_LEN(convb_widths); li++) {
    int wd = convb_widths[li];
    int vnb = kb_decl(
        kb, "nb", DL_I64,
        ke_div(kb, ke_sub(kb, ke_var(kb, vH), ke_var(kb, vq)), ke_int(kb, wd)));
    int vj = kb_for(kb, ke_var(kb, vnb), "jb", 0);
    convb_block(kb, c, &cb, ke_add(kb, ke_var(kb, vq), ke_var(kb, vj)),
                wd > 1 ? ke_var(kb, vnb) : NULL, wd, false);
    kb_end(kb);
    if (wd > 1)
      kb_assign(kb, vq,
                ke_add(kb, ke_var(kb, vq),
                       ke_mul(kb, ke_var(kb, vnb), ke_int(kb, wd))));
  }
  int vb1 = kb_for(kb, ke_sub(kb, dout, ke_var(kb, vH)), "br", 0);
  convb_block(kb, c, &cb, ke_add(kb, ke_var(kb, vH), ke_var(kb, vb1)), NULL, 1,
              true);
  kb_end(kb);
  kb_end_n(kb, last);
  kb_end_n(kb, 2);
  return DL_OK;
}

DlStatus dl_lower_Conv(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *x = dl_in(g, n, 0), *w = dl_in(g, n, 1), *b = dl_in(g, n, 2);
  DlValue *y = dl_out(g, n, 0);
  int nsp = x->rank - 2;
  int64_t kernel[NN_MAX_SP], group = dl_attr_int(n, "group", 1), m, cin, cw;
  bool blocked;
  DL_TRY(conv_weight_geo(g, n, x, w, group, &m, &cw, kernel, &blocked));
  dl_dim_is_const(&x->dims[1], &cin);
  ConvCtx c;
  memset(&c, 0, sizeof c);
  DL_TRY(nn_geometry(g, n, x, kernel, false, &c.geo));
  c.g = g;
  c.n = n;
  c.y = y;
  c.t = x->dtype;
  c.cin = cin;
  c.m = m;
  c.cg = cin / group;
  int64_t mg = m / group;
  c.kprod = 1;
  for (int i = 0; i < nsp; i++)
    c.kprod *= kernel[i];
  DL_TRY(nn_spatial_numel(g, n, x, 2, &c.plane));
  DL_TRY(nn_spatial_numel(g, n, y, 2, &c.oplane));
  if (nn_pointwise(&c.geo)) {
    DlDim sp;
    DL_TRY(nn_spatial_numel(g, n, x, 2, &sp));
    c.flat = true;
    memset(&c.geo, 0, sizeof c.geo);
    c.geo.nsp = 1;
    c.geo.k[0] = c.geo.s[0] = c.geo.d[0] = 1;
    c.geo.in[0] = c.geo.out[0] = sp;
  }
  const NnGeo *geo = &c.geo;
  int last = geo->nsp - 1;
  c.bx = kb_buf(kb, x, false);
  c.bw = kb_buf(kb, w, false);
  c.bb = b ? kb_buf(kb, b, false) : -1;
  c.by = kb_buf(kb, y, true);
  if (blocked)
    return conv_lower_blocked(kb, &c, group);
  int mr = mg % CONV_MR == 0 ? CONV_MR : mg % 2 == 0 ? 2 : 1;

  c.vn = kb_for(kb, ke_dim(kb, &x->dims[0]), "n", KF_PARALLEL);
  int vmb = kb_for(kb, ke_int(kb, m / mr), "mb", KF_PARALLEL);
  c.vm0 =
      kb_decl(kb, "m0", DL_I64, ke_mul(kb, ke_var(kb, vmb), ke_int(kb, mr)));
  c.vg =
      kb_decl(kb, "g", DL_I64, ke_div(kb, ke_var(kb, c.vm0), ke_int(kb, mg)));
  for (int i = 0; i < last; i++)
    c.vo[i] = kb_for(kb, ke_dim(kb, &geo->out[i]), "o", 0);
  KExpr *orow = ke_add(kb, ke_mul(kb, ke_var(kb, c.vn), ke_int(kb, m)),
                       ke_var(kb, c.vm0));
  for (int i = 0; i < last; i++)
    orow = ke_add(kb, ke_mul(kb, orow, ke_dim(kb, &geo->out[i])),
                  ke_var(kb, c.vo[i]));
  c.vorow = kb_decl(kb, "orow", DL_I64,
                    ke_mul(kb, orow, ke_dim(kb, &geo->out[last])));
  /* positions [L, H) of the last dim where every tap is inside the input;
   * the borders [0, L) and [H, out) take single checked positions */
  KExpr *dout = ke_dim(kb, &geo->out[last]);
  int vl0, vc0, vl1, vc1;
  nn_valid_range(kb, geo, last, ke_int(kb, 0), &vl0, &vc0);
  nn_valid_range(kb, geo, last, ke_int(kb, (geo->k[last] - 1) * geo->d[last]),
                 &vl1, &vc1);
  int vL = kb_decl(kb, "L", DL_I64, ke_imin(kb, dout, ke_var(kb, vl0)));
  int vH =
      kb_decl(kb, "H", DL_I64,
              ke_imin(kb, dout,
                      ke_imax(kb, ke_var(kb, vL),
                              ke_add(kb, ke_var(kb, vl1), ke_var(kb, vc1)))));
  int vb0 = kb_for(kb, ke_var(kb, vL), "bl", 0);
  conv_block(kb, &c, mr, ke_var(kb, vb0), 1, true);
  kb_end(kb);
  int vw =
      kb_decl(kb, "wi", DL_I64, ke_sub(kb, ke_var(kb, vH), ke_var(kb, vL)));
  conv_interior(kb, &c, mr, vL, vH, vw, 0);
  int vb1 = kb_for(kb, ke_sub(kb, dout, ke_var(kb, vH)), "br", 0);
  conv_block(kb, &c, mr, ke_add(kb, ke_var(kb, vH), ke_var(kb, vb1)), 1, true);
  kb_end(kb);
  kb_end_n(kb, last);
  kb_end_n(kb, 2);
  return DL_OK;
}

/* ---- MaxPool / AveragePool ---------------------------------------------- */

static DlStatus nn_infer_pool(DlGraph *g, DlNode *n, bool is_max) {
  DlCtx *ctx = g->ctx;
  DlValue *x;
  DL_TRY(dl_need_input(g, n, 0, &x));
  DL_TRY(nn_need_spatial(g, n, x, 1));
  if (is_max ? !nn_numeric(x->dtype) : !dl_dtype_is_float(x->dtype))
    return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                         "input type %s is not supported",
                         dl_dtype_name(x->dtype));
  int64_t kernel[NN_MAX_SP];
  DL_TRY(nn_pool_kernel(g, n, x, kernel));
  int64_t ceil_mode = dl_attr_int(n, "ceil_mode", 0);
  if (!is_max && n->opset < 19 && dl_attr(n, "dilations"))
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "dilations needs AveragePool opset 19 or later");
  int64_t so = dl_attr_int(n, "storage_order", 0);
  if (so != 0 && so != 1)
    return dl_error_node(ctx, n, DL_ERR_INVALID, "storage_order is %lld",
                         (long long)so);
  NnGeo geo;
  DL_TRY(nn_geometry(g, n, x, kernel, ceil_mode != 0, &geo));
  DlDim dims[DL_MAX_RANK];
  dims[0] = x->dims[0];
  dims[1] = x->dims[1];
  for (int i = 0; i < geo.nsp; i++)
    dims[i + 2] = geo.out[i];
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(ctx, n, DL_ERR_INVALID, "output Y is missing");
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, dims);
  DlValue *ind = is_max ? dl_out(g, n, 1) : NULL;
  if (ind) {
    ind->dtype = DL_I64;
    dl_value_set_shape(ind, x->rank, dims);
  }
  return DL_OK;
}

DlStatus dl_infer_MaxPool(DlGraph *g, DlNode *n) {
  return nn_infer_pool(g, n, true);
}
DlStatus dl_infer_AveragePool(DlGraph *g, DlNode *n) {
  return nn_infer_pool(g, n, false);
}

/* Lowest value of a type, the start of a max. */
static KExpr *nn_lowest(KBuilder *kb, DlDType t) {
  if (dl_dtype_is_float(t))
    return ke_const(kb, t, -INFINITY);
  switch (t) {
  case DL_I8:
    return ke_const(kb, t, -128.0);
  case DL_I16:
    return ke_const(kb, t, -32768.0);
  case DL_I32:
    return ke_const(kb, t, -2147483648.0);
  case DL_I64:
    return ke_const(kb, t, -9223372036854775808.0);
  default:
    return ke_const(kb, t, 0.0); /* unsigned */
  }
}

static DlStatus nn_lower_pool(KBuilder *kb, DlGraph *g, DlNode *n,
                              bool is_max) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  DlValue *ind = is_max ? dl_out(g, n, 1) : NULL;
  int64_t kernel[NN_MAX_SP];
  DL_TRY(nn_pool_kernel(g, n, x, kernel));
  bool ceil_mode = dl_attr_int(n, "ceil_mode", 0) != 0;
  bool incl_pad = dl_attr_int(n, "count_include_pad", 0) != 0;
  bool colmajor = dl_attr_int(n, "storage_order", 0) == 1;
  NnGeo geo;
  DL_TRY(nn_geometry(g, n, x, kernel, ceil_mode, &geo));
  int nsp = geo.nsp, last = nsp - 1;
  DlDType t = x->dtype;
  int bx = kb_buf(kb, x, false), by = kb_buf(kb, y, true);
  int bi = ind ? kb_buf(kb, ind, true) : -1;

  int vn = kb_for(kb, ke_dim(kb, &x->dims[0]), "n", KF_PARALLEL);
  int vc = kb_for(kb, ke_dim(kb, &x->dims[1]), "c", KF_PARALLEL);
  int vplane =
      kb_decl(kb, "plane", DL_I64,
              ke_add(kb, ke_mul(kb, ke_var(kb, vn), ke_dim(kb, &x->dims[1])),
                     ke_var(kb, vc)));
  int vo[NN_MAX_SP];
  for (int i = 0; i < last; i++)
    vo[i] = kb_for(kb, ke_dim(kb, &geo.out[i]), "o", 0);
  KExpr *orow = ke_var(kb, vplane);
  for (int i = 0; i < last; i++)
    orow = ke_add(kb, ke_mul(kb, orow, ke_dim(kb, &geo.out[i])),
                  ke_var(kb, vo[i]));
  int vorow =
      kb_decl(kb, "orow", DL_I64, ke_mul(kb, orow, ke_dim(kb, &geo.out[last])));
  int vj = kb_for(kb, ke_dim(kb, &geo.out[last]), "ow", KF_VECTOR);
  KExpr *oidx0 = ke_add(kb, ke_var(kb, vorow), ke_var(kb, vj));
  kb_store(kb, by, oidx0, is_max ? nn_lowest(kb, t) : ke_const(kb, t, 0.0));
  if (bi >= 0)
    kb_store(kb, bi, oidx0, ke_int(kb, 0));
  kb_end(kb);

  /* taps of the outer spatial dims, skipped when outside the input */
  int nopen = 0;
  KExpr *irow = ke_var(kb, vplane);
  int vp[NN_MAX_SP];
  for (int i = 0; i < last; i++) {
    int vk = kb_for(kb, ke_int(kb, geo.k[i]), "k", 0);
    nopen++;
    KExpr *kpos = ke_mul(kb, ke_var(kb, vk), ke_int(kb, geo.d[i]));
    vp[i] = kb_decl(kb, "ih", DL_I64,
                    nn_in_pos(kb, &geo, i, ke_var(kb, vo[i]), kpos));
    kb_if(kb, nn_in_range(kb, ke_var(kb, vp[i]), &geo.in[i]));
    nopen++;
    irow =
        ke_add(kb, ke_mul(kb, irow, ke_dim(kb, &geo.in[i])), ke_var(kb, vp[i]));
  }
  int virow =
      kb_decl(kb, "irow", DL_I64, ke_mul(kb, irow, ke_dim(kb, &geo.in[last])));
  int vk = kb_for(kb, ke_int(kb, geo.k[last]), "kw", 0);
  KExpr *kpos = ke_mul(kb, ke_var(kb, vk), ke_int(kb, geo.d[last]));
  int vlo, vcnt;
  nn_valid_range(kb, &geo, last, kpos, &vlo, &vcnt);
  int vib = kb_decl(kb, "ib", DL_I64,
                    ke_add(kb, ke_var(kb, virow),
                           nn_in_pos(kb, &geo, last, ke_var(kb, vlo), kpos)));
  int vob =
      kb_decl(kb, "ob", DL_I64, ke_add(kb, ke_var(kb, vorow), ke_var(kb, vlo)));
  int vv = kb_for(kb, ke_var(kb, vcnt), "ow", KF_VECTOR);
  KExpr *oidx = ke_add(kb, ke_var(kb, vob), ke_var(kb, vv));
  KExpr *iidx = ke_add(kb, ke_var(kb, vib),
                       ke_mul(kb, ke_var(kb, vv), ke_int(kb, geo.s[last])));
  if (!is_max) {
    kb_store(kb, by, oidx,
             ke_add(kb, ke_load(kb, by, oidx), ke_load(kb, bx, iidx)));
  } else if (bi < 0) {
    kb_store(kb, by, oidx,
             ke_bin(kb, KB_MAX, ke_load(kb, by, oidx), ke_load(kb, bx, iidx)));
  } else {
    int vx = kb_decl(kb, "xv", t, ke_load(kb, bx, iidx));
    int vcur = kb_decl(kb, "cur", t, ke_load(kb, by, oidx));
    int vgt = kb_decl(kb, "gt", DL_BOOL,
                      ke_bin(kb, KB_GT, ke_var(kb, vx), ke_var(kb, vcur)));
    KExpr *flat;
    if (!colmajor) {
      flat = iidx;
    } else {
      /* plane*prod(in) + sum_i pos_i * prod(in[0..i-1]) */
      KExpr *plane_sz = ke_int(kb, 1);
      for (int i = 0; i < nsp; i++)
        plane_sz = ke_mul(kb, plane_sz, ke_dim(kb, &geo.in[i]));
      /* column-major spatial offset (storage_order 1) */
      KExpr *spat_cm = ke_int(kb, 0), *cm_stride = ke_int(kb, 1);
      for (int i = 0; i < last; i++) {
        spat_cm = ke_add(kb, spat_cm, ke_mul(kb, ke_var(kb, vp[i]), cm_stride));
        cm_stride = ke_mul(kb, cm_stride, ke_dim(kb, &geo.in[i]));
      }
      KExpr *pw = nn_in_pos(kb, &geo, last,
                            ke_add(kb, ke_var(kb, vlo), ke_var(kb, vv)), kpos);
      spat_cm = ke_add(kb, spat_cm, ke_mul(kb, pw, cm_stride));
      flat = ke_add(kb, ke_mul(kb, ke_var(kb, vplane), plane_sz), spat_cm);
    }
    kb_store(kb, by, oidx,
             ke_select(kb, ke_var(kb, vgt), ke_var(kb, vx), ke_var(kb, vcur)));
    kb_store(kb, bi, oidx,
             ke_select(kb, ke_var(kb, vgt), flat, ke_load(kb, bi, oidx)));
  }
  kb_end(kb); /* ow */
  kb_end(kb); /* kw */
  kb_end_n(kb, nopen);

  if (!is_max) {
    /* divide by the window size: taps inside the input (or, with
     * count_include_pad, inside the padded input) */
    KExpr *cnt_outer = ke_int(kb, 1);
    for (int i = 0; i <= last; i++) {
      KExpr *o = i < last ? ke_var(kb, vo[i]) : NULL;
      if (i == last) {
        vj = kb_for(kb, ke_dim(kb, &geo.out[last]), "ow", KF_VECTOR);
        o = ke_var(kb, vj);
      }
      /* taps k with 0 <= o*s - pb + k*d < lim: k in [klo, khi) */
      KExpr *start = ke_sub(kb, ke_mul(kb, o, ke_int(kb, geo.s[i])),
                            ke_int(kb, geo.pb[i]));
      DlDim lim = geo.in[i];
      if (incl_pad) {
        DlDim pe = dl_dim_const(geo.pe[i]);
        dl_dim_add(&geo.in[i], &pe, &lim);
      }
      KExpr *klo, *khi;
      if (incl_pad) {
        klo = ke_int(kb, 0); /* start >= -pb always */
      } else {
        klo = ke_imax(
            kb, ke_int(kb, 0),
            ke_ceildiv_clamp(kb, ke_sub(kb, ke_int(kb, 0), start), geo.d[i]));
      }
      khi = ke_imin(
          kb, ke_int(kb, geo.k[i]),
          ke_ceildiv_clamp(kb, ke_sub(kb, ke_dim(kb, &lim), start), geo.d[i]));
      KExpr *cnt = ke_imax(kb, ke_int(kb, 0), ke_sub(kb, khi, klo));
      cnt_outer = ke_mul(kb, cnt_outer, cnt);
    }
    KExpr *oidx2 = ke_add(kb, ke_var(kb, vorow), ke_var(kb, vj));
    KExpr *den = ke_cast(kb, t, ke_imax(kb, ke_int(kb, 1), cnt_outer));
    kb_store(kb, by, oidx2, ke_div(kb, ke_load(kb, by, oidx2), den));
    kb_end(kb);
  }
  kb_end_n(kb, last);
  kb_end_n(kb, 2);
  return dl_epilogue_inplace(kb, g, n);
}

DlStatus dl_lower_MaxPool(KBuilder *kb, DlGraph *g, DlNode *n) {
  return nn_lower_pool(kb, g, n, true);
}
DlStatus dl_lower_AveragePool(KBuilder *kb, DlGraph *g, DlNode *n) {
  return nn_lower_pool(kb, g, n, false);
}

/* ---- global pools ------------------------------------------------------- */

static DlStatus nn_infer_global(DlGraph *g, DlNode *n, bool is_max) {
  DlValue *x;
  DL_TRY(dl_need_input(g, n, 0, &x));
  DL_TRY(nn_need_spatial(g, n, x, 0));
  if (is_max ? !nn_numeric(x->dtype) : !dl_dtype_is_float(x->dtype))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "input type %s is not supported",
                         dl_dtype_name(x->dtype));
  DlDim dims[DL_MAX_RANK];
  dims[0] = x->dims[0];
  dims[1] = x->dims[1];
  for (int i = 2; i < x->rank; i++)
    dims[i] = dl_dim_const(1);
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output is missing");
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, dims);
  return DL_OK;
}

static DlStatus nn_spatial_numel(DlGraph *g, const DlNode *n, const DlValue *x,
                                 int from, DlDim *out) {
  DlDim acc = dl_dim_const(1);
  for (int i = from; i < x->rank; i++) {
    DlDim t;
    if (!dl_dim_mul(&acc, &x->dims[i], &t))
      return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                           "spatial size is not representable");
    acc = t;
  }
  *out = acc;
  return DL_OK;
}

static DlStatus nn_lower_global(KBuilder *kb, DlGraph *g, DlNode *n,
                                bool is_max) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  DlDim sp;
  DL_TRY(nn_spatial_numel(g, n, x, 2, &sp));
  DlDType t = x->dtype;
  int bx = kb_buf(kb, x, false), by = kb_buf(kb, y, true);
  int vn = kb_for(kb, ke_dim(kb, &x->dims[0]), "n", KF_PARALLEL);
  int vc = kb_for(kb, ke_dim(kb, &x->dims[1]), "c", KF_PARALLEL);
  int vplane =
      kb_decl(kb, "plane", DL_I64,
              ke_add(kb, ke_mul(kb, ke_var(kb, vn), ke_dim(kb, &x->dims[1])),
                     ke_var(kb, vc)));
  int vacc =
      kb_decl(kb, "acc", t, is_max ? nn_lowest(kb, t) : ke_const(kb, t, 0.0));
  int vbase = kb_decl(kb, "base", DL_I64,
                      ke_mul(kb, ke_var(kb, vplane), ke_dim(kb, &sp)));
  int vi = kb_for(kb, ke_dim(kb, &sp), "i", KF_REDUCE | KF_VECTOR);
  KExpr *v = ke_load(kb, bx, ke_add(kb, ke_var(kb, vbase), ke_var(kb, vi)));
  kb_assign(kb, vacc,
            ke_bin(kb, is_max ? KB_MAX : KB_ADD, ke_var(kb, vacc), v));
  kb_end(kb);
  KExpr *r = ke_var(kb, vacc);
  if (!is_max)
    r = ke_div(kb, r, ke_cast(kb, t, ke_dim(kb, &sp)));
  kb_store(kb, by, ke_var(kb, vplane), r);
  kb_end_n(kb, 2);
  return DL_OK;
}

DlStatus dl_infer_GlobalAveragePool(DlGraph *g, DlNode *n) {
  return nn_infer_global(g, n, false);
}
DlStatus dl_infer_GlobalMaxPool(DlGraph *g, DlNode *n) {
  return nn_infer_global(g, n, true);
}
DlStatus dl_lower_GlobalAveragePool(KBuilder *kb, DlGraph *g, DlNode *n) {
  return nn_lower_global(kb, g, n, false);
}
DlStatus dl_lower_GlobalMaxPool(KBuilder *kb, DlGraph *g, DlNode *n) {
  return nn_lower_global(kb, g, n, true);
}

/* ---- BatchNormalization ------------------------------------------------- */

DlStatus dl_infer_BatchNormalization(DlGraph *g, DlNode *n) {
  DlCtx *ctx = g->ctx;
  if (n->nin < 5)
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "needs 5 inputs (X, scale, B, mean, var), has %d",
                         n->nin);
  DlValue *x, *p[4];
  DL_TRY(dl_need_input(g, n, 0, &x));
  for (int i = 0; i < 4; i++)
    DL_TRY(dl_need_input(g, n, i + 1, &p[i]));
  if (dl_attr_int(n, "training_mode", 0) != 0)
    return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                         "training_mode=1 is not supported (inference only)");
  if (dl_attr(n, "is_test") && dl_attr_int(n, "is_test", 0) == 0)
    return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                         "is_test=0 (training) is not supported");
  if (x->rank < 2)
    return dl_error_node(ctx, n, DL_ERR_INVALID,
                         "input has rank %d, expected at least 2 [N, C, ...]",
                         x->rank);
  DL_TRY(nn_need_float(g, n, x, "input X"));
  static const char *const pname[4] = {"scale", "B", "mean", "var"};
  if (dl_attr_int(n, "spatial", 1) == 0 && x->rank > 2)
    return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                         "spatial=0 is not supported");
  for (int i = 0; i < 4; i++) {
    if (!dl_dtype_is_float(p[i]->dtype))
      return dl_error_node(ctx, n, DL_ERR_INVALID, "%s has type %s", pname[i],
                           dl_dtype_name(p[i]->dtype));
    if (p[i]->rank != 1 || !dl_dim_eq(&p[i]->dims[0], &x->dims[1]))
      return dl_error_node(ctx, n, DL_ERR_INVALID,
                           "%s must have shape [C] matching input channels",
                           pname[i]);
  }
  for (int o = 1; o < n->nout; o++) {
    if (n->out[o] < 0)
      continue;
    if (nn_value_used(g, n->out[o]))
      return dl_error_node(ctx, n, DL_ERR_UNSUPPORTED,
                           "output %d (training statistics) is used; only "
                           "inference is supported",
                           o);
    DlValue *v = g->values[n->out[o]];
    v->dtype = p[2]->dtype;
    dl_value_set_shape(v, 1, &x->dims[1]);
  }
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(ctx, n, DL_ERR_INVALID, "output Y is missing");
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, x->dims);
  return DL_OK;
}

DlStatus dl_lower_BatchNormalization(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  DlDType t = x->dtype;
  int bp[4];
  for (int i = 0; i < 4; i++)
    bp[i] = kb_buf(kb, dl_in(g, n, i + 1), false);
  DlDim sp;
  DL_TRY(nn_spatial_numel(g, n, x, 2, &sp));
  double eps = dl_attr_float(n, "epsilon", 1e-5f);
  int bx = kb_buf(kb, x, false), by = kb_buf(kb, y, true);
  int vn = kb_for(kb, ke_dim(kb, &x->dims[0]), "n", KF_PARALLEL);
  int vc = kb_for(kb, ke_dim(kb, &x->dims[1]), "c", KF_PARALLEL);
  KExpr *c = ke_var(kb, vc);
  KExpr *ld[4];
  for (int i = 0; i < 4; i++) {
    ld[i] = ke_load(kb, bp[i], c);
    if (dl_in(g, n, i + 1)->dtype != t)
      ld[i] = ke_cast(kb, t, ld[i]);
  }
  /* y = x * a + b with a = scale / sqrt(var + eps), b = B - mean * a */
  int va = kb_decl(
      kb, "a", t,
      ke_div(kb, ld[0],
             ke_un(kb, KU_SQRT, ke_add(kb, ld[3], ke_const(kb, t, eps)))));
  int vb =
      kb_decl(kb, "b", t, ke_sub(kb, ld[1], ke_mul(kb, ld[2], ke_var(kb, va))));
  int vbase = kb_decl(
      kb, "base", DL_I64,
      ke_mul(kb,
             ke_add(kb, ke_mul(kb, ke_var(kb, vn), ke_dim(kb, &x->dims[1])), c),
             ke_dim(kb, &sp)));
  int vi = kb_for(kb, ke_dim(kb, &sp), "i", KF_VECTOR);
  KExpr *idx = ke_add(kb, ke_var(kb, vbase), ke_var(kb, vi));
  kb_store(kb, by, idx,
           ke_add(kb, ke_mul(kb, ke_load(kb, bx, idx), ke_var(kb, va)),
                  ke_var(kb, vb)));
  kb_end_n(kb, 3);
  return DL_OK;
}

/* ---- LRN ---------------------------------------------------------------- */

DlStatus dl_infer_LRN(DlGraph *g, DlNode *n) {
  DlValue *x;
  DL_TRY(dl_need_input(g, n, 0, &x));
  DL_TRY(nn_need_spatial(g, n, x, 0));
  DL_TRY(nn_need_float(g, n, x, "input X"));
  const DlAttr *sz = dl_attr(n, "size");
  if (!sz || sz->kind != DL_ATTR_INT || sz->i < 1)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID,
                         "size attribute is required and must be >= 1");
  int64_t c;
  if (!dl_dim_is_const(&x->dims[1], &c))
    return dl_error_node(g->ctx, n, DL_ERR_UNSUPPORTED,
                         "channel dim is symbolic");
  DlValue *y = dl_out(g, n, 0);
  if (!y)
    return dl_error_node(g->ctx, n, DL_ERR_INVALID, "output is missing");
  y->dtype = x->dtype;
  dl_value_set_shape(y, x->rank, x->dims);
  return DL_OK;
}

DlStatus dl_lower_LRN(KBuilder *kb, DlGraph *g, DlNode *n) {
  DlValue *x = dl_in(g, n, 0), *y = dl_out(g, n, 0);
  DlDType t = x->dtype;
  int64_t size = dl_attr_int(n, "size", 1), C;
  dl_dim_is_const(&x->dims[1], &C);
  double alpha = dl_attr_float(n, "alpha", 1e-4f);
  double beta = dl_attr_float(n, "beta", 0.75f);
  double bias = dl_attr_float(n, "bias", 1.0f);
  int64_t before = (size - 1) / 2, after = size - 1 - before;
  DlDim sp;
  DL_TRY(nn_spatial_numel(g, n, x, 2, &sp));
  int bx = kb_buf(kb, x, false), by = kb_buf(kb, y, true);
  int vn = kb_for(kb, ke_dim(kb, &x->dims[0]), "n", KF_PARALLEL);
  int vc = kb_for(kb, ke_int(kb, C), "c", KF_PARALLEL);
  KExpr *nbase = ke_mul(kb, ke_var(kb, vn), ke_int(kb, C));
  int vob =
      kb_decl(kb, "ob", DL_I64,
              ke_mul(kb, ke_add(kb, nbase, ke_var(kb, vc)), ke_dim(kb, &sp)));
  /* sum of squares over the channel window, accumulated in the output row */
  int vi = kb_for(kb, ke_dim(kb, &sp), "i", KF_VECTOR);
  kb_store(kb, by, ke_add(kb, ke_var(kb, vob), ke_var(kb, vi)),
           ke_const(kb, t, 0.0));
  kb_end(kb);
  int vlo = kb_decl(kb, "lo", DL_I64,
                    ke_imax(kb, ke_int(kb, 0),
                            ke_sub(kb, ke_var(kb, vc), ke_int(kb, before))));
  int vhi = kb_decl(kb, "hi", DL_I64,
                    ke_imin(kb, ke_int(kb, C),
                            ke_add(kb, ke_var(kb, vc), ke_int(kb, after + 1))));
  int vk = kb_for(kb, ke_sub(kb, ke_var(kb, vhi), ke_var(kb, vlo)), "k", 0);
  int vib = kb_decl(kb, "ib", DL_I64,
                    ke_mul(kb,
                           ke_add(kb, ke_mul(kb, ke_var(kb, vn), ke_int(kb, C)),
                                  ke_add(kb, ke_var(kb, vlo), ke_var(kb, vk))),
                           ke_dim(kb, &sp)));
  vi = kb_for(kb, ke_dim(kb, &sp), "i", KF_VECTOR);
  KExpr *oi = ke_add(kb, ke_var(kb, vob), ke_var(kb, vi));
  KExpr *xv = ke_load(kb, bx, ke_add(kb, ke_var(kb, vib), ke_var(kb, vi)));
  kb_store(kb, by, oi, ke_add(kb, ke_load(kb, by, oi), ke_mul(kb, xv, xv)));
  kb_end_n(kb, 2);
  vi = kb_for(kb, ke_dim(kb, &sp), "i", KF_VECTOR);
  oi = ke_add(kb, ke_var(kb, vob), ke_var(kb, vi));
  KExpr *den = ke_bin(kb, KB_POW,
                      ke_add(kb, ke_const(kb, t, bias),
                             ke_mul(kb, ke_const(kb, t, alpha / (double)size),
                                    ke_load(kb, by, oi))),
                      ke_const(kb, t, beta));
  kb_store(kb, by, oi, ke_div(kb, ke_load(kb, bx, oi), den));
  kb_end_n(kb, 3);
  return DL_OK;
}
