/*
 * fuse_elementwise.c - chains and trees of elementwise ops become one
 * FusedElementwise node (ops/fused.c) computing the whole expression in one
 * loop nest.
 *
 * From each elementwise node with a float or bool result the pass grows
 * regions forward (passes/fusion.h: every reader of a region value joins,
 * and the region closes when all values but the newest are read only
 * inside it and are no graph outputs).  Then it pulls in producers of the
 * region's external inputs that are elementwise, read only by the region and no
 * graph outputs (the other leaves of a tree).  The region's nodes die; the
 * FusedElementwise takes over the result value, placed where the region
 * ended.  Runs after epilogue fusion, which takes the chains after
 * Conv/Gemm/MatMul first.
 */
#include "ops/ops.h"
#include "passes/fusion.h"
#include "passes/pass.h"

#include <string.h>

#define FE_MAX_IN 32

static bool fe_ok(const DlGraph *g, const DlNode *c, const void *arg) {
  (void)arg;
  if (c->dead || !dl_is_elementwise(c->op) || c->nout != 1 || c->nin > 8 ||
      dl_has_epilogue(c))
    return false;
  const DlValue *o = dl_out(g, c, 0);
  /* float and bool results; integer ones are mostly shape arithmetic */
  if (!o || o->rank < 0 || o->symval || o->data ||
      (o->dtype != DL_F32 && o->dtype != DL_F64 && o->dtype != DL_BOOL))
    return false;
  for (int i = 0; i < c->nin; i++) {
    const DlValue *v = dl_in(g, c, i);
    if (v && v->rank < 0)
      return false;
  }
  return true;
}

static bool fe_in_list(DlNode *const *list, int n, const DlNode *c) {
  for (int i = 0; i < n; i++)
    if (list[i] == c)
      return true;
  return false;
}

/* Sorts the region by position (topological order). */
static void fe_sort(DlNode **list, int n) {
  for (int i = 1; i < n; i++) {
    DlNode *x = list[i];
    int j = i - 1;
    while (j >= 0 && list[j]->id > x->id) {
      list[j + 1] = list[j];
      j--;
    }
    list[j + 1] = x;
  }
}

/* Adds producers of external inputs that only the region reads. */
static int fe_pull_leaves(const DlGraph *g, const int *uses, const bool *isout,
                          DlNode **list, int cnt) {
  bool grew = true;
  while (grew && cnt < FU_MAX_REGION) {
    grew = false;
    for (int k = 0; k < cnt && cnt < FU_MAX_REGION; k++) {
      DlNode *c = list[k];
      for (int i = 0; i < c->nin && cnt < FU_MAX_REGION; i++) {
        int v = c->in[i];
        if (v < 0 || isout[v] || g->values[v]->producer < 0)
          continue;
        DlNode *p = g->nodes[g->values[v]->producer];
        if (p->dead || fe_in_list(list, cnt, p) || !fe_ok(g, p, NULL))
          continue;
        int reads = 0;
        for (int j = 0; j < cnt; j++)
          for (int q = 0; q < list[j]->nin; q++)
            reads += list[j]->in[q] == v;
        if (reads != uses[v])
          continue;
        list[cnt++] = p;
        grew = true;
      }
    }
  }
  return cnt;
}

static DlStatus fe_fuse_at(DlGraph *g, DlNode *seed, FuUses *fu, bool *done) {
  *done = false;
  DL_TRY(fu_uses(g, fu));
  const int *uses = fu->uses;
  const bool *isout = fu->isout;
  DlNode *list[FU_MAX_REGION];
  int cnt = 1, cur = seed->out[0], res = -1;
  list[0] = seed;
  for (;;) {
    int scan = list[cnt - 1]->id + 1;
    int k = fu_grow_region(g, uses, isout, cur, scan, fe_ok, NULL, list + cnt,
                           FU_MAX_REGION - cnt, &res);
    if (k == 0)
      break;
    cnt += k;
    cur = res;
  }
  int last_pos = list[cnt - 1]->id;
  cnt = fe_pull_leaves(g, uses, isout, list, cnt);
  if (cnt < 2)
    return DL_OK;
  fe_sort(list, cnt);
  DlGraph *s;
  int ext[FU_MAX_REGION * 8], next;
  DL_TRY(fu_region_subgraph(g, "body", list, cnt, NULL, 0, cur, &s, ext,
                            (int)DL_ARRAY_LEN(ext), &next));
  if (next < 1 || next > FE_MAX_IN)
    return DL_OK;
  char *name = dl_arena_printf(&g->ctx->arena, "fused_%s", seed->name);
  DlNode *f =
      dl_node_new(g, DL_OP_FusedElementwise, "FusedElementwise", name, next, 1);
  if (!f)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  f->domain = "dlcc";
  f->opset = 1;
  for (int j = 0; j < next; j++)
    f->in[j] = ext[j];
  DlAttr a;
  memset(&a, 0, sizeof a);
  a.name = "body";
  a.kind = DL_ATTR_GRAPH;
  a.g = s;
  DL_TRY(fu_add_attr(g, f, &a));
  for (int k = 0; k < cnt; k++)
    list[k]->dead = true;
  f->out[0] = cur;
  g->values[cur]->producer = f->id;
  DL_TRY(dl_op_info(DL_OP_FusedElementwise)->infer(g, f));
  fu_move_node(g, f->id, last_pos + 1);
  *done = true;
  return DL_OK;
}

DlStatus dl_pass_fuse_elementwise(DlGraph *g, bool *changed) {
  FuUses fu = {0};
  for (int pos = 0; pos < g->nnodes; pos++) {
    DlNode *n = g->nodes[pos];
    if (!fe_ok(g, n, NULL))
      continue;
    bool done;
    DL_TRY(fe_fuse_at(g, n, &fu, &done));
    if (done)
      fu.valid = false;
    if (done && changed)
      *changed = true;
  }
  return DL_OK;
}
