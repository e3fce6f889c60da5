/*
 * emit_c.h - helpers shared by the C backend and the generated header.
 */
#ifndef DLCC_EMIT_C_H
#define DLCC_EMIT_C_H

#include <stdio.h>

#include "codegen/module.h"

/*
 * The symbols a module exposes: the graph's symbols (ids 0..nbase-1), then
 * one derived symbol per distinct input/output dim that is a polynomial
 * (e.g. "batch*seq"), whose value bind() computes from the base symbols.
 */
typedef struct DlcSyms {
  int nbase, nderived, total;
  DlDim *derived;     /* nderived */
  const char **names; /* total */
} DlcSyms;

DlStatus dlc_collect_syms(KProgram *p, DlcSyms *s);
/* A dim as written in dlcc_io_desc.dims: >= 0 fixed, < 0 symbol -v-1. */
int64_t dlc_desc_dim(const DlcSyms *s, const DlDim *d);
/* The ABI declarations of dlcc_module.h, guarded by DLCC_MODULE_H so that
 * the real header and generated files can be included in any order. */
void dlc_write_abi(FILE *f);
/* Writes d as a C int64_t expression over `symvar`[i]. */
void dlc_write_dim(FILE *f, const DlDim *d, const char *symvar);
/* Writes s as a C string literal. */
void dlc_write_cstr(FILE *f, const char *s);

#endif
