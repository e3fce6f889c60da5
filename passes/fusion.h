/*
 * fusion.h - helpers shared by the fusion passes (defined in
 * passes/fuse_epilogue.c): use counts, moving nodes, growing a region of
 * elementwise nodes from a value, and copying a region into a subgraph.
 */
#ifndef DLCC_PASS_FUSION_H
#define DLCC_PASS_FUSION_H

#include "ir/ir.h"

#define FU_MAX_REGION 64

/* Per value: how many input slots of live nodes read it (uses) and
 * whether it is a graph output (isout).  fu_uses recounts only when valid
 * is false (a pass clears it after changing the graph) and reuses its
 * arrays while they are large enough. */
typedef struct FuUses {
  int *uses;
  bool *isout;
  int cap;
  bool valid;
} FuUses;
DlStatus fu_uses(DlGraph *g, FuUses *u);

/* Moves the node at position from to position to, keeping ids
 * equal to positions and producers up to date. */
void fu_move_node(DlGraph *g, int from, int to);

/* Appends an attribute to n (arena copy of the array). */
DlStatus fu_add_attr(DlGraph *g, DlNode *n, const DlAttr *a);

/* Decides whether node c may join a region. */
typedef bool (*FuAccept)(const DlGraph *g, const DlNode *c, const void *arg);

/* Grows a region from value `from`: scans the live nodes from position
 * `scan` on; every node reading a value of the region must be accepted and
 * joins it; succeeds as soon as all region values but the newest are read
 * only inside the region and are not graph outputs.  Appends the nodes to
 * list (at most cap) and returns how many, with the region's result value in
 * *result; returns 0 (list untouched in meaning) when it fails. */
int fu_grow_region(const DlGraph *g, const int *uses, const bool *isout,
                   int from, int scan, FuAccept accept, const void *arg,
                   DlNode **list, int cap, int *result);

/* Copies the nodes list[n] into a new subgraph of g named name: the values
 * first[nfirst] become its first inputs, every other value read from
 * outside becomes a further input (their parent ids go to ext[*next], at
 * most cap_ext), and result its single output. */
DlStatus fu_region_subgraph(DlGraph *g, const char *name, DlNode *const *list,
                            int n, const int *first, int nfirst, int result,
                            DlGraph **sub, int *ext, int cap_ext, int *next);

/* The region list[0..cnt) (reading acc, the product's own result, and
 * producing result) becomes the "dlcc.epilogue" of product n (passes/
 * fuse_epilogue.c): the subgraph attribute, its other tensors as inputs
 * after the op's own, the region's nodes dead.  Producers are the
 * caller's to rewire. */
DlStatus fu_attach_epilogue(DlGraph *g, DlNode *n, DlNode *const *list, int cnt,
                            int acc, int result);

#endif
