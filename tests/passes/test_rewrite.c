/*
 * test_rewrite - unit test of the rewrite helpers (passes/pass.h) and of
 * the pass manager's option checks.
 *
 *   1. dl_node_insert_before keeps ids, producers and topological order
 *      (the verifier passes, the new node prints before its reader);
 *   2. dl_replace_uses keeps a graph output's value: the producer of the
 *      replacement writes the output instead;
 *   3. it declines on a shape mismatch and for input -> output;
 *   4. dl_rewrite stops on a rule that always fires (bounded);
 *   5. unknown pass names are usage errors naming the valid passes.
 */
#include "passes/pass.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);    \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static const char *GRAPH = "graph \"main\" opset 17 {\n"
                           "  input %x : f32[2,3]\n"
                           "  input %w : f32[2,4]\n"
                           "  %a : ? = Relu(%x) name \"relu\"\n"
                           "  %b : ? = Neg(%a) name \"neg\"\n"
                           "  %y : ? = Identity(%b) name \"ident\"\n"
                           "  output %y\n"
                           "}\n";

static DlNode *find(DlGraph *g, const char *name) {
  for (int k = 0; k < g->nnodes; k++)
    if (!g->nodes[k]->dead && strcmp(g->nodes[k]->name, name) == 0)
      return g->nodes[k];
  return NULL;
}

static DlGraph *load(DlCtx *ctx) {
  DlGraph *g = NULL;
  if (dl_ir_parse(ctx, GRAPH, &g) != DL_OK || dl_infer_graph(g) != DL_OK) {
    dl_print_diags(ctx, stderr);
    return NULL;
  }
  return g;
}

static bool rule_always(DlGraph *g, DlNode *n, DlStatus *st) {
  (void)g, (void)n, (void)st;
  return true;
}

int main(void) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "test_rewrite");
  ctx.opt.verify_each_pass = true;
  DlGraph *g = load(&ctx);
  CHECK(g != NULL);
  if (!g)
    return 1;

  /* 1. insert Exp(a) before neg, make neg read it */
  DlNode *neg = find(g, "neg");
  DlValue *a = g->values[neg->in[0]];
  DlNode *e = dl_node_insert_before(g, neg, DL_OP_Exp, "exp", 1, 1);
  CHECK(e != NULL);
  e->in[0] = a->id;
  DlValue *ev = dl_node_new_output(g, e, 0, "ea");
  CHECK(ev && dl_node_infer(g, e) == DL_OK);
  neg->in[0] = ev->id;
  CHECK(dl_verify(g, true) == DL_OK);
  CHECK(e->id + 1 == neg->id);
  CHECK(dl_producer(g, ev) == e);
  CHECK(dl_producer(g, a) == find(g, "relu"));
  CHECK(dl_value_used_only_by(g, ev, neg));
  CHECK(dl_value_nuses(g, a) == 1);

  /* 2. forwarding the Identity keeps %y: neg now writes it */
  DlNode *id = find(g, "ident");
  DlValue *y = dl_out(g, id, 0), *b = dl_in(g, id, 0);
  CHECK(dl_replace_uses(g, y, b));
  dl_node_kill(g, id);
  CHECK(dl_verify(g, true) == DL_OK);
  CHECK(dl_producer(g, y) == neg);
  CHECK(g->outputs[0] == y->id && strcmp(y->name, "y") == 0);

  /* 3. declines: shape mismatch, graph input -> graph output */
  DlValue *x = g->values[g->inputs[0]], *w = g->values[g->inputs[1]];
  CHECK(!dl_can_replace_uses(g, a, w));
  CHECK(!dl_replace_uses(g, y, x));
  CHECK(dl_producer(g, y) == neg);

  /* constants */
  int64_t dims[1] = {3};
  float ones[3] = {1, 1, 1};
  DlValue *c = dl_const_new(g, "c", DL_F32, 1, dims, ones);
  CHECK(c && dl_value_is_const_scalar(c, 1.0) &&
        !dl_value_is_const_scalar(c, 0.0));

  /* 4. a rule that always fires still terminates */
  DlRule r = {"always", DL_OP_Relu, rule_always};
  bool changed = false;
  CHECK(dl_rewrite(g, &r, 1, &changed) == DL_OK && changed);

  /* 5. pass names */
  DlPassOptions po = {0};
  po.passes = "simplify,nosuchpass";
  CHECK(dl_pass_check_options(&ctx, &po) == DL_ERR_USAGE);
  CHECK(ctx.ndiags > 0 && strstr(ctx.diags[ctx.ndiags - 1].msg, "dce"));
  po.passes = "simplify,dce";
  CHECK(dl_pass_check_options(&ctx, &po) == DL_OK);
  const char *dis[1] = {"bogus"};
  po.disable = dis;
  po.ndisable = 1;
  CHECK(dl_pass_check_options(&ctx, &po) == DL_ERR_USAGE);
  CHECK(dl_pass_find("cse") && !dl_pass_find("bogus"));

  dl_ctx_free(&ctx);
  if (failures)
    fprintf(stderr, "test_rewrite: %d failures\n", failures);
  else
    printf("test_rewrite: ok\n");
  return failures ? 1 : 0;
}
