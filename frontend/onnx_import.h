/*
 * onnx_import.h - reads an ONNX model into a DlGraph.
 *
 * The importer decodes the protobuf (frontend/onnx.proto), checks the
 * graph's structure and builds the IR:
 *
 *   - initializers become constant values (data set, producer -1); an
 *     initializer that is also listed as a graph input stays a constant;
 *   - the other graph inputs become g->inputs with their dtype and shape:
 *     dim_value -> constant dim, dim_param -> a named symbol, neither -> a
 *     fresh symbol "unk_N";
 *   - graph outputs are marked is_output and listed in g->outputs;
 *   - nodes are sorted topologically; ops dlcc does not know keep
 *     DL_OP_UNKNOWN with their op_type and domain (the importer does not
 *     fail for them; inference reports them all at once);
 *   - attributes are copied; TENSOR attributes become detached constant
 *     values (id -1); sparse tensors are made dense; GRAPH attributes are
 *     imported into child graphs whose parent is the enclosing graph.
 *
 * Names used inside a subgraph but defined in an enclosing graph appear in
 * the subgraph as "captured" values: same name, producer -1, is_input
 * false, dtype (and shape, when constant) copied from the outer value, and
 * the outer value's data pointer when it is a constant.  Find the outer
 * value by name through g->parent.
 *
 * Errors are recorded in the context and name the file (ctx->file, set to
 * the model path when it is NULL) and the node or tensor at fault.
 */
#ifndef DLCC_ONNX_IMPORT_H
#define DLCC_ONNX_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* Imports the model file at path.  External tensor data is read relative to
 * the model's folder.  *out is set only on success. */
DlStatus dl_import_onnx(DlCtx *ctx, const char *path, DlGraph **out);

/* Imports a model held in memory.  display_name names it in messages (used
 * as ctx->file when that is NULL).  base_dir is the folder external data
 * paths are relative to; NULL refuses external data. */
DlStatus dl_import_onnx_buffer(DlCtx *ctx, const char *display_name,
                               const uint8_t *data, size_t len,
                               const char *base_dir, DlGraph **out);

/* Makes graph input `name` a constant holding the tensor in `path` (.npy
 * or ONNX TensorProto .pb); its dtype, rank and fixed dims must match.  The
 * input leaves the module's signature (frontend/freeze.c). */
DlStatus dl_freeze_input(DlGraph *g, const char *name, const char *path);

#endif
