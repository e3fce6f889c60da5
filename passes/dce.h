/*
 * dce.h - dead-code sweep.
 */
#ifndef DLCC_PASS_DCE_H
#define DLCC_PASS_DCE_H

#include "ir/ir.h"

/* Marks dead every node none of whose outputs is needed by a live node or a
 * graph output, and every node whose outputs are all constants (folded).
 * Returns the number of nodes it killed in *killed (may be NULL). */
DlStatus dl_pass_dce(DlGraph *g, int *killed);

#endif
