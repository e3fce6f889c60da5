/*
 * plan_print.c - the storage plan as text (dlcc --emit=plan).
 *
 *   slot 0: 512 bytes
 *   slot 1: max(64*batch, 256) bytes
 *   k0_MatMul(x: input 0, w1: weight +0, a: slot 0)
 *   k1_Relu(a: slot 0, b: slot 0)          <- b runs in place over a
 *   workspace: 768 bytes, intermediates: 3328 bytes (every symbol = 1)
 *
 * One line per kernel in execution order, each buffer as value: storage.
 * The golden tests in tests/plan compare it.
 */
#include "codegen/module.h"

#include <stdio.h>

static void print_dim(FILE *f, const DlGraph *g, const DlDim *d) {
  char buf[256];
  dl_dim_print(buf, sizeof buf, d, g->syms);
  fputs(buf, f);
}

static void print_storage(FILE *f, const KStorage *s) {
  switch (s->kind) {
  case KST_INPUT:
    fprintf(f, "input %d", s->index);
    break;
  case KST_OUTPUT:
    fprintf(f, "output %d", s->index);
    break;
  case KST_WEIGHT:
    fprintf(f, "weight +%llu", (unsigned long long)s->offset);
    break;
  case KST_WORK:
    fprintf(f, "slot %d", s->index);
    break;
  default:
    fputs("none", f);
  }
}

DlStatus kplan_print(const KProgram *p, const KPlan *plan, void *file) {
  FILE *f = file;
  const DlGraph *g = p->g;
  for (int i = 0; i < plan->nslots; i++) {
    const KSlot *s = &plan->slots[i];
    fprintf(f, "slot %d: ", i);
    if (s->nsizes > 1)
      fputs("max(", f);
    for (int j = 0; j < s->nsizes; j++) {
      if (j)
        fputs(", ", f);
      print_dim(f, g, &s->sizes[j]);
    }
    fputs(s->nsizes > 1 ? ") bytes\n" : " bytes\n", f);
  }
  for (int k = 0; k < p->nkernels; k++) {
    const Kernel *kn = p->kernels[k];
    fprintf(f, "%s(", kn->name);
    for (int b = 0; b < kn->nbufs; b++) {
      const DlValue *v = g->values[kn->bufs[b].value];
      fprintf(f, "%s%s: ", b ? ", " : "", v->name ? v->name : "?");
      print_storage(f, &plan->storage[v->id]);
    }
    fputs(")\n", f);
  }
  int n = g->nsyms > 0 ? g->nsyms : 1;
  int64_t *ones = dl_arena_alloc(&g->ctx->arena, (size_t)n * sizeof *ones);
  if (!ones)
    return dl_error(g->ctx, DL_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n; i++)
    ones[i] = 1;
  fprintf(f,
          "workspace: %llu bytes, intermediates: %llu bytes, in place: %d, "
          "aliased copies: %d%s\n",
          (unsigned long long)kplan_workspace_bytes(plan, ones),
          (unsigned long long)kplan_intermediate_bytes(p, plan, ones),
          plan->ninplace, plan->naliased,
          g->nsyms ? " (every symbol = 1)" : "");
  return ferror(f) ? dl_error(g->ctx, DL_ERR_IO, "write error") : DL_OK;
}
