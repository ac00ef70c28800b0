/* bdrand weights and a streaming safetensors writer (see include/bdrand.h). */
#include "bdrand.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t bdr_fnv1a64(const char *bytes, size_t len) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (uint8_t)bytes[i];
    h *= 0x100000001B3ull;
  }
  return h;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int bdr_bdrand_role(const char *key, const int64_t *shape, int ndim, double *offset, double *scale) {
  if (ends_with(key, "relative_position_bias_table")) { *offset = 0; *scale = 1.0; return 1; }
  if (ends_with(key, "running_mean")) { *offset = 0; *scale = 0.1; return 1; }
  if (ends_with(key, "running_var")) { *offset = 1; *scale = 0.5; return 1; }
  if (ends_with(key, "weight")) {
    if (ndim == 1) { *offset = 1; *scale = 0.1; return 1; }
    if (ndim == 4) {
      double fan_in = (double)(shape[1] * shape[2] * shape[3]);
      *offset = 0; *scale = sqrt(2.0) * sqrt(3.0 / fan_in); return 1;
    }
    if (ndim == 2) { *offset = 0; *scale = sqrt(3.0 / (double)shape[1]); return 1; }
    return 0;
  }
  if (ends_with(key, "bias") && ndim == 1) { *offset = 0; *scale = 0.1; return 1; }
  return 0;
}

static inline float bdrand_at(uint64_t seed, uint64_t i, double offset, double scale) {
  uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  uint64_t h = z ^ (z >> 31);
  double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
  double x = 2.0 * u - 1.0;
  volatile double prod = scale * x; /* no FMA contraction */
  return (float)(offset + prod);
}

float bdr_bdrand_value(const char *key, const int64_t *shape, int ndim, uint64_t index) {
  double offset, scale;
  if (!bdr_bdrand_role(key, shape, ndim, &offset, &scale)) return NAN;
  return bdrand_at(bdr_fnv1a64(key, strlen(key)), index, offset, scale);
}

int bdr_bdrand_fill(const char *key, const int64_t *shape, int ndim, uint64_t first, float *out,
                   size_t count) {
  double offset, scale;
  if (!bdr_bdrand_role(key, shape, ndim, &offset, &scale)) return 0;
  uint64_t seed = bdr_fnv1a64(key, strlen(key));
  for (size_t j = 0; j < count; j++) out[j] = bdrand_at(seed, first + j, offset, scale);
  return 1;
}

static uint16_t f32_to_f16(float f) {
  uint32_t x; memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFFu;
  if (((x >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00u | (mant ? 0x200u : 0));
  if (exp >= 31) return (uint16_t)(sign | 0x7C00u);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000u;
    uint32_t shift = (uint32_t)(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
  return (uint16_t)half;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t x; memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

static size_t dtype_size(const char *dtype) {
  if (!strcmp(dtype, "F32")) return 4;
  if (!strcmp(dtype, "F16") || !strcmp(dtype, "BF16")) return 2;
  if (!strcmp(dtype, "I64") || !strcmp(dtype, "F64")) return 8;
  return 4;
}

static void set_err(char *err, size_t len, const char *msg, const char *arg) {
  if (err && len) snprintf(err, len, "%s%s", msg, arg ? arg : "");
}

/* Grow-able string for the header. */
typedef struct { char *p; size_t n, cap; } sbuf;
static int sb_add(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1 << 16;
    while (cap < b->n + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) return 0;
    b->p = q; b->cap = cap;
  }
  memcpy(b->p + b->n, s, n); b->n += n; b->p[b->n] = 0;
  return 1;
}
static int sb_str(sbuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

static uint64_t numel_of(const bdr_tensor_spec *s) {
  uint64_t n = 1;
  for (int d = 0; d < s->ndim; d++) n *= (uint64_t)s->shape[d];
  return n;
}

int bdr_write_safetensors(const char *path, const bdr_tensor_spec *specs, size_t count,
                         const char *metadata_json, char *err, size_t err_len) {
  sbuf h = {0};
  char tmp[512];
  uint64_t offset = 0;
  sb_str(&h, "{");
  int first = 1;
  if (metadata_json) {
    sb_str(&h, "\"__metadata__\":"); sb_str(&h, metadata_json); first = 0;
  }
  for (size_t i = 0; i < count; i++) {
    const bdr_tensor_spec *s = &specs[i];
    if (s->ndim < 0 || s->ndim > 8) { free(h.p); set_err(err, err_len, "bad ndim for ", s->key); return -1; }
    uint64_t bytes = numel_of(s) * dtype_size(s->dtype);
    if (!first) sb_str(&h, ",");
    first = 0;
    sb_str(&h, "\""); sb_str(&h, s->key); sb_str(&h, "\":{\"dtype\":\"");
    sb_str(&h, s->dtype); sb_str(&h, "\",\"shape\":[");
    for (int d = 0; d < s->ndim; d++) {
      snprintf(tmp, sizeof tmp, "%s%lld", d ? "," : "", (long long)s->shape[d]);
      sb_str(&h, tmp);
    }
    snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
             (unsigned long long)(offset + bytes));
    sb_str(&h, tmp);
    offset += bytes;
  }
  sb_str(&h, "}");
  if (!h.p) { set_err(err, err_len, "out of memory", NULL); return -1; }
  while (h.n % 8) sb_str(&h, " ");
  FILE *f = fopen(path, "wb");
  if (!f) { free(h.p); set_err(err, err_len, "cannot create ", path); return -1; }
  uint64_t n = h.n;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
  int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.p, 1, h.n, f) == h.n;
  free(h.p);
  enum { CHUNK = 1 << 16 };
  float *fbuf = malloc(CHUNK * sizeof(float));
  unsigned char *obuf = malloc(CHUNK * 8);
  for (size_t i = 0; ok && i < count; i++) {
    const bdr_tensor_spec *s = &specs[i];
    const char *rk = s->rule_key ? s->rule_key : s->key;
    uint64_t total = numel_of(s);
    size_t es = dtype_size(s->dtype);
    int is_float = !strcmp(s->dtype, "F32") || !strcmp(s->dtype, "F16") || !strcmp(s->dtype, "BF16");
    int is_i64 = !strcmp(s->dtype, "I64");
    int64_t W = 0;
    if (is_i64 && s->fill == BDR_FILL_BDRAND && ends_with(rk, "relative_position_index") && s->ndim == 2) {
      int64_t N = s->shape[0];
      while (W * W < N) W++;
    }
    for (uint64_t done = 0; ok && done < total;) {
      size_t m = (size_t)((total - done) < CHUNK ? (total - done) : CHUNK);
      if (is_float) {
        if (s->fill != BDR_FILL_BDRAND || !bdr_bdrand_fill(rk, s->shape, s->ndim, done, fbuf, m))
          memset(fbuf, 0, m * sizeof(float));
        if (es == 4) memcpy(obuf, fbuf, m * 4);
        else if (!strcmp(s->dtype, "F16"))
          for (size_t j = 0; j < m; j++) { uint16_t v = f32_to_f16(fbuf[j]); memcpy(obuf + 2 * j, &v, 2); }
        else
          for (size_t j = 0; j < m; j++) { uint16_t v = f32_to_bf16(fbuf[j]); memcpy(obuf + 2 * j, &v, 2); }
      } else if (is_i64 && W > 0) {
        for (size_t j = 0; j < m; j++) {
          uint64_t flat = done + j;
          int64_t p = (int64_t)(flat / (uint64_t)s->shape[1]), q = (int64_t)(flat % (uint64_t)s->shape[1]);
          int64_t hp = p / W, wp = p % W, hq = q / W, wq = q % W;
          int64_t v = (hp - hq + W - 1) * (2 * W - 1) + (wp - wq + W - 1);
          memcpy(obuf + 8 * j, &v, 8);
        }
      } else {
        memset(obuf, 0, m * es);
      }
      ok = fwrite(obuf, es, m, f) == m;
      done += m;
    }
  }
  free(fbuf); free(obuf);
  if (fclose(f) != 0) ok = 0;
  if (!ok) { set_err(err, err_len, "write failed: ", path); return -1; }
  return 0;
}
