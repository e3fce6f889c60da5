/*
 * link_direct - calls a compiled dlcc module through its generated header,
 * linked like any shared library (no runtime library, no dlopen).
 *
 *   dlcc examples/digits/digits.onnx -o digits.so     (writes digits.h)
 *   cc -I. examples/link_direct/main.c -L. -l:digits.so -Wl,-rpath,'$ORIGIN'
 *   ./a.out examples/digits/images/digit_3_label_2.npy ...
 *
 * For each 8x8 image (.npy, float32[1,1,8,8]) it prints the predicted digit
 * and the ten probabilities.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"

#define NPIX 64

/* Reads the 64 float32 pixels of a little-endian C-order .npy file. */
static int read_image(const char *path, float *px) {
  unsigned char head[10];
  size_t hlen;
  char *dict;
  int ok;
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  ok = fread(head, 1, 10, f) == 10 && memcmp(head, "\x93NUMPY\x01", 7) == 0;
  hlen = ok ? (size_t)head[8] | (size_t)head[9] << 8 : 0;
  dict = ok ? malloc(hlen + 1) : NULL;
  ok = dict && fread(dict, 1, hlen, f) == hlen;
  if (ok) {
    dict[hlen] = 0;
    ok = strstr(dict, "'<f4'") && strstr(dict, "False") &&
         fread(px, sizeof(float), NPIX, f) == NPIX && fgetc(f) == EOF;
  }
  free(dict);
  fclose(f);
  return ok;
}

int main(int argc, char **argv) {
  static const int64_t in_dims[] = DIGITS_INPUT_0_DIMS;
  int64_t syms[DIGITS_NUM_SYMS + 1];
  int64_t out_dims[DLCC_MAX_RANK];
  float px[NPIX], probs[10];
  uint64_t ws_bytes;
  void *ws = NULL;
  int rc = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s IMAGE.npy...\n", argv[0]);
    return 2;
  }
  if (DIGITS_SIDECAR_WEIGHTS_BYTES != 0) {
    fprintf(stderr, "%s: this example expects embedded weights\n", argv[0]);
    return 1;
  }
  for (int a = 1; a < argc; a++) {
    dlcc_tensor in = {px, in_dims, DIGITS_INPUT_0_RANK, DIGITS_INPUT_0_DTYPE};
    dlcc_tensor out = {probs, out_dims, DIGITS_OUTPUT_0_RANK,
                       DIGITS_OUTPUT_0_DTYPE};
    int32_t st;
    int best = 0;
    if (!read_image(argv[a], px)) {
      fprintf(stderr, "%s: %s: not a float32[1,1,8,8] .npy image\n", argv[0],
              argv[a]);
      rc = 1;
      continue;
    }
    st = digits_bind(&in, syms);
    if (st == DLCC_OK)
      st = digits_output_shape(0, syms, out_dims);
    if (st == DLCC_OK && out_dims[DIGITS_OUTPUT_0_RANK - 1] != 10)
      st = DLCC_ERR_SHAPE;
    if (st == DLCC_OK) {
      /* The workspace only depends on the symbols: size it once. */
      ws_bytes = digits_workspace_size(syms);
      if (!ws)
        ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64 + 64);
      st = ws ? digits_run(&in, &out, ws, ws_bytes, NULL) : DLCC_ERR_WORKSPACE;
    }
    if (st != DLCC_OK) {
      fprintf(stderr, "%s: %s: module error %d\n", argv[0], argv[a], (int)st);
      rc = 1;
      continue;
    }
    for (int k = 1; k < 10; k++)
      if (probs[k] > probs[best])
        best = k;
    printf("%s -> %d (p=%.4f) probs:", argv[a], best, (double)probs[best]);
    for (int k = 0; k < 10; k++)
      printf(" %.9g", (double)probs[k]);
    printf("\n");
  }
  free(ws);
  return rc;
}
