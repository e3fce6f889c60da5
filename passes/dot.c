/*
 * dot.c - the graph as a Graphviz drawing (--dump-dot).
 *
 * Live nodes are boxes labelled with op type, node name and output shapes;
 * graph inputs are ellipses, graph outputs double octagons, and constants
 * read by live nodes small notes with their shape (and value when scalar).
 * Edges run from a value's producer (or input/constant) to each reader.
 */
#include "passes/pass.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Writes s escaped for a double-quoted dot string. */
static void esc(FILE *f, const char *s) {
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
}

static void type_str(FILE *f, const DlGraph *g, const DlValue *v) {
  fputs(dl_dtype_name(v->dtype), f);
  if (v->rank < 0) {
    fputs("[?]", f);
    return;
  }
  fputc('[', f);
  for (int i = 0; i < v->rank; i++) {
    char buf[128];
    dl_dim_print(buf, sizeof buf, &v->dims[i], g->syms);
    fprintf(f, "%s%s", i ? "," : "", buf);
  }
  fputc(']', f);
}

/* The dot node that defines value id: "n<k>", "v<id>" */
static void src_name(FILE *f, const DlGraph *g, const DlValue *v) {
  DlNode *p = dl_producer(g, v);
  if (p)
    fprintf(f, "n%d", p->id);
  else
    fprintf(f, "v%d", v->id);
}

DlStatus dl_dot_write(DlGraph *g, const char *path) {
  DlCtx *ctx = g->ctx;
  if (!path)
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  FILE *f = fopen(path, "w");
  if (!f)
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s': %s", path,
                    strerror(errno));
  bool *drawn = dl_arena_alloc(&ctx->arena, (size_t)g->nvalues + 1);
  if (!drawn) {
    fclose(f);
    return dl_error(ctx, DL_ERR_NOMEM, "out of memory");
  }
  fputs("digraph \"", f);
  esc(f, g->name ? g->name : "graph");
  fputs("\" {\n  rankdir=TB;\n"
        "  node [fontname=\"Helvetica\", fontsize=10];\n"
        "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\"];\n",
        f);
  for (int i = 0; i < g->ninputs; i++) {
    const DlValue *v = g->values[g->inputs[i]];
    drawn[v->id] = true;
    fprintf(f,
            "  v%d [shape=ellipse, style=filled, fillcolor=\"#d8ecff\", "
            "label=\"",
            v->id);
    esc(f, v->name);
    fputs("\\n", f);
    type_str(f, g, v);
    fputs("\"];\n", f);
  }
  /* constants read by live nodes, and values defined nowhere here */
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    for (int i = 0; i < n->nin; i++) {
      if (n->in[i] < 0 || drawn[n->in[i]])
        continue;
      const DlValue *v = g->values[n->in[i]];
      if (dl_producer(g, v))
        continue;
      drawn[v->id] = true;
      fprintf(f,
              "  v%d [shape=note, fontsize=8, style=filled, "
              "fillcolor=\"#f4f4f4\", label=\"",
              v->id);
      esc(f, v->name);
      fputs("\\n", f);
      type_str(f, g, v);
      if (v->data && dl_value_numel_const(v) == 1 &&
          (dl_dtype_is_float(v->dtype) || dl_dtype_is_int(v->dtype)))
        fprintf(f, " = %g", dl_value_elem(v, 0));
      fputs("\"];\n", f);
    }
  }
  for (int k = 0; k < g->nnodes; k++) {
    const DlNode *n = g->nodes[k];
    if (n->dead)
      continue;
    fprintf(f,
            "  n%d [shape=box, style=\"rounded,filled\", "
            "fillcolor=\"#fff4d6\", label=\"",
            n->id);
    esc(f, n->op_type ? n->op_type : dl_op_name(n->op));
    if (n->name && n->name[0]) {
      fputs("\\n", f);
      esc(f, n->name);
    }
    for (int i = 0; i < n->nout; i++) {
      if (n->out[i] < 0)
        continue;
      fputs("\\n", f);
      type_str(f, g, g->values[n->out[i]]);
    }
    fputs("\"];\n", f);
    for (int i = 0; i < n->nin; i++) {
      if (n->in[i] < 0)
        continue;
      fputs("  ", f);
      src_name(f, g, g->values[n->in[i]]);
      fprintf(f, " -> n%d;\n", n->id);
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    const DlValue *v = g->values[g->outputs[i]];
    fprintf(f,
            "  out%d [shape=doubleoctagon, style=filled, "
            "fillcolor=\"#dff5d8\", label=\"",
            i);
    esc(f, v->name);
    fputs("\\n", f);
    type_str(f, g, v);
    fputs("\"];\n  ", f);
    if (!dl_producer(g, v) && !drawn[v->id]) {
      drawn[v->id] = true;
      fprintf(f, "v%d [shape=note, fontsize=8, label=\"", v->id);
      esc(f, v->name);
      fputs("\"];\n  ", f);
    }
    src_name(f, g, v);
    fprintf(f, " -> out%d;\n", i);
  }
  fputs("}\n", f);
  bool err = ferror(f) != 0;
  if (fclose(f) != 0 || err)
    return dl_error(ctx, DL_ERR_IO, "cannot write '%s'", path);
  return DL_OK;
}
