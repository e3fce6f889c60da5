/*
 * fuzz_import.c - libFuzzer target for the ONNX importer.
 *
 * Feeds arbitrary bytes to dl_import_onnx_buffer (external data refused,
 * so the target never touches the file system).  Any crash, sanitizer
 * report or leak is a bug: the importer must turn every input into either
 * a graph or an error message, and a graph it returns must pass the
 * structural verifier.
 */
#include <stddef.h>
#include <stdint.h>

#include "frontend/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  DlCtx ctx;
  dl_ctx_init(&ctx, "fuzz.onnx");
  DlGraph *g = NULL;
  if (dl_import_onnx_buffer(&ctx, "fuzz.onnx", data, size, NULL, &g) == DL_OK &&
      dl_verify(g, false) != DL_OK)
    __builtin_trap(); /* the importer built a malformed graph */
  dl_ctx_free(&ctx);
  return 0;
}
