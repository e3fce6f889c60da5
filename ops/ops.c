/*
 * ops.c - the op table: one row per line of ops/ops.def.
 */
#include "ops/ops.h"

static const DlOpInfo op_table[] = {
    [DL_OP_UNKNOWN] = {"?", "", 0, 0, 0, 0, NULL, NULL},
#define DL_OP(name, fam, min_in, max_in, min_out, max_out)                     \
  [DL_OP_##name] = {#name,   #fam,    min_in,           max_in,                \
                    min_out, max_out, &dl_infer_##name, &dl_lower_##name},
#include "ops/ops.def"
#undef DL_OP
};

_Static_assert(DL_ARRAY_LEN(op_table) == DL_OP_COUNT,
               "op table and DlOp enum disagree");

const DlOpInfo *dl_op_info(DlOp op) {
  if ((int)op <= DL_OP_UNKNOWN || op >= DL_OP_COUNT)
    return NULL;
  return &op_table[op];
}
