#pragma once
/* The one implementation of the fixtures' deterministic "bdrand" weight rule
 * (Tests/Fixtures/birefnet/README.md) and a safetensors writer that generates each tensor straight
 * into the file. Used by the BiRefNet tests, birefnet-bench (also built with CMake) and the
 * launcher's bench; plain C so that every one of them can compile it. */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FNV-1a 64 of a byte string (the bdrand seed of a key). */
uint64_t bdr_fnv1a64(const char *bytes, size_t len);

/* The bdrand value of element `index` of float tensor `key` with the given shape, or NaN when the
 * key/rank has no role in the rule. */
float bdr_bdrand_value(const char *key, const int64_t *shape, int ndim, uint64_t index);

/* (offset, scale) of the bdrand rule for a float tensor; returns 0 when the key has no role. */
int bdr_bdrand_role(const char *key, const int64_t *shape, int ndim, double *offset, double *scale);

/* Fill `out` with `count` bdrand values starting at flat index `first`. Returns 0 without a role. */
int bdr_bdrand_fill(const char *key, const int64_t *shape, int ndim, uint64_t first, float *out,
                   size_t count);

/* How the writer fills one tensor. */
typedef enum {
  BDR_FILL_BDRAND = 0, /* floats: the bdrand rule; I64: relative_position_index / zeros */
  BDR_FILL_ZEROS = 1,
} bdr_fill;

typedef struct {
  const char *key;     /* name written into the header */
  const char *rule_key;/* name used for the bdrand rule (NULL: key); lets tests add prefixes */
  const char *dtype;   /* "F32", "F16", "BF16", "I64", or anything else written verbatim */
  int ndim;            /* 0..8 */
  int64_t shape[8];
  bdr_fill fill;
} bdr_tensor_spec;

/* Write a safetensors file: header (tensors in the given order, `metadata_json` inserted as the
 * value of "__metadata__" when not NULL, e.g. "{\"patch_order\":\"legacy\"}") then the data.
 * Floats in F16/BF16 are the bdrand value rounded to nearest even. Unknown dtypes are written with
 * 4 bytes per element of zeros (for error tests). Returns 0 on success, else writes err. */
int bdr_write_safetensors(const char *path, const bdr_tensor_spec *specs, size_t count,
                         const char *metadata_json, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
