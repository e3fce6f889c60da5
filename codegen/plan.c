/*
 * plan.c - storage plan: where every value used at run time lives.
 *
 * Graph inputs live in the caller's input tensors, graph outputs in the
 * caller's output tensors, constants in one read-only weight blob (each at a
 * 64-byte aligned offset), and everything else in one workspace slot each,
 * in order of first use.  An output that is also an input, a constant or
 * another output gets a fresh value written by a small copy kernel, so every
 * output position has a buffer of its own.
 */
#include "codegen/module.h"

#include <string.h>

static uint64_t align64(uint64_t x) {
  return (x + 63) & ~(uint64_t)63;
}

/* A kernel `dst[i] = src[i]` over numel elements, built directly. */
static DlStatus add_copy_kernel(KProgram *p, int src, int dst, int out_pos) {
  DlGraph *g = p->g;
  DlCtx *ctx = g->ctx;
  DlArena *a = &ctx->arena;
  DlValue *sv = g->values[src];
  DlDim numel;
  if (!dl_value_numel(sv, &numel))
    return dl_error(ctx, DL_ERR_UNSUPPORTED,
                    "output %d ('%s'): element count not representable",
                    out_pos, sv->name ? sv->name : "");
  Kernel *k = dl_arena_alloc(a, sizeof *k);
  KBuf *bufs = dl_arena_alloc(a, 2 * sizeof *bufs);
  KVar *vars = dl_arena_alloc(a, sizeof *vars);
  KStmt *body = dl_arena_alloc(a, sizeof *body);
  KStmt *loop = dl_arena_alloc(a, sizeof *loop);
  KStmt *store = dl_arena_alloc(a, sizeof *store);
  KStmt **items = dl_arena_alloc(a, sizeof *items);
  KStmt **litems = dl_arena_alloc(a, sizeof *litems);
  KStmt *lbody = dl_arena_alloc(a, sizeof *lbody);
  KExpr *ext = dl_arena_alloc(a, 4 * sizeof *ext);
  Kernel **ks = dl_arena_alloc(a, (size_t)(p->nkernels + 1) * sizeof *ks);
  if (!k || !bufs || !vars || !body || !loop || !store || !items || !litems ||
      !lbody || !ext || !ks)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  k->name = dl_arena_printf(a, "k_copy_out%d", out_pos);
  k->node = sv->producer;
  k->g = g;
  k->nbufs = 2;
  k->bufs = bufs;
  bufs[0].value = src;
  bufs[0].dtype = sv->dtype;
  bufs[1].value = dst;
  bufs[1].dtype = sv->dtype;
  bufs[1].written = true;
  k->nvars = 1;
  k->vars = vars;
  vars[0].name = "i";
  vars[0].dtype = DL_I64;

  /* extent: the numel polynomial as an expression tree */
  KExpr *e = NULL;
  int64_t c;
  if (dl_dim_is_const(&numel, &c)) {
    e = &ext[0];
    e->kind = KE_INT;
    e->dtype = DL_I64;
    e->i = c;
  } else {
    for (int t = 0; t < numel.nterms; t++) {
      KExpr *term = dl_arena_alloc(a, sizeof *term);
      if (!term)
        return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
      term->kind = KE_INT;
      term->dtype = DL_I64;
      term->i = numel.t[t].coef;
      for (int f = 0; f < numel.t[t].nsym; f++) {
        KExpr *s = dl_arena_alloc(a, sizeof *s);
        KExpr *m = dl_arena_alloc(a, sizeof *m);
        if (!s || !m)
          return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
        s->kind = KE_SYM;
        s->dtype = DL_I64;
        s->i = numel.t[t].sym[f];
        m->kind = KE_BINARY;
        m->dtype = DL_I64;
        m->op = KB_MUL;
        m->a = term;
        m->b = s;
        term = m;
      }
      if (!e) {
        e = term;
      } else {
        KExpr *sum = dl_arena_alloc(a, sizeof *sum);
        if (!sum)
          return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
        sum->kind = KE_BINARY;
        sum->dtype = DL_I64;
        sum->op = KB_ADD;
        sum->a = e;
        sum->b = term;
        e = sum;
      }
    }
  }
  KExpr *iv = &ext[1];
  iv->kind = KE_VAR;
  iv->dtype = DL_I64;
  iv->i = 0;
  KExpr *ld = &ext[2];
  ld->kind = KE_LOAD;
  ld->dtype = sv->dtype;
  ld->i = 0;
  ld->a = iv;

  store->kind = KS_STORE;
  store->buf = 1;
  store->index = iv;
  store->value = ld;
  litems[0] = store;
  lbody->kind = KS_BLOCK;
  lbody->n = lbody->cap = 1;
  lbody->items = litems;
  loop->kind = KS_FOR;
  loop->flags = KF_PARALLEL | KF_VECTOR;
  loop->var = 0;
  loop->extent = e;
  loop->body = lbody;
  items[0] = loop;
  body->kind = KS_BLOCK;
  body->n = body->cap = 1;
  body->items = items;
  k->body = body;

  if (p->nkernels)
    memcpy(ks, p->kernels, (size_t)p->nkernels * sizeof *ks);
  ks[p->nkernels++] = k;
  p->kernels = ks;
  return DL_OK;
}

/* Gives each output position a value of its own (see the file comment). */
static DlStatus split_aliased_outputs(KProgram *p) {
  DlGraph *g = p->g;
  for (int o = 0; o < g->noutputs; o++) {
    int vid = g->outputs[o];
    DlValue *v = g->values[vid];
    bool alias = v->is_input || v->data != NULL;
    for (int j = 0; j < o && !alias; j++)
      if (g->outputs[j] == vid)
        alias = true;
    if (!alias)
      continue;
    DlValue *nv = dl_value_new(
        g,
        dl_arena_printf(&g->ctx->arena, "%s_out%d", v->name ? v->name : "v", o),
        v->dtype);
    if (!nv)
      return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
    dl_value_set_shape(nv, v->rank, v->dims);
    nv->name = v->name; /* the caller sees the model's output name */
    nv->is_output = true;
    nv->producer = v->producer;
    g->outputs[o] = nv->id;
    DL_TRY(add_copy_kernel(p, vid, nv->id, o));
  }
  return DL_OK;
}

DlStatus kplan_build_ex(KProgram *p, uint64_t sidecar_threshold, KPlan **out) {
  DlGraph *g = p->g;
  DlCtx *ctx = g->ctx;
  DlArena *a = &ctx->arena;
  *out = NULL;
  DL_TRY(split_aliased_outputs(p));

  KPlan *plan = dl_arena_alloc(a, sizeof *plan);
  int nv = g->nvalues;
  KStorage *st = dl_arena_alloc(a, (size_t)(nv > 0 ? nv : 1) * sizeof *st);
  KSlot *slots = dl_arena_alloc(a, (size_t)(nv > 0 ? nv : 1) * sizeof *slots);
  if (!plan || !st || !slots)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  plan->storage = st;
  plan->slots = slots;

  for (int i = 0; i < g->ninputs; i++) {
    st[g->inputs[i]].kind = KST_INPUT;
    st[g->inputs[i]].index = i;
  }
  for (int i = 0; i < g->noutputs; i++) {
    st[g->outputs[i]].kind = KST_OUTPUT;
    st[g->outputs[i]].index = i;
  }

  /* First pass: weight offsets and slots, in first-use order. */
  uint64_t wbytes = 0;
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    for (int b = 0; b < k->nbufs; b++) {
      int vid = k->bufs[b].value;
      if (vid < 0 || vid >= nv)
        return dl_error(ctx, DL_ERR_INTERNAL,
                        "kernel %s: buffer %d names value %d out of range",
                        k->name, b, vid);
      if (st[vid].kind != KST_NONE)
        continue;
      DlValue *v = g->values[vid];
      size_t es = dl_dtype_size(v->dtype);
      if (es == 0)
        return dl_error(ctx, DL_ERR_UNSUPPORTED,
                        "value '%s': dtype %s is not supported at run time",
                        v->name ? v->name : "", dl_dtype_name(v->dtype));
      if (v->data) {
        int64_t n = dl_value_numel_const(v);
        if (n < 0)
          return dl_error(ctx, DL_ERR_INTERNAL,
                          "constant '%s' has a non-constant shape",
                          v->name ? v->name : "");
        wbytes = align64(wbytes);
        st[vid].kind = KST_WEIGHT;
        st[vid].offset = wbytes;
        wbytes += (uint64_t)n * es;
      } else {
        DlDim numel;
        if (!dl_value_numel(v, &numel))
          return dl_error(ctx, DL_ERR_UNSUPPORTED,
                          "value '%s': element count not representable",
                          v->name ? v->name : "");
        st[vid].kind = KST_WORK;
        st[vid].index = plan->nslots;
        slots[plan->nslots].value = vid;
        slots[plan->nslots].numel = numel;
        slots[plan->nslots].elem_size = es;
        plan->nslots++;
      }
    }
  }
  wbytes = align64(wbytes);
  plan->weights_bytes = wbytes;
  if (wbytes) {
    plan->weights = dl_arena_alloc(a, (size_t)wbytes);
    if (!plan->weights)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nv; i++) {
      if (st[i].kind != KST_WEIGHT)
        continue;
      DlValue *v = g->values[i];
      size_t n = (size_t)dl_value_numel_const(v) * dl_dtype_size(v->dtype);
      if (n)
        memcpy(plan->weights + st[i].offset, v->data, n);
    }
  }
  plan->weights_sidecar = wbytes > sidecar_threshold;
  *out = plan;
  return DL_OK;
}

DlStatus kplan_build(KProgram *p, KPlan **out) {
  return kplan_build_ex(p, DL_SIDECAR_THRESHOLD_DEFAULT, out);
}

uint64_t kplan_workspace_bytes(const KPlan *p, const int64_t *syms) {
  uint64_t o = 0;
  for (int i = 0; i < p->nslots; i++) {
    int64_t n = dl_dim_eval(&p->slots[i].numel, syms);
    o = align64(o + (uint64_t)(n > 0 ? n : 0) * p->slots[i].elem_size);
  }
  return o;
}

/* ---- which symbols a module needs at run time ------------------------- */

static bool dim_uses(const DlDim *d, int sym) {
  for (int t = 0; t < d->nterms; t++)
    for (int k = 0; k < d->t[t].nsym; k++)
      if (d->t[t].sym[k] == sym)
        return true;
  return false;
}
static bool expr_uses(const KExpr *x, int sym) {
  if (!x)
    return false;
  if (x->kind == KE_SYM && x->i == sym)
    return true;
  return expr_uses(x->a, sym) || expr_uses(x->b, sym) || expr_uses(x->c, sym);
}
static bool stmt_uses(const KStmt *s, int sym) {
  if (!s)
    return false;
  if (expr_uses(s->extent, sym) || expr_uses(s->cond, sym) ||
      expr_uses(s->index, sym) || expr_uses(s->value, sym))
    return true;
  if (stmt_uses(s->body, sym) || stmt_uses(s->els, sym))
    return true;
  for (int i = 0; i < s->n; i++)
    if (stmt_uses(s->items[i], sym))
      return true;
  return false;
}

bool kplan_sym_used(const KProgram *p, const KPlan *plan, int sym) {
  const DlGraph *g = p->g;
  for (int i = 0; i < plan->nslots; i++)
    if (dim_uses(&plan->slots[i].numel, sym))
      return true;
  for (int io = 0; io < 2; io++) {
    int n = io ? g->noutputs : g->ninputs;
    const int *ids = io ? g->outputs : g->inputs;
    for (int i = 0; i < n; i++) {
      const DlValue *v = g->values[ids[i]];
      for (int d = 0; d < v->rank; d++)
        if (dim_uses(&v->dims[d], sym))
          return true;
    }
  }
  for (int k = 0; k < p->nkernels; k++)
    if (stmt_uses(p->kernels[k]->body, sym))
      return true;
  return false;
}
