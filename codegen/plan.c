/*
 * plan.c - storage plan: where every value used at run time lives.
 *
 * Graph inputs live in the caller's input tensors, graph outputs in the
 * caller's output tensors, constants in one read-only weight blob (each at a
 * 64-byte aligned offset), and everything else in the one workspace.  An
 * output that is also an input, a constant or another output gets a fresh
 * value written by a small copy kernel, so every output position has a
 * buffer of its own.
 *
 * The workspace is planned statically, in three steps:
 *   1. aliases: a kernel that only copies a value in element order
 *      (Reshape, Flatten, Squeeze, Unsqueeze, Identity) is dropped and both
 *      values share one storage (a group), unless both already have a fixed
 *      one (input, output, constant);
 *   2. lifetimes: a group lives from the first to the last kernel that
 *      touches one of its values;
 *   3. slots: walking the kernels in order, a group takes a free slot at its
 *      first kernel (preferring one that held the same size, then the
 *      smallest large enough) and frees it after its last.  When the op
 *      allows it (KBuf.inplace) and an input of the same size dies at that
 *      kernel, the output takes over the input's slot: elementwise ops run
 *      in place.
 * Sizes may be symbolic: a slot's size is the largest of the sizes placed
 * in it, computed when the symbols are bound.
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

/* ---- planning state ---------------------------------------------------- */

/* Estimated sizes compare symbolic slots; every symbol is taken to be this
 * (the real size is the maximum at run time, so the guess only affects
 * how well slots are shared, never correctness). */
#define PL_SYM_GUESS 64

typedef struct PlSlot {
  int owner;    /* group living in the slot now, or -1 when free */
  int64_t cmax; /* largest constant size placed here */
  int nsym, capsym;
  DlDim *sym;  /* distinct symbolic sizes placed here */
  int64_t est; /* estimated size (largest of all, symbols guessed) */
  int first_value;
} PlSlot;

typedef struct Pl {
  KProgram *p;
  DlGraph *g;
  DlCtx *ctx;
  KStorage *st; /* the plan's storage array */
  int nv;
  int *parent; /* union-find over values: groups share storage */
  int *fixedv; /* per root: member whose storage is fixed (input, output,
                  constant) or -1 */
  int *first;  /* per root: first and last kernel using the group */
  int *last;
  int *slot;      /* per root: workspace slot or -1 */
  int64_t *guess; /* symbol values for estimates */
  int nslots, capslots;
  PlSlot *slots;
} Pl;

static int pl_find(Pl *pl, int v) {
  while (pl->parent[v] != v) {
    pl->parent[v] = pl->parent[pl->parent[v]];
    v = pl->parent[v];
  }
  return v;
}

static bool pl_fixed_value(const Pl *pl, int v) {
  const DlValue *x = pl->g->values[v];
  return pl->st[v].kind != KST_NONE || x->data != NULL;
}

static DlStatus pl_bytes(Pl *pl, int v, DlDim *out) {
  DlValue *x = pl->g->values[v];
  size_t es = dl_dtype_size(x->dtype);
  DlDim numel;
  if (es == 0)
    return dl_error(pl->ctx, DL_ERR_UNSUPPORTED,
                    "value '%s': dtype %s is not supported at run time",
                    x->name ? x->name : "", dl_dtype_name(x->dtype));
  DlDim e = dl_dim_const((int64_t)es);
  if (!dl_value_numel(x, &numel) || !dl_dim_mul(&numel, &e, out))
    return dl_error(pl->ctx, DL_ERR_UNSUPPORTED,
                    "value '%s': element count not representable",
                    x->name ? x->name : "");
  return DL_OK;
}

/* Copy kernels whose two values may share storage: the two groups are
 * joined and the kernel dropped.  Not when both groups already have a
 * fixed storage (say a graph input reshaped into a graph output). */
static DlStatus pl_alias(Pl *pl, bool *drop) {
  KProgram *p = pl->p;
  DlGraph *g = pl->g;
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    if (!k->copy_in || !k->copy_out || k->nbufs != 2)
      continue;
    int a = k->bufs[k->copy_in - 1].value;
    int b = k->bufs[k->copy_out - 1].value;
    const DlValue *va = g->values[a], *vb = g->values[b];
    if (a == b || dl_dtype_size(va->dtype) != dl_dtype_size(vb->dtype))
      continue;
    DlDim na, nb;
    if (!dl_value_numel(va, &na) || !dl_value_numel(vb, &nb) ||
        !dl_dim_eq(&na, &nb))
      continue;
    int ra = pl_find(pl, a), rb = pl_find(pl, b);
    if (ra == rb)
      continue;
    if (pl->fixedv[ra] >= 0 && pl->fixedv[rb] >= 0)
      continue;
    pl->parent[rb] = ra;
    if (pl->fixedv[ra] < 0)
      pl->fixedv[ra] = pl->fixedv[rb];
    drop[ki] = true;
  }
  return DL_OK;
}

static int64_t pl_est(const Pl *pl, const DlDim *d) {
  int64_t n = dl_dim_eval(d, pl->guess);
  return n > 0 ? n : 0;
}

/* a >= b for all non-negative symbol values: a - b has no negative
 * coefficient.  (Constants are never dropped for a symbolic size: a symbol
 * may be 0.) */
static bool pl_covers(const DlDim *a, const DlDim *b) {
  DlDim d;
  if (!dl_dim_sub(a, b, &d))
    return false;
  for (int t = 0; t < d.nterms; t++)
    if (d.t[t].coef < 0)
      return false;
  return true;
}

static DlStatus pl_slot_add(Pl *pl, int s, const DlDim *bytes) {
  PlSlot *sl = &pl->slots[s];
  int64_t c;
  int64_t e = pl_est(pl, bytes);
  if (e > sl->est)
    sl->est = e;
  if (dl_dim_is_const(bytes, &c)) {
    if (c > sl->cmax)
      sl->cmax = c;
    return DL_OK;
  }
  /* Drop sizes another one bounds for every value of the symbols. */
  for (int i = 0; i < sl->nsym; i++)
    if (pl_covers(&sl->sym[i], bytes))
      return DL_OK;
  int kept = 0;
  for (int i = 0; i < sl->nsym; i++)
    if (!pl_covers(bytes, &sl->sym[i]))
      sl->sym[kept++] = sl->sym[i];
  sl->nsym = kept;
  if (sl->nsym == sl->capsym) {
    int cap = sl->capsym ? 2 * sl->capsym : 4;
    DlDim *n = dl_arena_alloc(&pl->ctx->arena, (size_t)cap * sizeof *n);
    if (!n)
      return dl_error(pl->ctx, DL_ERR_NOMEM, "out of memory");
    if (sl->nsym)
      memcpy(n, sl->sym, (size_t)sl->nsym * sizeof *n);
    sl->sym = n;
    sl->capsym = cap;
  }
  sl->sym[sl->nsym++] = *bytes;
  return DL_OK;
}

/* A free slot for `bytes`: one that already holds this very size, else the
 * smallest that is large enough, else the largest (it grows), else a new
 * one. */
static DlStatus pl_pick(Pl *pl, const DlDim *bytes, int *out) {
  int64_t need = pl_est(pl, bytes), c;
  bool is_const = dl_dim_is_const(bytes, &c);
  int exact = -1, fit = -1, big = -1;
  for (int s = 0; s < pl->nslots; s++) {
    const PlSlot *sl = &pl->slots[s];
    if (sl->owner >= 0)
      continue;
    bool same = is_const ? sl->cmax == c : false;
    for (int i = 0; i < sl->nsym && !same; i++)
      same = dl_dim_eq(&sl->sym[i], bytes);
    if (same && sl->est >= need) {
      exact = s;
      break;
    }
    if (sl->est >= need && (fit < 0 || sl->est < pl->slots[fit].est))
      fit = s;
    if (big < 0 || sl->est > pl->slots[big].est)
      big = s;
  }
  int s = exact >= 0 ? exact : fit >= 0 ? fit : big;
  if (s < 0) {
    if (pl->nslots == pl->capslots) {
      int cap = pl->capslots ? 2 * pl->capslots : 16;
      PlSlot *n = dl_arena_alloc(&pl->ctx->arena, (size_t)cap * sizeof *n);
      if (!n)
        return dl_error(pl->ctx, DL_ERR_NOMEM, "out of memory");
      if (pl->nslots)
        memcpy(n, pl->slots, (size_t)pl->nslots * sizeof *n);
      pl->slots = n;
      pl->capslots = cap;
    }
    s = pl->nslots++;
    memset(&pl->slots[s], 0, sizeof pl->slots[s]);
    pl->slots[s].owner = -1;
    pl->slots[s].first_value = -1;
  }
  *out = s;
  return DL_OK;
}

/* The slot a read buffer of kernel k hands over to written buffer wb, or
 * -1: the op allows it (KBuf.inplace), the reader's group lives in the
 * workspace, dies at k, has the same size and no other buffer of k. */
static int pl_inplace(Pl *pl, const Kernel *k, int ki, int wb,
                      const DlDim *bytes, const bool *given) {
  for (int b = 0; b < k->nbufs; b++) {
    if (k->bufs[b].inplace != wb + 1 || k->bufs[b].written)
      continue;
    int r = pl_find(pl, k->bufs[b].value);
    if (pl->fixedv[r] >= 0 || pl->slot[r] < 0 || pl->last[r] != ki || given[b])
      continue;
    bool other = false;
    for (int o = 0; o < k->nbufs && !other; o++)
      other = o != b && pl_find(pl, k->bufs[o].value) == r;
    if (other)
      continue;
    DlDim rb; /* computed once already, when r got its slot */
    if (pl_bytes(pl, r, &rb) != DL_OK || !dl_dim_eq(&rb, bytes))
      continue;
    return b;
  }
  return -1;
}

/* Slots by liveness: walking the kernels in order, a group gets a slot at
 * the kernel that first touches it (a dying input's slot when the op works
 * in place, else a free one) and gives it back after its last kernel. */
static DlStatus pl_assign(Pl *pl, KPlan *plan) {
  KProgram *p = pl->p;
  bool *given = dl_arena_alloc(&pl->ctx->arena, 64 * sizeof *given);
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    bool *gv = k->nbufs <= 64
                   ? given
                   : dl_arena_alloc(&pl->ctx->arena, (size_t)k->nbufs);
    if (!gv)
      return dl_error(pl->ctx, DL_ERR_NOMEM, "out of memory");
    memset(gv, 0, (size_t)k->nbufs * sizeof *gv);
    for (int b = 0; b < k->nbufs; b++) {
      int r = pl_find(pl, k->bufs[b].value);
      if (pl->fixedv[r] >= 0 || pl->slot[r] >= 0)
        continue;
      DlDim bytes;
      DL_TRY(pl_bytes(pl, r, &bytes));
      int s = -1,
          from = k->bufs[b].written ? pl_inplace(pl, k, ki, b, &bytes, gv) : -1;
      if (from >= 0) {
        gv[from] = true;
        s = pl->slot[pl_find(pl, k->bufs[from].value)];
        plan->ninplace++;
      } else {
        DL_TRY(pl_pick(pl, &bytes, &s));
      }
      DL_TRY(pl_slot_add(pl, s, &bytes));
      pl->slots[s].owner = r;
      if (pl->slots[s].first_value < 0)
        pl->slots[s].first_value = r;
      pl->slot[r] = s;
    }
    for (int b = 0; b < k->nbufs; b++) {
      int r = pl_find(pl, k->bufs[b].value);
      if (pl->slot[r] >= 0 && pl->last[r] == ki &&
          pl->slots[pl->slot[r]].owner == r)
        pl->slots[pl->slot[r]].owner = -1;
    }
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
  size_t nz = (size_t)(nv > 0 ? nv : 1);
  KStorage *st = dl_arena_alloc(a, nz * sizeof *st);
  Pl pl = {.p = p, .g = g, .ctx = ctx, .st = st, .nv = nv};
  pl.parent = dl_arena_alloc(a, nz * sizeof(int));
  pl.fixedv = dl_arena_alloc(a, nz * sizeof(int));
  pl.first = dl_arena_alloc(a, nz * sizeof(int));
  pl.last = dl_arena_alloc(a, nz * sizeof(int));
  pl.slot = dl_arena_alloc(a, nz * sizeof(int));
  pl.guess = dl_arena_alloc(a, (size_t)(g->nsyms > 0 ? g->nsyms : 1) *
                                   sizeof(int64_t));
  bool *drop = dl_arena_alloc(a, (size_t)(p->nkernels + 1) * sizeof *drop);
  if (!plan || !st || !pl.parent || !pl.fixedv || !pl.first || !pl.last ||
      !pl.slot || !pl.guess || !drop)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  plan->storage = st;
  for (int i = 0; i < g->nsyms; i++)
    pl.guess[i] = PL_SYM_GUESS;

  for (int i = 0; i < g->ninputs; i++) {
    st[g->inputs[i]].kind = KST_INPUT;
    st[g->inputs[i]].index = i;
  }
  for (int i = 0; i < g->noutputs; i++) {
    st[g->outputs[i]].kind = KST_OUTPUT;
    st[g->outputs[i]].index = i;
  }
  for (int i = 0; i < nv; i++) {
    pl.parent[i] = i;
    pl.fixedv[i] = pl_fixed_value(&pl, i) ? i : -1;
    pl.first[i] = pl.last[i] = pl.slot[i] = -1;
  }
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    for (int b = 0; b < k->nbufs; b++)
      if (k->bufs[b].value < 0 || k->bufs[b].value >= nv)
        return dl_error(ctx, DL_ERR_INTERNAL,
                        "kernel %s: buffer %d names value %d out of range",
                        k->name, b, k->bufs[b].value);
  }

  /* Copies that become aliases leave the program. */
  DL_TRY(pl_alias(&pl, drop));
  int nk = 0;
  for (int ki = 0; ki < p->nkernels; ki++) {
    if (drop[ki])
      plan->naliased++;
    else
      p->kernels[nk++] = p->kernels[ki];
  }
  p->nkernels = nk;

  /* Lifetimes of the groups, in kernel positions. */
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    for (int b = 0; b < k->nbufs; b++) {
      int r = pl_find(&pl, k->bufs[b].value);
      if (pl.first[r] < 0)
        pl.first[r] = ki;
      pl.last[r] = ki;
    }
  }

  /* Weight offsets, in first-use order of the constants. */
  uint64_t wbytes = 0;
  for (int ki = 0; ki < p->nkernels; ki++) {
    const Kernel *k = p->kernels[ki];
    for (int b = 0; b < k->nbufs; b++) {
      int r = pl_find(&pl, k->bufs[b].value);
      int fv = pl.fixedv[r];
      if (fv < 0 || st[fv].kind != KST_NONE)
        continue;
      DlValue *v = g->values[fv];
      size_t es = dl_dtype_size(v->dtype);
      int64_t n = dl_value_numel_const(v);
      if (es == 0)
        return dl_error(ctx, DL_ERR_UNSUPPORTED,
                        "value '%s': dtype %s is not supported at run time",
                        v->name ? v->name : "", dl_dtype_name(v->dtype));
      if (n < 0)
        return dl_error(ctx, DL_ERR_INTERNAL,
                        "constant '%s' has a non-constant shape",
                        v->name ? v->name : "");
      wbytes = align64(wbytes);
      st[fv].kind = KST_WEIGHT;
      st[fv].offset = wbytes;
      wbytes += (uint64_t)n * es;
    }
  }

  /* Workspace slots by liveness. */
  DL_TRY(pl_assign(&pl, plan));
  plan->nslots = pl.nslots;
  plan->slots = dl_arena_alloc(a, (size_t)(pl.nslots ? pl.nslots : 1) *
                                      sizeof *plan->slots);
  if (!plan->slots)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  for (int s = 0; s < pl.nslots; s++) {
    PlSlot *sl = &pl.slots[s];
    KSlot *ks = &plan->slots[s];
    ks->value = sl->first_value;
    ks->nsizes = sl->nsym + (sl->cmax > 0 || sl->nsym == 0);
    ks->sizes = dl_arena_alloc(a, (size_t)ks->nsizes * sizeof *ks->sizes);
    if (!ks->sizes)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    int i = 0;
    if (sl->cmax > 0 || sl->nsym == 0)
      ks->sizes[i++] = dl_dim_const(sl->cmax);
    for (int j = 0; j < sl->nsym; j++)
      ks->sizes[i++] = sl->sym[j];
  }

  /* Every value used by a kernel takes its group's storage. */
  for (int v = 0; v < nv; v++) {
    int r = pl_find(&pl, v);
    if (pl.first[r] < 0 || (st[v].kind != KST_NONE && pl.fixedv[r] == v))
      continue;
    if (pl.fixedv[r] >= 0) {
      st[v] = st[pl.fixedv[r]];
    } else if (pl.slot[r] >= 0) {
      st[v].kind = KST_WORK;
      st[v].index = pl.slot[r];
    }
  }

  wbytes = align64(wbytes);
  plan->weights_bytes = wbytes;
  if (wbytes) {
    plan->weights = dl_arena_alloc(a, (size_t)wbytes);
    if (!plan->weights)
      return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nv; i++) {
      if (st[i].kind != KST_WEIGHT || pl.fixedv[pl_find(&pl, i)] != i)
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

static uint64_t slot_bytes(const KSlot *s, const int64_t *syms) {
  uint64_t m = 0;
  for (int i = 0; i < s->nsizes; i++) {
    int64_t n = dl_dim_eval(&s->sizes[i], syms);
    if (n > 0 && (uint64_t)n > m)
      m = (uint64_t)n;
  }
  return m;
}

uint64_t kplan_workspace_bytes(const KPlan *p, const int64_t *syms) {
  uint64_t o = 0;
  for (int i = 0; i < p->nslots; i++)
    o = align64(o + slot_bytes(&p->slots[i], syms));
  return o;
}

uint64_t kplan_intermediate_bytes(const KProgram *p, const KPlan *plan,
                                  const int64_t *syms) {
  const DlGraph *g = p->g;
  uint64_t sum = 0;
  for (int v = 0; v < g->nvalues; v++) {
    DlDim numel;
    if (plan->storage[v].kind != KST_WORK ||
        !dl_value_numel(g->values[v], &numel))
      continue;
    int64_t n = dl_dim_eval(&numel, syms);
    if (n > 0)
      sum += (uint64_t)n * dl_dtype_size(g->values[v]->dtype);
  }
  return sum;
}

bool kplan_bufs_share(const KPlan *plan, const Kernel *k, int a, int b) {
  const KStorage *x = &plan->storage[k->bufs[a].value];
  const KStorage *y = &plan->storage[k->bufs[b].value];
  if (k->bufs[a].value == k->bufs[b].value)
    return true;
  if (x->kind != y->kind || x->kind == KST_NONE)
    return false;
  if (x->kind == KST_WEIGHT)
    return x->offset == y->offset;
  return x->index == y->index;
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
    for (int j = 0; j < plan->slots[i].nsizes; j++)
      if (dim_uses(&plan->slots[i].sizes[j], sym))
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
