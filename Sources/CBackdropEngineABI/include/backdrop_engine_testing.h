/*
 * backdrop_engine_testing.h — TEST-ONLY entry points of libbackdrop-torch.so (not part of the user
 * ABI, no stability promise). The BiRefNet parity tests dlsym these to compare intermediate
 * tensors with the reference fixtures.
 */
#ifndef BACKDROP_ENGINE_TESTING_H
#define BACKDROP_ENGINE_TESTING_H

#include "backdrop_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one named tensor: float32, contiguous NCHW, valid only during the call. */
typedef void (*bd_testing_tensor_fn)(void *user, const char *name, const float *data,
                                     const int64_t *shape, int ndim);

/*
 * Opens the model through the public bd_model_open(options) (so the model cache and the loader
 * are exercised exactly as the element uses them), runs the native BiRefNet forward pass on
 * `input` (float32 NCHW [batch, 3, height, width], ImageNet-normalised) and calls `fn` for every
 * intermediate it captures, then for "logits":
 *   features.0-3, debug.features_half.0-3, debug.squeeze_aspp, debug.squeeze, debug.ipt_blk5,
 *   debug.ipt_blk4, debug.decoder_block4_aspp, debug.decoder_block4, debug.gdt_attn_4_logit,
 *   debug.decoder_block3, debug.gdt_attn_3_logit, debug.decoder_block2, debug.gdt_attn_2_logit,
 *   debug.decoder_block1, logits.
 * Tensors computed in FP16/BF16 are converted to float32 first. Fails with BD_ERR_MODEL when the
 * file is not a native BiRefNet model.
 */
BD_EXPORT bd_status bd_testing_birefnet_forward(const bd_model_options *options, const float *input,
                                                int batch, int height, int width,
                                                bd_testing_tensor_fn fn, void *user, char *err,
                                                size_t err_len);

typedef bd_status (*bd_testing_birefnet_forward_fn)(const bd_model_options *, const float *, int,
                                                    int, int, bd_testing_tensor_fn, void *,
                                                    char *, size_t);

/* Time spent in the temporal stage (issue 9) of a session since it was created, in milliseconds:
 * the small grey images, DIS optical flow, warping and blending, and the model calls it made; and
 * the frames it handled. For matte-bench; all zero while the stage was never active. */
typedef struct {
  double grey_ms, flow_ms, blend_ms, model_ms;
  uint64_t frames;
} bd_testing_temporal_timing;

BD_EXPORT void bd_testing_session_temporal_timing(const bd_session *session,
                                                  bd_testing_temporal_timing *out_timing);

typedef void (*bd_testing_session_temporal_timing_fn)(const bd_session *, bd_testing_temporal_timing *);

#ifdef __cplusplus
}
#endif

#endif /* BACKDROP_ENGINE_TESTING_H */
